"""Another museum's CSV + IIIF collection read through a TOML mapping file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from artsim.errors import SourceError
from artsim.sources.mapping import load_mapping, scan_mapped_csv

DOCS = Path(__file__).resolve().parents[1] / "docs" / "collections.md"

CSV = """\
inv,Title,Painter,Date,Type,Tags,Image
A1,Harbour at Dawn,Ada Maler,1871,painting,sea;boats,https://img.example.org/a1.jpg
A2,The Orchard,Bo Pintor,c. 1880,painting,,https://img.example.org/a2.jpg
A3,Broken row,only three fields
A4,Sketch,Ada Maler,1870,drawing,,https://img.example.org/a4.jpg
A5,No Picture,Bo Pintor,1890,painting,,
A6,Local File,Ada Maler,1875,painting,,file:///etc/passwd
,No Id,Ada Maler,1875,painting,,https://img.example.org/x.jpg
A1,Duplicate,Ada Maler,1871,painting,,https://img.example.org/a1b.jpg
A7,Night,Ada Maler,1899,Painting,night,https://img.example.org/a7.jpg
"""

TOML = """\
[collection]
name = "harbour-museum"

[columns]
id = "inv"
title = "Title"
artist = "Painter"
date = "Date"
year = "Date"
classification = "Type"

[lists]
theme = { column = "Tags", separator = ";" }

[image]
url = "Image"

[filter]
column = "Type"
values = ["painting"]
"""


def write(tmp_path: Path, csv_text: str, toml_text: str) -> tuple[Path, Path]:
    csv_path = tmp_path / "collection.csv"
    toml_path = tmp_path / "mapping.toml"
    csv_path.write_text(csv_text, encoding="utf-8")
    toml_path.write_text(toml_text, encoding="utf-8")
    return csv_path, toml_path


def problems_by_line(scan) -> dict[int, str]:
    return {int(p.where.rsplit(":", 1)[1]): p.reason for p in scan.problems}


def test_mapped_csv_canonical_metadata(tmp_path: Path):
    scan = scan_mapped_csv(*write(tmp_path, CSV, TOML))
    items = {item.id: item for item in scan.items}
    assert list(items) == ["A1", "A2", "A7"]
    assert items["A1"].image == "https://img.example.org/a1.jpg"
    assert items["A1"].metadata == {
        "title": "Harbour at Dawn",
        "artist": "Ada Maler",
        "date": "1871",
        "year": 1871,
        "classification": "painting",
        "theme": ["sea", "boats"],
        "image_url": "https://img.example.org/a1.jpg",
        "source": "harbour-museum",
    }
    # the filter is case-insensitive; empty values are left out
    assert items["A7"].metadata["classification"] == "Painting"
    assert "theme" not in items["A2"].metadata
    # an unparseable year is a problem, the record is kept without it
    assert "year" not in items["A2"].metadata and items["A2"].metadata["date"] == "c. 1880"


def test_mapped_csv_problems(tmp_path: Path):
    scan = scan_mapped_csv(*write(tmp_path, CSV, TOML))
    got = problems_by_line(scan)
    assert "'Date' = 'c. 1880' is not a year" in got[3]
    assert "3 fields" in got[4]
    assert "has no image" in got[6]
    assert "refused URL scheme 'file:'" in got[7]
    assert "empty id" in got[8]
    assert "duplicate id 'A1'" in got[9]
    assert len(scan.problems) == 6


def test_iiif_base_with_prefix_and_size(tmp_path: Path):
    csv_text = "id,iiif\nx1,abc-123\nx2,\n"
    toml = """
