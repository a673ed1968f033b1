"""CSV text as spreadsheets write it (artsim.sources.csvtext): encodings detected or checked,
quotes left open reported by the line they opened on. Through scan_csv, as users meet them,
and on csvtext's own functions."""

from __future__ import annotations

import io
import re

import pytest

from artsim.errors import SourceError
from artsim.sources import scan_csv
from artsim.sources.csvtext import Encoding, Row, detect_encoding, iter_rows, opened_quote


@pytest.mark.parametrize("codec", ["cp1252", "latin-1"])
def test_non_utf8_manifest_is_detected_and_noted(tmp_path, codec):
    text = "id,image,title\np1,one.jpg,Café à Arles\np2,two.jpg,Nature morte\n"
    (tmp_path / "m.csv").write_bytes(text.encode(codec))
    scan = scan_csv(tmp_path / "m.csv")
    assert scan.items[0].metadata["title"] == "Café à Arles"
    assert len(scan.warnings) == 1 and "not UTF-8" in scan.warnings[0]
    assert "line 2" in scan.warnings[0] and "--encoding" in scan.warnings[0]


@pytest.mark.parametrize("codec", ["utf-8", "utf-8-sig", "utf-16"])
def test_unicode_manifests_need_no_option(tmp_path, codec):
    (tmp_path / "m.csv").write_bytes("id,image,title\np1,one.jpg,Café ☕\n".encode(codec))
    scan = scan_csv(tmp_path / "m.csv")
    assert scan.items[0].metadata == {"title": "Café ☕"} and scan.warnings == []


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_recognised(tmp_path, codec):
    (tmp_path / "m.csv").write_bytes("id,image,title\np1,one.jpg,Cafe\n".encode(codec))
    scan = scan_csv(tmp_path / "m.csv")
    assert [(it.id, it.metadata) for it in scan.items] == [("p1", {"title": "Cafe"})]
    assert codec in scan.warnings[0]


def test_given_encoding_is_used_and_a_wrong_one_names_the_line(tmp_path):
    (tmp_path / "m.csv").write_bytes(
        "id,image,title\np1,one.jpg,x\np2,two.jpg,Gauguin – Tahiti\n".encode("cp1252")
    )
    scan = scan_csv(tmp_path / "m.csv", encoding="cp1252")
    assert scan.items[1].metadata["title"] == "Gauguin – Tahiti" and scan.warnings == []
    with pytest.raises(SourceError, match=r"m\.csv:3: byte 0x96 \(column 20\).*utf-8"):
        scan_csv(tmp_path / "m.csv", encoding="utf-8")
    with pytest.raises(SourceError, match="unknown encoding"):
        scan_csv(tmp_path / "m.csv", encoding="klingon")


def test_unterminated_quote_is_reported_with_the_line_it_opened(tmp_path):
    (tmp_path / "m.csv").write_text(
        "id,image,title\n"
        "p1,one.jpg,Fine\n"
        'p2,"two.jpg,Open quote\n'
        "p3,three.jpg,Swallowed\n"
        "p4,four.jpg,Swallowed too\n"
    )
    scan = scan_csv(tmp_path / "m.csv")
    assert [it.id for it in scan.items] == ["p1"]
    assert len(scan.problems) == 1
    where, reason = scan.problems[0].where, scan.problems[0].reason
    assert where.endswith("m.csv:3")
    assert "quote opened on line 3 is never closed" in reason and "lines 3-5" in reason


def test_quote_left_open_in_a_later_field_names_its_own_line(tmp_path):
    (tmp_path / "m.csv").write_text(
        'id,image,title,note\np1,one.jpg,"two\nlines","open\np2,two.jpg,x,y\n'
    )
    scan = scan_csv(tmp_path / "m.csv")
    assert scan.items == []
    assert [p.where.rsplit(":", 1)[1] for p in scan.problems] == ["2"]
    assert "quote opened on line 3 is never closed, so lines 3-4" in scan.problems[0].reason


def test_quote_left_open_in_the_header_is_an_error_not_an_empty_scan(tmp_path):
    # review of issue 16: the header swallowed every row, and the scan reported nothing at all
    (tmp_path / "m.csv").write_text('id,image,"title\np1,one.jpg,x\np2,two.jpg,y\n')
    with pytest.raises(
        SourceError, match=r"m\.csv:1: unreadable header \(a quote opened on line 1"
    ):
        scan_csv(tmp_path / "m.csv")


def test_quote_left_open_on_the_last_line_reads_as_a_sentence(tmp_path):
    (tmp_path / "m.csv").write_text('id,image,title\np1,one.jpg,x\np2,two.jpg,"y\n')
    scan = scan_csv(tmp_path / "m.csv")
    assert [it.id for it in scan.items] == ["p1"]
    assert "never closed, so the end of line 3 was read as one field" in scan.problems[0].reason


def test_quote_left_open_in_a_long_file_names_the_lines_it_cost(tmp_path):
    # review of issue 16: past csv's field size limit the open quote became "unreadable CSV row
    # (field larger than field limit); skipped", silent about the ~1,900 rows it swallowed
    rows = ["id,image,title", 'p1,one.jpg,"open quote']
    rows += [f"p{i},img{i}.jpg,title {i} " + "x" * 60 for i in range(2, 3000)]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    scan = scan_csv(tmp_path / "m.csv")
    assert len(scan.problems) == 1
    where, reason = scan.problems[0].where, scan.problems[0].reason
    assert where.endswith("m.csv:2")
    lost = re.search(r"so lines 2-(\d+) were skipped: a quote left open\?", reason)
    assert lost, reason
    # every row is either read or inside the reported span
    assert len(scan.items) + int(lost.group(1)) - 1 >= 2999


