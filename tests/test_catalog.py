"""Catalog behaviour on generated images: create/open, incremental add, failures, model checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artsim.catalog import Catalog
from artsim.errors import ArtsimError, CatalogError
from tests.images_factory import gradient, write_awkward_set


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        gradient(120 + 10 * i, 90, seed=i).save(src / f"img{i}.jpg", quality=92)
    return src


def test_create_add_search_roundtrip(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    summary = cat.add(folder)
    assert summary.added == 6 and summary.failed == 0
    assert len(cat) == 6
    results = cat.search("img0.jpg", k=3)
    assert len(results) == 3 and all(r.id != "img0.jpg" for r in results)
    assert results[0].score >= results[1].score >= results[2].score
    # a file query for an indexed image excludes that image too
    by_file = cat.search(str(folder / "img0.jpg"), k=3)
    assert [r.id for r in by_file] == [r.id for r in results]
    assert [r.score for r in by_file] == pytest.approx([r.score for r in results], abs=2e-2)


def test_manifest_records_model_and_counts(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    m = json.loads((tmp_path / "cat" / "manifest.json").read_text())
    assert m["format_version"] == 1
    assert m["model"]["name"] == "efficientnet-lite2"
    assert len(m["model"]["weights_sha256"]) == 64
    assert m["model"]["preprocess"]["crop"] == 260
    assert m["model"]["dim"] == 1400
    assert m["counts"]["items"] == 6
    assert m["aspects"]["global"]["count"] == 6


def test_incremental_add_embeds_only_new(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    before = cat.aspect("global").vectors["global"].copy()
    gradient(150, 150, seed=42).save(folder / "new.jpg")
    summary = Catalog.open(tmp_path / "cat").add(folder)
    assert summary.added == 1 and summary.skipped_existing == 6
    cat2 = Catalog.open(tmp_path / "cat")
    assert len(cat2) == 7
    data = cat2.aspect("global")
    rows = [data.row_ids.index(f"img{i}.jpg") for i in range(6)]
    assert np.allclose(
        data.vectors["global"][rows],
        before[[cat.aspect("global").row_ids.index(f"img{i}.jpg") for i in range(6)]],
    )


def test_unreadable_images_are_listed_not_fatal(tmp_path):
    src = tmp_path / "src"
    files = write_awkward_set(src)
    cat = Catalog.create(tmp_path / "cat")
    summary = cat.add(src)
    bad = {"empty.jpg", "truncated.jpg", "corrupt.png", "notes.jpg", "bomb.png"}
    assert summary.failed == len(bad)
    assert set(cat.ids) == set(files) - bad
    report = (tmp_path / "cat" / "failures.csv").read_text()
    for name in bad:
        assert name in report
    assert "truncated" in report and "decompression bomb" in report
    assert cat.info()["failures"] == len(bad)


def test_model_mismatch_is_an_error(tmp_path, folder):
    Catalog.create(tmp_path / "cat").add(folder)
    with pytest.raises(CatalogError, match="built with model 'efficientnet-lite2'"):
        Catalog.open(tmp_path / "cat", model="dinov2-small")
    with pytest.raises(CatalogError, match="built with model"):
        Catalog.create(tmp_path / "cat", model="clip-vit-b32")


def test_weights_hash_mismatch_is_an_error(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    m = json.loads((tmp_path / "cat" / "manifest.json").read_text())
    m["model"]["weights_sha256"] = "0" * 64
    (tmp_path / "cat" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CatalogError, match="weights"):
        Catalog.open(tmp_path / "cat").search(str(folder / "img1.jpg"))


def test_not_a_catalog(tmp_path):
    with pytest.raises(CatalogError, match="no artsim catalog"):
        Catalog.open(tmp_path)
    (tmp_path / "x.txt").write_text("precious")
    with pytest.raises(CatalogError, match="not empty"):
        Catalog.create(tmp_path)
    assert (tmp_path / "x.txt").read_text() == "precious"


def test_filters_return_k_when_k_exist(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rows = ["id,image,artist,year"]
    for i in range(30):
        gradient(100, 80, seed=i).save(src / f"{i}.jpg")
        rows.append(f"p{i},{i}.jpg,{'Rembrandt' if i % 10 == 0 else 'Other'},{1600 + i}")
    (src / "m.csv").write_text("\n".join(rows) + "\n")
    cat = Catalog.create(tmp_path / "cat")
    cat.add(src / "m.csv")
    res = cat.search("p1", k=2, where=["artist=rembrandt"])
    assert [r.metadata["artist"] for r in res] == ["Rembrandt", "Rembrandt"]
    res = cat.search("p0", k=5, where=["artist=rembrandt"])
    assert {r.id for r in res} == {"p10", "p20"}  # the query itself is excluded
    res = cat.search("p0", k=50, where=["year=1605..1609"])
    assert sorted(r.id for r in res) == [f"p{i}" for i in range(5, 10)]


def test_unknown_query(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    with pytest.raises(ArtsimError, match="neither an id"):
        cat.search("no-such-thing")
    with pytest.raises(ArtsimError, match="only http"):
        cat.search("file:///etc/passwd")
    with pytest.raises(ArtsimError, match="no 'face' aspect"):
        cat.search("img0.jpg", aspect="face")


def test_killed_writer_temp_files_are_ignored(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    # what a kill -9 mid-write leaves behind: a temp file next to the parts
    (tmp_path / "cat" / "items" / ".part-000009.parquet.abc.tmp").write_bytes(b"PAR1 half")
    again = Catalog.open(tmp_path / "cat")
    assert len(again) == 6
    assert not list((tmp_path / "cat").rglob("*.tmp"))


@pytest.mark.parametrize("workers", [1, 8])
def test_decoded_batches_keep_order_and_report_bad_files(tmp_path, workers):
    from artsim.catalog import _decoded_batches
    from artsim.errors import ImageLoadError
    from artsim.images import LoadedImage
    from artsim.records import SourceItem

    items = []
    for i in range(7):
        path = tmp_path / f"{i}.jpg"
        gradient(80 + i, 60, seed=i).save(path)
        items.append(SourceItem(id=str(i), image=str(path)))
    (tmp_path / "3.jpg").write_bytes(b"not a jpeg")
    got = list(_decoded_batches(items, 3, 64, 10**8, workers))
    assert [[it.id for it in batch] for batch, _ in got] == [
        ["0", "1", "2"],
        ["3", "4", "5"],
        ["6"],
    ]
    flat = [r for _, loaded in got for r in loaded]
    assert isinstance(flat[3], ImageLoadError)
    assert [r.original_size[0] for i, r in enumerate(flat) if i != 3] == [80, 81, 82, 84, 85, 86]
    assert all(isinstance(r, LoadedImage) for i, r in enumerate(flat) if i != 3)


def test_decode_workers_feed_a_gpu(tmp_path, monkeypatch):
    import types

    cat = Catalog.__new__(Catalog)
    cat._encoder = None
    assert cat._decode_workers(None) == 2 and cat._decode_workers(5) == 5
    cat._encoder = types.SimpleNamespace(device="cuda")
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(16)))
    assert cat._decode_workers(None) == 16
