from __future__ import annotations

import os
import re

import pytest

from artsim.errors import SourceError
from artsim.sources import scan_csv, scan_folder, scan_source
from tests.images_factory import gradient


def test_folder_is_recursive_sorted_and_ids_are_relative(tmp_path):
    (tmp_path / "b" / "c").mkdir(parents=True)
    gradient().save(tmp_path / "z.jpg")
    gradient().save(tmp_path / "b" / "c" / "a.PNG")
    gradient().save(tmp_path / "b" / "x.tiff")
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / ".hidden.jpg").write_text("x")
    scan = scan_folder(tmp_path)
    assert [it.id for it in scan.items] == ["b/c/a.PNG", "b/x.tiff", "z.jpg"]
    assert all(it.image.startswith("/") for it in scan.items)


def test_csv_manifest_keeps_metadata_and_reports_bad_rows(tmp_path):
    gradient().save(tmp_path / "one.jpg")
    (tmp_path / "m.csv").write_text(
        "id,image,title,artist\n"
        "p1,one.jpg,A Title,Someone\n"
        'p2,"https://example.org/iiif/2/full/!200,200/0/default.jpg",Remote,Other\n'
        "p3,,No image,X\n"
        "p4,one.jpg,too,many,fields\n"
        "p1,one.jpg,dup,dup\n"
        "p5,file:///etc/passwd,bad,scheme\n"
    )
    scan = scan_csv(tmp_path / "m.csv")
    assert [it.id for it in scan.items] == ["p1", "p2"]
    assert scan.items[0].metadata == {"title": "A Title", "artist": "Someone"}
    assert scan.items[0].image == str((tmp_path / "one.jpg").resolve())
    assert scan.items[1].image.startswith("https://")
    reasons = {p.where.rsplit(":", 1)[1]: p.reason for p in scan.problems}
    assert "empty 'image'" in reasons["4"]
    assert "row has 5 fields, the header has 4" in reasons["5"]
    assert "duplicate id" in reasons["6"]
    assert "scheme" in reasons["7"]


def test_csv_without_id_uses_relative_path(tmp_path):
    (tmp_path / "img").mkdir()
    gradient().save(tmp_path / "img" / "a.jpg")
    (tmp_path / "m.csv").write_text("image,title\nimg/a.jpg,T\n")
    assert scan_csv(tmp_path / "m.csv").items[0].id == "img/a.jpg"


def test_csv_missing_image_column(tmp_path):
    (tmp_path / "m.csv").write_text("path,title\na.jpg,T\n")
    with pytest.raises(SourceError, match="no 'image' column"):
        scan_csv(tmp_path / "m.csv")


def test_bad_source(tmp_path):
    with pytest.raises(SourceError):
        scan_source(tmp_path / "nope")
    with pytest.raises(SourceError, match="not found"):
        scan_csv(tmp_path / "nope.csv")


# --- issue 16: folders with loops, unsupported files and unreadable subfolders ---


def test_symlink_loop_is_one_problem_and_the_rest_is_indexed(tmp_path):
    gradient().save(tmp_path / "ok.jpg")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.jpg").symlink_to("b.jpg")
    (tmp_path / "sub" / "b.jpg").symlink_to("a.jpg")
    (tmp_path / "gone.jpg").symlink_to("nowhere.jpg")
    scan = scan_folder(tmp_path)
    assert [it.id for it in scan.items] == ["ok.jpg"]
    reasons = {p.where: p.reason for p in scan.problems}
    assert "symlink loop" in reasons[str(tmp_path / "sub" / "a.jpg")]
    assert "symlink loop" in reasons[str(tmp_path / "sub" / "b.jpg")]
    assert "broken symlink" in reasons[str(tmp_path / "gone.jpg")]


def test_linked_folders_are_listed_not_followed(tmp_path):
    (tmp_path / "sub").mkdir()
    gradient().save(tmp_path / "sub" / "x.png")
    (tmp_path / "sub" / "up").symlink_to("..")  # a folder loop
    scan = scan_folder(tmp_path)
    assert [it.id for it in scan.items] == ["sub/x.png"]
    assert [(p.where, p.reason.split(":")[0]) for p in scan.problems] == [
        (str(tmp_path / "sub" / "up"), "folder skipped")
    ]


def test_csv_row_pointing_at_a_symlink_loop_does_not_abort_the_scan(tmp_path):
    (tmp_path / "a.jpg").symlink_to("b.jpg")
    (tmp_path / "b.jpg").symlink_to("a.jpg")
    (tmp_path / "m.csv").write_text("id,image\nx,a.jpg\n")
    assert [it.id for it in scan_csv(tmp_path / "m.csv").items] == ["x"]


def test_unsupported_image_formats_are_listed_not_dropped(tmp_path):
    gradient().save(tmp_path / "ok.png")
    gradient().save(tmp_path / "anim.gif")
    (tmp_path / "notes.txt").write_text("not an image, not listed")
    scan = scan_folder(tmp_path)
    assert [it.id for it in scan.items] == ["ok.png"]
    assert [(p.where, p.reason.split(";")[0]) for p in scan.problems] == [
        (str(tmp_path / "anim.gif"), "unsupported image format (.gif)")
    ]


def test_unreadable_subfolder_is_listed(tmp_path, monkeypatch):
    import os

    gradient().save(tmp_path / "ok.png")
    (tmp_path / "locked").mkdir()
    gradient().save(tmp_path / "locked" / "hidden.png")
    real_scandir = os.scandir

    def scandir(path="."):  # what os.walk meets in a folder without read permission
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    scan = scan_folder(tmp_path)
    assert [it.id for it in scan.items] == ["ok.png"]
    assert [(p.where, p.reason) for p in scan.problems] == [
        (str(tmp_path / "locked"), "folder skipped: permission denied")
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_subfolder_is_listed_for_real(tmp_path):
    (tmp_path / "locked").mkdir()
    gradient().save(tmp_path / "locked" / "x.png")
    (tmp_path / "locked").chmod(0)
    try:
        scan = scan_folder(tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert scan.items == [] and "permission denied" in scan.problems[0].reason


# --- issue 16: CSV text encodings and open quotes ---


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