[columns]
id = "id"
[image]
iiif_base = "iiif"
iiif_prefix = "https://iiif.example.org/iiif/"
iiif_size = 640
"""
    scan = scan_mapped_csv(*write(tmp_path, csv_text, toml))
    assert [i.image for i in scan.items] == [
        "https://iiif.example.org/iiif/abc-123/full/!640,640/0/default.jpg"
    ]
    assert scan.items[0].metadata == {"image_url": scan.items[0].image, "source": "csv"}
    assert "has no image" in scan.problems[0].reason


def test_local_dir_preferred(tmp_path: Path):
    images = tmp_path / "imgs"
    images.mkdir()
    Image.new("RGB", (4, 4)).save(images / "A2.jpg")
    toml = TOML.replace('url = "Image"', 'url = "Image"\nlocal_dir = "imgs"')
    scan = scan_mapped_csv(*write(tmp_path, CSV, toml))
    items = {item.id: item for item in scan.items}
    assert items["A2"].image == str((images / "A2.jpg").resolve())
    assert items["A2"].metadata["image_url"] == "https://img.example.org/a2.jpg"
    assert items["A1"].image == "https://img.example.org/a1.jpg"


def test_local_dir_alone_and_no_escape(tmp_path: Path):
    images = tmp_path / "imgs"
    images.mkdir()
    Image.new("RGB", (4, 4)).save(images / "p1.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "secret.png")
    toml = '[columns]\nid = "id"\n[image]\nlocal_dir = "imgs"\nlocal_name = "{id}.png"\n'
    scan = scan_mapped_csv(*write(tmp_path, "id\np1\n../secret\n", toml))
    assert [i.id for i in scan.items] == ["p1"]
    assert "has no image" in scan.problems[0].reason


def test_extra_columns_and_year_from_date(tmp_path: Path):
    csv_text = "id;date;url;dept\nq1;c. 1650-1655;https://x.org/1.jpg;Paintings\n"
    toml = """
