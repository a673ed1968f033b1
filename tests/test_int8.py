"""A catalog's int8 network (artsim.encoders.int8): quantise, store in the catalog under its
sha256, check against fp32, and the catalog's use of it (calibration by the first run, auto's
choice, reopening, stale instances, a changed file, a failed calibration, repair, merging)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from artsim.encoders import backends as B
from artsim.encoders import int8
from artsim.errors import ArtsimError, CatalogError
from tests.test_backends import tiny_encoder

pytest.importorskip("nncf")
pytest.importorskip("openvino")


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv(B.CACHE_ENV, str(tmp_path / "cache"))


def test_quantised_network_is_stored_by_content_and_close_to_fp32(cache, tmp_path):
    enc = tiny_encoder()
    images = torch.from_numpy(B.fixed_inputs(enc.preprocess.crop, n=16))
    record = int8.calibrate(enc, tmp_path, images, threads=1)
    xml = tmp_path / record["file"]
    assert xml.name == f"int8-{record['sha256'][:16]}.xml" and xml.with_suffix(".bin").is_file()
    assert record["calibration_images"] == 16
    assert record["cosine_to_fp32"]["median"] >= int8.CHECK_MEDIAN
    runner = int8.load_runner(tmp_path, record, threads=1)
    assert runner.backend == int8.INT8_BACKEND
    median, worst = int8.check(enc, runner, images)
    assert median == pytest.approx(record["cosine_to_fp32"]["median"], abs=1e-4)
    assert worst <= median


def test_a_changed_network_is_refused_by_its_sha256(cache, tmp_path):
    enc = tiny_encoder()
    record = int8.calibrate(enc, tmp_path, torch.from_numpy(B.fixed_inputs(32, n=8)), threads=1)
    weights = (tmp_path / record["file"]).with_suffix(".bin")
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(B.BackendError, match="does not match the sha256"):
        int8.load_runner(tmp_path, record, threads=1)
    weights.unlink()
    with pytest.raises(B.BackendError, match="cannot be read"):
        int8.load_runner(tmp_path, record, threads=1)


def test_a_network_far_from_fp32_fails_its_check_and_is_not_kept(cache, tmp_path, monkeypatch):
    enc = tiny_encoder()
    rng = np.random.default_rng(0)
    noise = B.Runner(int8.INT8_BACKEND, lambda x: rng.normal(size=(len(x), enc.dim)))
    images = torch.from_numpy(B.fixed_inputs(32, n=8))
    with pytest.raises(B.BackendError, match="too far from fp32"):
        int8.check(enc, noise, images)
    monkeypatch.setattr(int8, "load_runner", lambda *a: noise)
    with pytest.raises(B.BackendError):
        int8.calibrate(enc, tmp_path, images, threads=1)
    assert not list((tmp_path / int8.MODELS_FOLDER).glob("int8-*"))


def test_missing_packages_are_named_with_the_remedy(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a)
    )
    assert int8.available() == f"nncf not installed; {int8.REMEDY}"
    with pytest.raises(B.BackendError, match="nncf not installed; pip install"):
        int8.quantise(tiny_encoder(), torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_int8_is_a_catalog_choice_not_a_process_one():
    from artsim.catalog import INT8_BACKEND

    assert INT8_BACKEND == int8.INT8_BACKEND  # the catalog names it without importing torch
    with pytest.raises(ArtsimError, match="chosen when a catalog is created"):
        B.resolve_backend("openvino-int8", model="efficientnet-lite2", device="cpu", bf16=False)


# ---------------------------------------------------------------- catalogs (real model, data)
def _items(data_dir: Path, start: int, n: int):
    from artsim.records import SourceItem

    files = sorted((data_dir / "wikiart" / "images").rglob("*.jpg"))[start : start + n]
    return [SourceItem(id=f.stem, image=str(f)) for f in files]


@pytest.fixture(scope="module")
def int8_catalog(data_dir, tmp_path_factory) -> Path:
    """An int8 catalog of 40 real paintings, calibrated on them by its first index run."""
    from artsim.catalog import Catalog

    path = tmp_path_factory.mktemp("int8") / "cat"
    cat = Catalog.create(path, backend="openvino-int8")
    assert cat.manifest["model"]["int8"] is None  # not calibrated before paintings come
    cat.add(_items(data_dir, 0, 40))
    return path


@pytest.mark.slow
def test_first_index_run_calibrates_and_every_process_reuses_the_network(int8_catalog, data_dir):
    from artsim.catalog import Catalog
    from artsim.images import load_rgb

    cat = Catalog.open(int8_catalog)
    m = cat.manifest["model"]
    record = m["int8"]
    assert m["backend"] == "openvino-int8" and record["calibration_images"] == 40
    assert record["cosine_to_fp32"]["median"] >= int8.CHECK_MEDIAN
    assert (int8_catalog / record["file"]).is_file()
    assert cat.encoder.backend == "openvino-int8"
    # a query embeds with the very network that made the stored vectors
    item = _items(data_dir, 0, 40)[7]
    best = cat.search(load_rgb(item.image), k=1)[0]
    assert best.id == item.id and best.score > 0.99


@pytest.mark.slow
def test_later_runs_and_stale_instances_reuse_the_network(int8_catalog, data_dir, tmp_path):
    from artsim.catalog import Catalog

    shutil.copytree(int8_catalog, tmp_path / "cat")
    first = Catalog.open(tmp_path / "cat")
    sha = first.manifest["model"]["int8"]["sha256"]
    first.add(_items(data_dir, 40, 4))  # no second calibration
    assert len(first) == 44 and first.manifest["model"]["int8"]["sha256"] == sha
    # an instance opened before the first run calibrated must not calibrate again
    fresh = Catalog.create(tmp_path / "new", backend="openvino-int8")
    stale = Catalog.open(tmp_path / "new")
    fresh.add(_items(data_dir, 0, 40))
    stale.add(_items(data_dir, 40, 4))
    assert (
        stale.manifest["model"]["int8"] == Catalog.open(tmp_path / "new").manifest["model"]["int8"]
    )
    assert len(list((tmp_path / "new" / int8.MODELS_FOLDER).glob("*.xml"))) == 1
    assert len(Catalog.open(tmp_path / "new")) == 44


@pytest.mark.slow
def test_a_changed_network_falls_back_for_search_and_refuses_to_add(
    int8_catalog, data_dir, tmp_path
):
    from artsim.catalog import Catalog
    from artsim.images import load_rgb

    copy = tmp_path / "cat"
    shutil.copytree(int8_catalog, copy)
    record = json.loads((copy / "manifest.json").read_text())["model"]["int8"]
    (copy / record["file"]).with_suffix(".bin").write_bytes(b"not a network")
    cat = Catalog.open(copy)
    with pytest.warns(RuntimeWarning, match="falling back to fp32"):
        enc = cat.encoder
    assert enc.backend != "openvino-int8" and not enc.bf16
    item = _items(data_dir, 0, 40)[3]
    assert cat.search(load_rgb(item.image), k=1)[0].id == item.id  # close enough to search
    before = sorted(p.name for p in (copy / "items").iterdir())
    with pytest.raises(CatalogError, match=r"does not match the sha256.*would mix two networks"):
        cat.add(_items(data_dir, 100, 4))
    assert sorted(p.name for p in (copy / "items").iterdir()) == before


def test_auto_chooses_int8_only_on_cpus_without_native_bf16(monkeypatch):
    from artsim.catalog import _int8_auto_possible
    from artsim.encoders import base

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(base, "cpu_supports_bf16", lambda: False)
    assert _int8_auto_possible("efficientnet-lite2", "auto", "auto")
    assert not _int8_auto_possible("efficientnet-lite2", "onnx", "auto")  # a backend named
    assert not _int8_auto_possible("dinov2-small", "auto", "auto")
    monkeypatch.setattr(base, "cpu_supports_bf16", lambda: True)  # PyTorch bf16 is faster
    assert not _int8_auto_possible("efficientnet-lite2", "auto", "auto")
    monkeypatch.setattr(base, "cpu_supports_bf16", lambda: False)
    monkeypatch.setattr(int8, "available", lambda: "nncf not installed")
    assert not _int8_auto_possible("efficientnet-lite2", "auto", "auto")


@pytest.mark.slow
def test_auto_catalog_stays_fp32_after_a_small_first_run_and_goes_int8_after_a_large_one(
    data_dir, tmp_path, monkeypatch
):
    from artsim.catalog import Catalog
    from artsim.encoders import base

    monkeypatch.setattr(base, "cpu_supports_bf16", lambda: False)  # any CI CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    small = Catalog.create(tmp_path / "small")
    assert small.manifest["model"]["int8_auto"] is True
    small.add(_items(data_dir, 0, 6))
    reopened = Catalog.open(tmp_path / "small")
    m = reopened.manifest["model"]
    assert "int8" not in m and "int8_auto" not in m  # fp32 for good: calibrating would not pay
    assert reopened.encoder.backend != "openvino-int8"
    monkeypatch.setattr(int8, "AUTO_MIN_PAINTINGS", 30)
    large = Catalog.create(tmp_path / "large")
    large.add(_items(data_dir, 0, 36))
    m = Catalog.open(tmp_path / "large").manifest["model"]
    assert m["int8"]["calibration_images"] == 36 and m["backend"] == "openvino-int8"


@pytest.mark.slow
def test_a_failed_calibration_leaves_an_auto_catalog_fp32_and_stops_an_asked_one(
    data_dir, tmp_path, monkeypatch
):
    from artsim.catalog import Catalog
    from artsim.encoders import base

    monkeypatch.setattr(base, "cpu_supports_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(int8, "AUTO_MIN_PAINTINGS", 4)

    def fail(*a, **kw):
        raise B.BackendError("openvino-int8: calibration failed (exit 1): boom")

    monkeypatch.setattr(int8, "calibrate_in_subprocess", fail)
    auto = Catalog.create(tmp_path / "auto")
    with pytest.warns(RuntimeWarning, match="boom.*stays fp32"):
        auto.add(_items(data_dir, 0, 6))
    assert len(auto) == 6 and "int8" not in Catalog.open(tmp_path / "auto").manifest["model"]
    asked = Catalog.create(tmp_path / "asked", backend="openvino-int8")
    with pytest.raises(CatalogError, match=r"int8 calibration failed.*boom"):
        asked.add(_items(data_dir, 0, 6))
    assert len(Catalog.open(tmp_path / "asked")) == 0


@pytest.mark.slow
def test_repair_keeps_an_int8_catalog_int8(int8_catalog, tmp_path):
    from artsim.catalog import Catalog
    from artsim.catalog.check import check_catalog

    shutil.copytree(int8_catalog, tmp_path / "cat")
    sha = Catalog.open(tmp_path / "cat").manifest["model"]["int8"]["sha256"]
    (tmp_path / "cat" / "manifest.json").write_text("{ truncated")
    check_catalog(tmp_path / "cat", repair=True)
    cat = Catalog.open(tmp_path / "cat")
    assert cat.manifest["model"]["int8"]["sha256"] == sha
    assert cat.encoder.backend == "openvino-int8"


@pytest.mark.slow
def test_fp32_catalog_cannot_switch_to_int8(data_dir, tmp_path):
    from artsim.catalog import Catalog

    Catalog.create(tmp_path / "fp32", backend="onnx").add(_items(data_dir, 0, 4))
    cat = Catalog.open(tmp_path / "fp32", backend="openvino-int8")
    with pytest.raises(CatalogError, match="chosen when a catalog is created"):
        _ = cat.encoder


@pytest.mark.slow
def test_merge_keeps_the_network_and_refuses_other_vectors(int8_catalog, data_dir, tmp_path):
    from artsim.catalog import Catalog
    from artsim.catalog.merge import merge_catalogs

    # a second catalog given the same network (as a team would share it) merges
    record = Catalog.open(int8_catalog).manifest["model"]["int8"]
    other = Catalog.create(tmp_path / "b", backend="openvino-int8")
    shutil.copytree(int8_catalog / int8.MODELS_FOLDER, tmp_path / "b" / int8.MODELS_FOLDER)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["model"]["int8"] = record
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    other = Catalog.open(tmp_path / "b")
    other.add(_items(data_dir, 200, 6))
    merged = tmp_path / "merged"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the network must come along
        merge_catalogs([int8_catalog, tmp_path / "b"], merged)
        cat = Catalog.open(merged)
        assert cat.encoder.backend == "openvino-int8"
    assert len(cat) == len(Catalog.open(int8_catalog)) + 6
    # fp32 vectors never join int8 ones
    Catalog.create(tmp_path / "fp32", backend="onnx").add(_items(data_dir, 300, 4))
    with pytest.raises(CatalogError, match="different networks"):
        merge_catalogs([int8_catalog, tmp_path / "fp32"], tmp_path / "bad")


@pytest.mark.slow
def test_info_says_how_the_network_was_calibrated(int8_catalog):
    from typer.testing import CliRunner

    from artsim.cli import app

    out = CliRunner().invoke(app, ["info", str(int8_catalog)])
    assert out.exit_code == 0, out.output
    assert "(int8; last run)" in out.output
    assert "calibrated on 40 paintings" in out.output


def test_a_failed_calibration_in_its_process_says_why(tmp_path):
    with pytest.raises(
        B.BackendError, match=r"calibration failed \(exit 1\): unknown model 'no-such-model'"
    ):
        int8.calibrate_in_subprocess(
            tmp_path,
            np.zeros((1, 3, 32, 32), np.uint8),
            1,
            model="no-such-model",
            pooling=None,
            model_path=None,
        )
    assert not (tmp_path / int8.MODELS_FOLDER).exists()  # nothing saved before the failure