def test_multiline_fields_and_stray_quotes_stay_accepted(tmp_path):
    (tmp_path / "m.csv").write_text(
        'id,image,title\np1,one.jpg,"a\nlong, quoted\ntitle"\np2,two.jpg,5\'6" tall\n'
        "p3,three.jpg,last row without newline"
    )
    scan = scan_csv(tmp_path / "m.csv")
    assert [it.id for it in scan.items] == ["p1", "p2", "p3"] and scan.problems == []
    assert scan.items[0].metadata["title"] == "a\nlong, quoted\ntitle"


def test_cli_index_encoding_error_is_one_line(tmp_path):
    import subprocess
    import sys

    (tmp_path / "m.csv").write_bytes("id,image,title\np1,one.jpg,Café\n".encode("cp1252"))
    args = ["index", str(tmp_path / "m.csv"), "-c", str(tmp_path / "cat"), "--encoding", "utf-8"]
    res = subprocess.run(
        [sys.executable, "-m", "artsim.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"artsim: error: {tmp_path / 'm.csv'}:2: byte 0xe9 (column 15) cannot be decoded as "
        "utf-8; check the file, or pass --encoding cp1252 (Excel on Windows) or latin-1"
    ]
    assert not (tmp_path / "cat").exists()


def test_utf8_file_with_one_stray_byte_stays_utf8(tmp_path):
    # a UTF-8 export with one cp1252 byte pasted in: reading all of it as cp1252 would garble
    # every accented title, so only the stray byte is replaced, and the warning names its line
    data = "id,image,title\np1,one.jpg,Café\np2,two.jpg,Dürer\n".encode() + b"p3,x.jpg,na\xefve\n"
    (tmp_path / "m.csv").write_bytes(data)
    scan = scan_csv(tmp_path / "m.csv")
    assert [it.metadata["title"] for it in scan.items] == ["Café", "Dürer", "na\ufffdve"]
    assert "1 byte(s) are not, the first (0xef) on line 4" in scan.warnings[0]


# ---------------------------------------------------------------------- csvtext's functions
def test_detect_encoding_guesses_and_says_when_it_guessed(tmp_path):
    p = tmp_path / "m.csv"
    p.write_bytes("a,b\nCafé,x\n".encode())
    assert detect_encoding(p) == Encoding("utf-8-sig")  # a BOM is never part of the header
    assert detect_encoding(p, "auto") == Encoding("utf-8-sig")
    p.write_bytes("a,b\nCafé,x\n".encode("utf-16"))
    assert detect_encoding(p) == Encoding("utf-16")
    p.write_bytes("a,b\nCafé – x\n".encode("cp1252"))
    enc = detect_encoding(p)
    assert enc.name == "cp1252" and enc.errors == "strict"
    assert (
        enc.note
        == f"{p}: not UTF-8 (byte 0xe9 on line 2); read as cp1252. Pass --encoding to choose another."
    )
    p.write_bytes(b"a,b\n\x81\x8d\x8f,x\n")  # undefined in cp1252: only latin-1 reads these
    assert detect_encoding(p).name == "latin-1"


def test_a_given_encoding_is_checked_not_trusted(tmp_path):
    p = tmp_path / "m.csv"
    p.write_bytes(b"a,b\nok,x\nna\xefve,y\n")
    assert detect_encoding(p, "latin-1") == Encoding("iso8859-1")
    assert detect_encoding(p, "CP1252").name == "cp1252"
    with pytest.raises(SourceError) as err:
        detect_encoding(p, "utf-8")
    assert str(err.value).startswith(f"{p}:3: byte 0xef (column 3) cannot be decoded as utf-8")
    with pytest.raises(SourceError, match="unknown encoding 'nope'"):
        detect_encoding(p, "nope")


def _rows(text: str, delimiter: str = ",") -> list:
    return list(iter_rows(io.StringIO(text, newline=""), delimiter=delimiter))


def test_iter_rows_numbers_each_row_by_its_first_line():
    rows = _rows('id,title\n1,"two\nlines"\n2,plain\n')
    assert [(r.line, r.fields, r.problem) for r in rows] == [
        (1, ["id", "title"], None),
        (2, ["1", "two\nlines"], None),
        (4, ["2", "plain"], None),
    ]
    assert [r.fields for r in _rows("a;b\n1;2\n", delimiter=";")] == [["a", "b"], ["1", "2"]]
    assert _rows("") == []


def test_iter_rows_reports_a_quote_left_open_where_it_opened():
    rows = _rows('id,title\n1,ok\n2,"open\n3,swallowed\n')
    assert [r.line for r in rows] == [1, 2, 3]
    assert rows[-1].fields[1].startswith("open\n3,swallowed")
    assert rows[-1].problem == (
        "a quote opened on line 3 is never closed, so lines 3-4 were read as one field; "
        "close the quote (or double it inside a field) and re-run"
    )


def test_opened_quote_names_the_line_of_the_first_multiline_field():
    assert opened_quote(Row(5, ["a", "b\nc", "d\ne"])) == 5
    assert opened_quote(Row(5, ["a\nb", "c", "d\ne"])) == 5
    assert opened_quote(Row(7, ["x", "y"])) is None
