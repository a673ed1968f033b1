"""The NGA Open Data reader: fixtures in NGA's exact schema, and the partial sample dump."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from artsim.errors import SourceError
from artsim.sources.nga import (
    OBJECTS_COLUMNS,
    PUBLISHED_IMAGES_COLUMNS,
    iter_table,
    parse_year,
    scan_nga,
)

FIXTURES = Path(__file__).parent / "fixtures" / "nga"
IIIF = "https://api.nga.gov/iiif/"
CANONICAL_KEYS = {
    "objectid",
    "title",
    "attribution",
    "artist",
    "date",
    "year",
    "year_end",
    "classification",
    "medium",
    "style",
    "school",
    "theme",
    "keyword",
    "technique",
    "image_url",
    "source",
}


def by_id(scan):
    return {item.id: item for item in scan.items}


def reasons(scan):
    return {p.where.rsplit("/", 1)[-1]: p.reason for p in scan.problems}


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    """A writable copy of the fixture dump."""
    target = tmp_path / "opendata"
    shutil.copytree(FIXTURES, target)
    return target


def test_fixture_columns_are_nga_schema():
    # the fixtures must keep NGA's exact column order (schema/objects.sql, published_images.sql)
    header = (FIXTURES / "objects.csv").read_text().splitlines()[0].split(",")
    assert len(header) == 30
    assert header[:8] == [
        "objectid",
        "accessioned",
        "accessionnum",
        "locationid",
        "title",
        "displaydate",
        "beginyear",
        "endyear",
    ]
    assert header[-3:] == ["lastdetectedmodification", "wikidataid", "customprinturl"]
    images = (FIXTURES / "published_images.csv").read_text().splitlines()[0].split(",")
    assert images == [
        "uuid",
        "iiifurl",
        "iiifthumburl",
        "viewtype",
        "sequence",
        "width",
        "height",
        "maxpixels",
        "created",
        "modified",
        "depictstmsobjectid",
        "assistivetext",
    ]


def test_paintings_joined_with_images_artists_and_terms():
    scan = scan_nga(FIXTURES)
    items = by_id(scan)
    # paintings by classification, plus 6 (no classification, Technique 'painted surface');
    # 20 has no primary image; 90212 is a print; 66666 a drypoint; 145077 undecidable
    assert [item.id for item in scan.items] == ["1", "5", "6", "19", "1156"]
    paul = items["1"]
    url = IIIF + "7bbcfd01-e774-46e7-96d1-a3b03598cd8a/full/!1024,1024/0/default.jpg"
    assert paul.image == url
    assert paul.metadata == {
        "objectid": 1,
        "title": "Saint Paul",
        "attribution": "Bernardo Daddi",
        "artist": "Bernardo Daddi",
        "date": "1333",
        "year": 1333,
        "year_end": 1333,
        "classification": "Painting",
        "medium": "tempera on panel",
        "style": ["Gothic"],
        "school": ["Florentine"],
        "theme": ["saints"],
        "keyword": ["Paul"],
        "technique": ["painted surface", "punched design", "incised (indented with stylus)"],
        "image_url": url,
        "source": "nga",
    }
    for item in scan.items:
        assert set(item.metadata) <= CANONICAL_KEYS
        assert item.metadata["objectid"] == int(item.id)


def test_painting_without_classification_kept_by_technique():
    meta = by_id(scan_nga(FIXTURES))["6"].metadata
    assert "classification" not in meta
    assert "painted surface" in meta["technique"]
    # two painters, in NGA display order
    assert meta["artist"] == "Puccio di Simone; Allegretto Nuzi"
    assert meta["school"] == ["Florentine", "Umbrian"]


def test_several_artists_primary_image_and_markup():
    item = by_id(scan_nga(FIXTURES))["1156"]
    # 'related artist' (Workshop of) is not a maker when makers are listed
    assert item.metadata["artist"] == "Gerard David; Netherlandish 15th/16th Century"
    # two primary images: the lowest sequence wins; the box never exceeds the image (900 px)
    assert item.image == IIIF + "5ef4c2b2-4df1-43d0-aaac-21ee5bef1fcd/full/!900,900/0/default.jpg"
    # NGA's _italics_ markup is removed; a duplicated term (two termids) appears once
    assert item.metadata["title"] == "The Saint Anne Altarpiece: Saint Anthony of Padua"
    assert item.metadata["school"] == ["Bruges"]


def test_maxpixels_limits_the_requested_box():
    # NGA serves object 5 only up to 640 px (fair use): asking more gives a blurred upscale
    item = by_id(scan_nga(FIXTURES, iiif_size=1024))["5"]
    assert item.image.endswith("/full/!640,640/0/default.jpg")
    small = by_id(scan_nga(FIXTURES, iiif_size=300))
    assert small["5"].image.endswith("/full/!300,300/0/default.jpg")
    assert small["1"].image.endswith("/full/!300,300/0/default.jpg")


def test_broken_rows_and_bad_years_are_problems_with_line_numbers():
    scan = scan_nga(FIXTURES)
    got = reasons(scan)
    # object 1 spans lines 2-3 (quoted newline), so the short row is on line 5
    assert "objects.csv:5" in got and "6 fields" in got["objects.csv:5"]
    assert "'beginyear'" in got["objects.csv:7"] and "c. 1450" in got["objects.csv:7"]
    assert got["objects.csv:8"].startswith("objectid 20 has no image")
    assert "'x12'" in got["objects.csv:13"]
    assert len(scan.problems) == 4
    david = by_id(scan)["19"].metadata
    assert "year" not in david and david["year_end"] == 1455 and david["date"] == "c. 1450"


def test_all_classifications_keeps_prints_and_undecided():
    scan = scan_nga(FIXTURES, all_classifications=True)
    items = by_id(scan)
    assert list(items) == ["1", "5", "6", "19", "1156", "90212", "66666", "145077"]
    # 'artist after' and 'publisher' rows are not the maker of these prints
    assert items["90212"].metadata["artist"] == "Gilles Demarteau the Elder"
    assert items["90212"].metadata["classification"] == "Print"
    assert items["66666"].metadata["artist"] == "Richard Diebenkorn"
    assert "artist" not in items["145077"].metadata
    assert not any("cannot be recognised" in w for w in scan.warnings)


def test_undecidable_objects_are_counted_in_a_warning():
    scan = scan_nga(FIXTURES)
    assert any(w.startswith("1 object(s)") and "no Technique term" in w for w in scan.warnings)


def test_limit():
    assert [i.id for i in scan_nga(FIXTURES, limit=2).items] == ["1", "5"]
    assert scan_nga(FIXTURES, limit=0).items == []


def test_local_image_preferred_over_iiif(tmp_path: Path):
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "1.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    items = by_id(scan_nga(FIXTURES, images_dir=tmp_path))
    assert items["1"].image == str((tmp_path / "1.jpg").resolve())
    assert items["1"].metadata["image_url"].startswith(IIIF)  # still known, for display
    assert items["5"].image.startswith(IIIF)


def test_local_image_rescues_object_without_published_image(tmp_path: Path):
    Image.new("RGB", (8, 8)).save(tmp_path / "20.jpg")
    scan = scan_nga(FIXTURES, images_dir=tmp_path)
    item = by_id(scan)["20"]
    assert item.image == str((tmp_path / "20.jpg").resolve())
    assert "image_url" not in item.metadata
    assert not any("objectid 20" in p.reason for p in scan.problems)


def test_renamed_column_is_an_error_listing_expected_columns(dump: Path):
    path = dump / "objects.csv"
    text = path.read_text()
    path.write_text(text.replace(",classification,", ",object_type,", 1))
    with pytest.raises(SourceError) as err:
        scan_nga(dump)
    message = str(err.value)
    assert "objects.csv" in message and "classification" in message
    for column in OBJECTS_COLUMNS:
        assert column in message


def test_published_images_missing_column(dump: Path):
    path = dump / "published_images.csv"
    path.write_text(path.read_text().replace("viewtype", "view_type", 1))
    with pytest.raises(SourceError) as err:
        scan_nga(dump)
    for column in PUBLISHED_IMAGES_COLUMNS:
        assert column in str(err.value)


def test_missing_files(dump: Path, tmp_path: Path):
    with pytest.raises(SourceError, match="not a folder"):
        scan_nga(tmp_path / "nowhere")
    (dump / "published_images.csv").unlink()
    with pytest.raises(SourceError) as err:
        scan_nga(dump)
    assert "published_images.csv" in str(err.value) and "iiifurl" in str(err.value)
    # with local images the dump is usable, with a warning
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (8, 8)).save(images / "5.jpg")
    scan = scan_nga(dump, images_dir=images)
    assert [i.id for i in scan.items] == ["5"]
    assert any("published_images.csv not found" in w for w in scan.warnings)
    # nothing to take ids from
    (dump / "objects.csv").unlink()
    with pytest.raises(SourceError) as err:
        scan_nga(dump)
    assert "objects.csv" in str(err.value) and "classification" in str(err.value)


def test_missing_side_tables_are_warnings(dump: Path):
    (dump / "objects_terms.csv").unlink()
    (dump / "constituents.csv").unlink()
    scan = scan_nga(dump)
    # without terms, 6 can no longer be recognised as a painting
    assert [i.id for i in scan.items] == ["1", "5", "19", "1156"]
    assert not any("artist" in i.metadata or "style" in i.metadata for i in scan.items)
    assert any("objects_terms.csv not found" in w for w in scan.warnings)
    assert any("constituents.csv not found" in w for w in scan.warnings)


def test_header_only_objects_csv(dump: Path):
    # the only objects.csv in NGA's git history that is not LFS-lost is header-only
    path = dump / "objects.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    scan = scan_nga(dump)
    assert scan.items == [] and scan.problems == []


def test_unreadable_rows_do_not_stop_the_stream(dump: Path):
    path = dump / "objects.csv"
    lines = path.read_text().splitlines(keepends=True)
    # a field over the csv module's limit (131,072 characters) on line 4 (object 5)
    huge = lines[3].replace("Madonna of Humility", '"' + "x" * 200_000 + '"', 1)
    path.write_text("".join([*lines[:3], huge, *lines[4:]]))
    scan = scan_nga(dump)
    assert "5" not in by_id(scan) and "1156" in by_id(scan)
    assert "line 4 was skipped" in reasons(scan)["objects.csv:4"]


def test_iter_table_streams_named_columns(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text('A,B,C\n1,"two\nlines",3\n4,5\n6,7,8\n', encoding="utf-8")
    problems: list = []
    rows = list(iter_table(path, ["a", "c"], ["b", "zzz"], problems))
    assert rows == [
        (2, {"a": "1", "c": "3", "b": "two\nlines"}),
        (5, {"a": "6", "c": "8", "b": "7"}),
    ]
    assert [p.where for p in problems] == [f"{path}:4"]


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("1520", 1520),
        (" 1520 ", 1520),
        ("-30", -30),
        ("1520.0", 1520),
        ("c. 1520", None),
        ("", None),
    ],
)
def test_parse_year(text, year):
    assert parse_year(text) == year


def test_partial_sample_dump(data_dir: Path):
    opendata = data_dir / "nga" / "opendata"
    images = data_dir / "nga" / "images"
    scan = scan_nga(opendata, images_dir=images)
    assert scan.problems == []
    # 330 images; 268 have the Technique 'painted surface', 34 have no Technique term at all
    assert len(scan.items) == 268
    assert any(
        "objects.csv" in w and "title" in w and "year" in w and "classification" in w
        for w in scan.warnings
    )
    assert any(w.startswith("34 object(s)") for w in scan.warnings)
    items = by_id(scan)
    daddi = items["1"]
    assert daddi.image == str((images / "1.jpg").resolve())
    assert daddi.metadata["artist"] == "Bernardo Daddi"
    assert daddi.metadata["technique"][0] == "painted surface"
    # only NGA's 200-px thumbnail URL is in the sample: image_url keeps it as given
    assert daddi.metadata["image_url"].endswith("/full/!200,200/0/default.jpg")
    assert "title" not in daddi.metadata
    for item in scan.items:
        assert set(item.metadata) <= CANONICAL_KEYS
        assert Path(item.image).is_file()
    assert len(scan_nga(opendata, images_dir=images, all_classifications=True).items) == 330


def test_partial_sample_without_images_uses_thumbnail_list(data_dir: Path):
    scan = scan_nga(data_dir / "nga" / "opendata", iiif_size=512)
    # 153 objects have a thumbnail URL; the IIIF base is recovered from it for the 512 box
    assert 0 < len(scan.items) <= 153
    item = scan.items[0]
    assert item.image.startswith(IIIF) and item.image.endswith("/full/!512,512/0/default.jpg")
    assert item.metadata["image_url"].endswith("/full/!200,200/0/default.jpg")
    assert any("published_images_partial.csv" in w for w in scan.warnings)
