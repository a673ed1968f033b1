"""artsim.catalog.check and `artsim check`: find damage, set it aside, say what to redo."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from artsim.catalog import Catalog, store
from artsim.catalog.check import check_catalog, report_lines
from artsim.catalog.local import LOCAL_MODEL
from artsim.cli import app
from artsim.errors import CatalogError
from tests.images_factory import gradient

GLOBAL = ("vectors", "global", "efficientnet-lite2")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A 6-painting catalog in 3 parts per folder (built once), and its source folder."""
    root = tmp_path_factory.mktemp("check")
    src = root / "src"
    src.mkdir()
    for i in range(6):
        gradient(90 + 10 * i, 80, seed=i).save(src / f"img{i}.jpg")
    Catalog.create(root / "cat").add(src, batch_size=2)
    return root / "cat", src


@pytest.fixture
def cat(built, tmp_path):
    path = tmp_path / "cat"
    shutil.copytree(built[0], path)
    return path


def _truncate(part):
    part.write_bytes(part.read_bytes()[:64])


def test_a_healthy_catalog_is_ok(cat):
    report = check_catalog(cat)
    assert report.ok and not report.problems and not report.notes
    assert report.items == 6
    assert report.aspects["global"].rows == 6 and report.aspects["global"].items_done == 6
    assert report.redo == []
    assert report_lines(report)[-1].startswith("ok")


def test_damaged_vector_part_is_moved_aside_and_redone(cat, built):
    part = store.list_parts(cat.joinpath(*GLOBAL))[1]
    _truncate(part)
    report = check_catalog(cat)
    assert not report.ok
    assert [d.path for d in report.damaged] == [part]
    assert any(str(part) in p for p in report.problems)
    assert len(report.redo) == 2  # the two paintings of that part have no vectors now

    report = check_catalog(cat, repair=True)
    assert report.ok and report.remaining == []
    moved = cat / "damaged" / "vectors" / "global" / "efficientnet-lite2" / part.name
    assert moved.is_file() and not part.exists()  # set aside, never deleted
    assert len(report.redo) == 2
    opened = Catalog.open(cat)
    assert len(opened.aspect("global")) == 4
    assert opened.add(built[1]).added == 2  # a re-run redoes exactly those
    again = Catalog.open(cat)
    assert len(again.aspect("global")) == 6 and len(again.search("img0.jpg", k=5)) == 5
    assert check_catalog(cat).ok


def test_a_damaged_part_of_a_complete_aspect_is_redone_by_a_plain_re_run(cat, built):
    """local, given to every painting (the default), loses a third of its rows: still the
    catalog's for all its paintings (the manifest's "complete"), so a plain re-run redoes them."""
    local = cat / "vectors" / "local" / LOCAL_MODEL
    part = store.list_parts(local)[1]
    _truncate(part)
    report = check_catalog(cat, repair=True)
    assert report.ok and len(report.redo) == 2
    opened = Catalog.open(cat)
    assert opened.manifest["aspects"]["local"]["complete"] is True
    assert opened.default_aspects() == ["global", "local"]
    summary = opened.add(built[1])
    assert summary.added == 2 and set(summary.aspects) == {"local"}  # not re-embedded
    assert len(Catalog.open(cat).aspect("local").done) == 6 and check_catalog(cat).ok


def test_damaged_items_part_drops_its_rows_and_lists_them(cat, built):
    part = store.list_parts(cat / "items")[0]
    lost = set(pa.parquet.read_table(part).column("id").to_pylist())
    _truncate(part)
    with pytest.raises(CatalogError, match="damaged catalog file"):
        Catalog.open(cat)
    report = check_catalog(cat, repair=True)
    assert report.ok and set(report.redo) == lost
    opened = Catalog.open(cat)
    assert len(opened) == 4 and set(opened.aspect("global").item_ids).isdisjoint(lost)
    assert opened.add(built[1]).added == 2
    assert len(Catalog.open(cat)) == 6