[collection]
delimiter = ";"
year_from_date = true
[columns]
id = "id"
date = "date"
[image]
url = "url"
[extra]
department = "dept"
"""
    scan = scan_mapped_csv(*write(tmp_path, csv_text, toml))
    meta = scan.items[0].metadata
    assert meta["year"] == 1650 and meta["department"] == "Paintings"


def test_encoding(tmp_path: Path):
    csv_path = tmp_path / "c.csv"
    csv_path.write_bytes(
        "id,title,url\n1,Caf\xe9 \xe0 Arles,https://x.org/1.jpg\n".encode("cp1252")
    )
    toml_path = tmp_path / "m.toml"
    toml_path.write_text(
        '[collection]\nencoding = "cp1252"\n[columns]\nid = "id"\ntitle = "title"\n'
        '[image]\nurl = "url"\n'
    )
    assert scan_mapped_csv(csv_path, toml_path).items[0].metadata["title"] == "Café à Arles"


def test_missing_column_lists_expected(tmp_path: Path):
    csv_path, toml_path = write(tmp_path, CSV.replace("Painter", "Maker", 1), TOML)
    with pytest.raises(SourceError) as err:
        scan_mapped_csv(csv_path, toml_path)
    message = str(err.value)
    assert "Painter" in message
    for column in ("inv", "Title", "Date", "Type", "Tags", "Image"):
        assert column in message


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ('[columns]\nid = "a"\ntitel = "b"\n[image]\nurl = "u"\n', "unknown key 'titel'"),
        ('[colums]\nid = "a"\n', r"unknown table \[colums\]"),
        ('[columns]\ntitle = "a"\n[image]\nurl = "u"\n', "needs 'id'"),
        ('[columns]\nid = "a"\n', r"\[image\] needs"),
        ('[columns]\nid = "a"\n[image]\nurl = "u"\niiif_base = "b"\n', "not both"),
        ('[columns]\nid = "a"\n[image]\nurl = "u"\n[extra]\ntitle = "t"\n', "clashes"),
        ('[columns]\nid = "a"\nstyle = "s"\n[image]\nurl = "u"\n', "unknown key 'style'"),
        ('[columns]\nid = "a"\n[image]\nurl = "u"\niiif_size = 0\n', "iiif_size"),
        (
            '[columns]\nid = "a"\n[image]\niiif_base = "b"\niiif_prefix = "file:///x/"\n',
            "iiif_prefix",
        ),
        ('[columns]\nid = "a"\n[image]\nurl = "u"\n[filter]\ncolumn = "t"\n', "values"),
        (
            '[collection]\nencoding = "klingon"\n[columns]\nid = "a"\n[image]\nurl = "u"\n',
            "encoding",
        ),
        ("[columns\nid = 1", "not valid TOML"),
    ],
)
def test_bad_mappings(tmp_path: Path, toml: str, match: str):
    path = tmp_path / "m.toml"
    path.write_text(toml)
    with pytest.raises(SourceError, match=match):
        load_mapping(path)


def test_missing_files(tmp_path: Path):
    with pytest.raises(SourceError, match="mapping file not found"):
        scan_mapped_csv(tmp_path / "a.csv", tmp_path / "none.toml")
    (tmp_path / "m.toml").write_text(TOML)
    with pytest.raises(SourceError, match="CSV not found") as err:
        scan_mapped_csv(tmp_path / "a.csv", tmp_path / "m.toml")
    assert "Painter" in str(err.value)


def test_documented_example_runs(tmp_path: Path):
    """The full example in docs/collections.md gives what the page says."""
    text = DOCS.read_text(encoding="utf-8")
    csv_block = re.search(r"```csv\n(.*?)```", text, re.S).group(1)
    toml_block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    scan = scan_mapped_csv(*write(tmp_path, csv_block, toml_block))
    assert [i.id for i in scan.items] == ["SK-A-1001", "SK-A-1002", "SK-A-1004"]
    first = scan.items[0]
    url = "https://iiif.example-museum.org/iiif/a1b2c3/full/!1024,1024/0/default.jpg"
    assert first.image == url
    assert first.metadata == {
        "title": "Portrait of a Woman",
        "artist": "Jan Example",
        "date": "c. 1650",
        "year": 1650,
        "year_end": 1655,
        "classification": "painting",
        "medium": "oil on canvas",
        "style": ["Baroque", "Dutch Golden Age"],
        "keyword": ["portrait", "woman"],
        "image_url": url,
        "source": "example-museum",
        "department": "Paintings",
        "credit_line": "Purchased 1901",
    }
    assert scan.items[1].metadata["year"] == 1660  # year_from_date, '1660s'
    reasons = [p.reason for p in scan.problems]
    assert any("'SK-A-1003' has no image" in r for r in reasons)
    assert any("'c. 16??' is not a year" in r for r in reasons)
    assert len(reasons) == 2


def test_encoding_is_detected_and_can_be_overridden(tmp_path: Path):
    csv_path = tmp_path / "c.csv"
    csv_path.write_bytes("id,title,url\n1,Café à Arles,https://x.org/1.jpg\n".encode("cp1252"))
    toml_path = tmp_path / "m.toml"
    toml_path.write_text('[columns]\nid = "id"\ntitle = "title"\n[image]\nurl = "url"\n')
    scan = scan_mapped_csv(csv_path, toml_path)
    assert scan.items[0].metadata["title"] == "Café à Arles"
    assert "read as cp1252" in scan.warnings[0]
    assert scan_mapped_csv(csv_path, toml_path, encoding="latin-1").warnings == []
    with pytest.raises(SourceError, match=r"c\.csv:2: byte 0xe9"):
        scan_mapped_csv(csv_path, toml_path, encoding="utf-8")


def test_unterminated_quote_names_the_line(tmp_path: Path):
    text = CSV.splitlines(keepends=True)
    text[2] = text[2].replace(",", ',"', 1)  # opens a quote on line 3 that never closes
    csv_path, toml_path = write(tmp_path, "".join(text), TOML)
    scan = scan_mapped_csv(csv_path, toml_path)
    assert "quote opened on line 3 is never closed" in problems_by_line(scan)[3]


@pytest.mark.parametrize("values", ["0", "false", '""', "{}"])
def test_filter_values_of_the_wrong_type_are_an_error_even_without_column(tmp_path, values):
    # found by tests/test_fuzz.py: `values = 0` without `column` was a TypeError traceback
    toml_path = tmp_path / "m.toml"
    toml_path.write_text(f'[columns]\nid = "id"\n[image]\nurl = "u"\n[filter]\nvalues = {values}\n')
    with pytest.raises(SourceError, match=r"\[filter\] values must be a non-empty list"):
        load_mapping(toml_path)


def test_local_copy_that_is_a_symlink_loop_falls_back_to_the_url(tmp_path: Path):
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "A1.jpg").symlink_to("A1b.jpg")
    (images / "A1b.jpg").symlink_to("A1.jpg")
    toml = TOML.replace('url = "Image"', 'url = "Image"\nlocal_dir = "imgs"')
    scan = scan_mapped_csv(*write(tmp_path, CSV, toml))
    assert {item.id: item.image for item in scan.items}["A1"] == "https://img.example.org/a1.jpg"
