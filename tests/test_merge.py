"""Merging catalogs: same results as one catalog built in one go; clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from artsim.catalog import MANIFEST, Catalog, store
from artsim.catalog.merge import merge_catalogs
from artsim.errors import CatalogError
from tests.images_factory import gradient


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Six images indexed in one catalog, and split over two catalogs (as on two machines)."""
    root = tmp_path_factory.mktemp("merge")
    halves = [root / "a", root / "b"]
    for h in halves:
        h.mkdir()
    for i in range(6):
        im = gradient(120 + 10 * i, 90, seed=i)
        im.save(halves[i % 2] / f"img{i}.jpg", quality=92)
    whole = Catalog.create(root / "whole")
    for h in halves:
        whole.add(h)
    parts = []
    for h in halves:
        cat = Catalog.create(root / f"cat-{h.name}")
        cat.add(h)
        parts.append(cat.path)
    return root, whole, parts


def test_merged_catalog_searches_like_one_built_in_one_go(built):
    root, whole, parts = built
    summary = merge_catalogs(parts, root / "merged")
    merged = Catalog.open(root / "merged")
    assert summary.items == 6 and sorted(merged.ids) == sorted(whole.ids)
    for item_id in whole.ids:
        a = whole.search(item_id, k=5)
        b = merged.search(item_id, k=5)
        assert [r.id for r in a] == [r.id for r in b]
        assert np.allclose([r.score for r in a], [r.score for r in b], atol=1e-6)
    assert merged.item("img3.jpg")["metadata"] == whole.item("img3.jpg")["metadata"]
    assert merged.manifest["aspects"]["global"]["count"] == 6
    assert (root / "merged" / "failures.csv").is_file()
    assert not (root / ".merged.merging").exists()


def test_id_clash_is_an_error_and_writes_nothing(built):
    root, _whole, parts = built
    with pytest.raises(
        CatalogError, match=r"id 'img0\.jpg' is in both .*cat-a and .*whole \(and 2 more\)"
    ):
        merge_catalogs([parts[0], root / "whole"], root / "clash")
    assert not (root / "clash").exists() and not (root / ".clash.merging").exists()


def _copy_with_model(src, dst, **model):
    """A copy of catalog ``src`` whose manifest's model says ``model``."""
    dst.mkdir()
    for f in src.rglob("*"):
        if f.is_file():
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read_bytes())
    man = store.read_json(dst / MANIFEST)
    man["model"].update(model)
    store.atomic_write_json(dst / MANIFEST, man)
    return dst


def test_model_mismatch_is_an_error(built, tmp_path):
    _root, _whole, parts = built
    other = _copy_with_model(parts[1], tmp_path / "other", weights_sha256="0" * 64)
    with pytest.raises(CatalogError, match="weights_sha256 differs"):
        merge_catalogs([parts[0], other], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_catalogs_indexed_in_bf16_and_fp32_merge(built, tmp_path):
    """The precision a machine ran (PyTorch or OpenVINO bf16, or fp32) is no model identity:
    those vectors mix in one catalog (docs/models.md), so such catalogs merge."""
    _root, _whole, parts = built
    fp32 = _copy_with_model(parts[0], tmp_path / "fp32", bf16=False, backend="onnx")
    bf16 = _copy_with_model(parts[1], tmp_path / "bf16", bf16=True, backend="openvino-bf16")
    summary = merge_catalogs([fp32, bf16], tmp_path / "out")
    assert summary.items == 6 and len(Catalog.open(tmp_path / "out")) == 6


def test_existing_destination_is_refused(built):
    root, _whole, parts = built
    with pytest.raises(CatalogError, match="already exists"):
        merge_catalogs(parts, parts[0])
    with pytest.raises(CatalogError, match="no artsim catalog"):
        merge_catalogs([parts[0], root / "nope"], root / "out2")


def test_the_local_aspect_keeps_its_features_and_votes_after_a_merge(built, monkeypatch):
    """The local aspect's RootSIFT lives in cache/, beside the parts: a merge copies it, so
    the merged catalog has every painting's features (same as the sources') and builds
    its keypoint-vote index."""
    import artsim.catalog.local_votes as lv
    from artsim.catalog.local import LocalStore
    from tests.test_paintings import generated_painting

    monkeypatch.setattr(lv, "MIN_PAINTINGS", 1)
    root, _, _ = built
    sources = []
    for name in ("a", "b"):
        folder = root / f"textured-{name}"  # gradients have no keypoints
        folder.mkdir()
        for i in range(3):
            seed = 10 * (name == "b") + i
            generated_painting(seed, 400, 300).save(folder / f"{name}{i}.jpg", quality=92)
        cat = Catalog.create(root / f"local-{name}")
        cat.add(folder, aspects=["global", "local"])
        sources.append(cat)
    merge_catalogs([c.path for c in sources], root / "merged-local")
    merged = Catalog.open(root / "merged-local")
    features = LocalStore(merged)
    assert len(features) == 6
    for src in sources:
        own = LocalStore(src)
        for item_id in src.ids:
            got, want = features.get(item_id), own.get(item_id)
            assert got is not None and want is not None
            assert np.array_equal(got.desc, want.desc) and np.array_equal(got.xy, want.xy)
    assert merged.aspect("local").done == set(merged.ids)
    index = lv.vote_index(features)
    assert index is not None and sorted(index.item_ids) == sorted(merged.ids)
    assert list((root / "merged-local" / "cache").glob("local-*/votes-*.faiss"))


def test_every_sources_failures_survive_the_merge(tmp_path):
    for name in ("a", "b"):
        folder = tmp_path / f"src-{name}"
        folder.mkdir()
        gradient(120, 90, seed=1).save(folder / f"ok-{name}.jpg")
        (folder / f"broken-{name}.jpg").write_bytes(b"not a jpeg")
        Catalog.create(tmp_path / name).add(folder)
    merge_catalogs([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")
    failures = (tmp_path / "merged" / "failures.csv").read_text()
    assert "broken-a.jpg" in failures and "broken-b.jpg" in failures


def test_local_features_of_two_kinds_are_refused_with_the_way_out(built, monkeypatch):
    """Catalogs whose local features are of two kinds (sides), as after a change of default."""
    import artsim.catalog.local as local_mod
    from tests.test_paintings import generated_painting

    root, _, _ = built
    sources = []
    for name, side in (("old", 512), ("new", 256)):
        folder = root / f"kinds-{name}"
        folder.mkdir()
        generated_painting(len(name), 300, 240).save(folder / f"{name}.jpg", quality=92)
        with monkeypatch.context() as m:
            m.setattr(local_mod, "LOCAL_SIDE", side)
            cat = Catalog.create(root / f"kinds-cat-{name}")
            cat.add(folder, aspects=["global", "local"])
        sources.append(cat.path)
    with pytest.raises(CatalogError, match=r"rootsift-256-256.*rootsift-512-256.*new catalog"):
        merge_catalogs(sources, root / "merged-kinds")
    assert not (root / "merged-kinds").exists()