def test_wrong_vector_size_and_missing_columns_are_damage(cat):
    folder = cat.joinpath(*GLOBAL)
    bad = pa.table(
        {"item_id": ["img0.jpg"], "row_id": ["img0.jpg"], "info": [""],
         "vec_global": store.vector_column(np.ones((1, 5), np.float32))}
    )  # fmt: skip
    store.atomic_write_table(store.next_part_path(folder), bad)
    store.atomic_write_table(store.next_part_path(folder), pa.table({"item_id": ["img1.jpg"]}))
    report = check_catalog(cat)
    reasons = sorted(d.reason for d in report.damaged)
    assert len(reasons) == 2
    assert "missing column" in reasons[0] and "5 values, not 1400" in reasons[1]
    assert check_catalog(cat, repair=True).ok
    assert len(Catalog.open(cat).aspect("global")) == 6


def test_duplicates_are_noted_and_merged_by_repair(cat):
    folder = cat / "items"
    first = store.list_parts(folder)[0]
    shutil.copy(first, store.next_part_path(folder))  # what a crash mid-merge leaves
    report = check_catalog(cat)
    assert report.ok and report.duplicate_items == 2
    assert any("repeated rows" in n for n in report.notes)
    report = check_catalog(cat, repair=True)
    assert len(store.list_parts(folder)) == 1 and check_catalog(cat).duplicate_items == 0
    assert len(Catalog.open(cat)) == 6


def test_stale_counts_are_rewritten(cat):
    m = json.loads((cat / "manifest.json").read_text())
    m["counts"]["items"] = 176
    m["aspects"]["global"]["count"] = 0
    (cat / "manifest.json").write_text(json.dumps(m))
    report = check_catalog(cat)
    assert report.ok and any("176" in n for n in report.notes)
    check_catalog(cat, repair=True)
    m = json.loads((cat / "manifest.json").read_text())
    assert m["counts"]["items"] == 6 and m["aspects"]["global"]["count"] == 6


def test_manifest_without_model_is_rebuilt(cat):
    m = json.loads((cat / "manifest.json").read_text())
    sha = m["model"]["weights_sha256"]
    del m["model"]
    (cat / "manifest.json").write_text(json.dumps(m))
    report = check_catalog(cat)
    assert not report.ok and any('"model"' in p for p in report.problems)
    report = check_catalog(cat, repair=True)
    assert report.ok, report.remaining
    assert (cat / "damaged" / "manifest.json").is_file()
    opened = Catalog.open(cat)
    assert opened.manifest["model"]["weights_sha256"] == sha
    assert len(opened.search("img1.jpg", k=3)) == 3


def test_repair_needs_the_writer_lock(cat):
    with store.writer_lock(cat), pytest.raises(CatalogError, match="another artsim process"):
        check_catalog(cat, repair=True)


def test_not_a_catalog(tmp_path):
    with pytest.raises(CatalogError, match="no artsim catalog"):
        check_catalog(tmp_path)


def test_cli_check(cat):
    runner = CliRunner()
    result = runner.invoke(app, ["check", str(cat)])
    assert result.exit_code == 0 and "ok" in result.output
    _truncate(store.list_parts(cat.joinpath(*GLOBAL))[0])
    result = runner.invoke(app, ["check", str(cat)])
    assert result.exit_code == 1
    assert "damaged" in result.output and "--repair" in result.output
    result = runner.invoke(app, ["check", str(cat), "--repair", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] and len(data["redo"]) == 2 and data["damaged"][0]["moved_to"]


def test_lost_manifest_is_rebuilt(cat):
    (cat / "manifest.json").unlink()
    with pytest.raises(CatalogError, match=r"check .* --repair"):
        Catalog.open(cat)
    assert not check_catalog(cat).ok
    assert check_catalog(cat, repair=True).ok
    assert len(Catalog.open(cat).search("img2.jpg", k=2)) == 2


def test_a_rebuilt_manifest_keeps_the_input_size(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        gradient(90, 80 + 10 * i, seed=i).save(src / f"img{i}.jpg")
    cat = tmp_path / "cat"
    Catalog.create(cat, size=260).add(src, aspects=["global"])
    m = json.loads((cat / "manifest.json").read_text())
    del m["model"]["name"]  # damaged, but what it says of the input size survives
    (cat / "manifest.json").write_text(json.dumps(m))
    report = check_catalog(cat, repair=True)
    assert report.ok, report.remaining
    assert Catalog.open(cat).encoder.preprocess.crop == 260
    (cat / "manifest.json").unlink()  # nothing survives: the default, and a note says so
    report = check_catalog(cat, repair=True)
    assert report.ok and any("input size" in n and "260 px" in n for n in report.notes)
    assert Catalog.open(cat).manifest["model"]["preprocess"]["crop"] == 224
