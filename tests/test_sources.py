from __future__ import annotations

import os

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
