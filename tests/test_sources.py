from __future__ import annotations

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
    assert "wrong number of fields" in reasons["5"]
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
