"""Inference backends: choice, export cache (hash-checked), check against PyTorch, fallback."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from artsim.encoders import backends as B
from artsim.encoders.base import Encoder, Preprocess
from artsim.errors import ArtsimError

onnxruntime = pytest.importorskip("onnxruntime")


class TinyEncoder(Encoder):
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.model(x)).mean(dim=(2, 3))


def tiny_encoder(seed: int = 0) -> TinyEncoder:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3)
    ).eval()
    pre = Preprocess(resize=32, crop=32, mean=(0.5,) * 3, std=(0.5,) * 3, view="whole")
    return TinyEncoder(
        name="tiny", dim=16, preprocess=pre, weights_hash=f"tiny-{seed}", model=model
    )


def test_device_auto_is_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert B.resolve_device("auto") == "cpu"
    assert B.resolve_device(None) == "cpu"
    assert B.resolve_device("cpu") == "cpu"


def test_device_auto_is_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert B.resolve_device("auto") == "cuda"


def test_explicit_cuda_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ArtsimError, match=r"--device cuda: .*--device cpu"):
        B.resolve_device("cuda")
    with pytest.raises(ArtsimError, match="unknown device"):
        B.resolve_device("tpu")


def test_load_encoder_refuses_cuda_without_cuda(monkeypatch):
    from artsim.encoders import load_encoder

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ArtsimError, match="--device cuda"):
        load_encoder.__wrapped__("efficientnet-lite2", device="cuda")


def test_backend_choice():
    lite = "efficientnet-lite2"
    assert B.resolve_backend("auto", model=lite, device="cpu", bf16=False) == "onnx"
    # AMX CPUs keep PyTorch bf16; models not known to export stay on PyTorch
    assert B.resolve_backend("auto", model=lite, device="cpu", bf16=True) == "torch"
    assert B.resolve_backend("auto", model="dinov2-small", device="cpu", bf16=False) == "torch"
    assert B.resolve_backend("openvino", model=lite, device="cpu", bf16=False) == "openvino"
    assert B.resolve_backend("openvino-bf16", model=lite, device="cpu", bf16=False) == (
        "openvino-bf16"
    )
    assert B.resolve_backend("auto", model=lite, device="cuda", bf16=False) == "torch"
    for runtime in ("onnx", "openvino-bf16"):
        with pytest.raises(ArtsimError, match="CPU only"):
            B.resolve_backend(runtime, model=lite, device="cuda", bf16=False)
    with pytest.raises(ArtsimError, match="unknown backend"):
        B.resolve_backend("tensorrt", model=lite, device="cpu", bf16=False)


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv(B.CACHE_ENV, str(tmp_path / "c"))
    assert B.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(B.CACHE_ENV)
    assert B.cache_dir().name == "artsim"


def test_export_runs_like_torch_and_is_reused(tmp_path):
    enc = tiny_encoder()
    path = B.cached_export(enc, "rt-1", cache=tmp_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["key"]["weights_sha256"] == "tiny-0" and meta["key"]["runtime"] == "rt-1"
    runner = B._onnxruntime_runner(path, 1)
    assert B.check_against_torch(enc, runner) >= B.CHECK_COSINE
    mtime = path.stat().st_mtime_ns
    assert B.cached_export(enc, "rt-1", cache=tmp_path) == path
    assert path.stat().st_mtime_ns == mtime  # reused, not exported again
    # other weights or another runtime version get their own file
    assert B.cached_export(tiny_encoder(seed=1), "rt-1", cache=tmp_path) != path
    assert B.cached_export(enc, "rt-2", cache=tmp_path) != path


def test_corrupt_export_is_rebuilt_with_a_warning(tmp_path):
    enc = tiny_encoder()
    path = B.cached_export(enc, "rt", cache=tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.warns(RuntimeWarning, match="sha256.*rebuilding"):
        again = B.cached_export(enc, "rt", cache=tmp_path)
    assert again == path and path.read_bytes() == good


def test_stale_or_unrecorded_export_is_rebuilt(tmp_path):
    enc = tiny_encoder()
    path = B.cached_export(enc, "rt", cache=tmp_path)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["key"]["exporter"] = "torch-0.0-old"
    meta_path.write_text(json.dumps(meta))
    with pytest.warns(RuntimeWarning, match="stale"):
        B.cached_export(enc, "rt", cache=tmp_path)
    meta_path.unlink()
    with pytest.warns(RuntimeWarning, match="no readable record"):
        B.cached_export(enc, "rt", cache=tmp_path)
    assert json.loads(meta_path.read_text())["key"] == B.export_key(enc, "rt")


def test_check_rejects_a_runtime_that_differs():
    enc = tiny_encoder()
    other = tiny_encoder(seed=5)

    def wrong(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return other._forward(torch.from_numpy(x)).numpy()

    with pytest.raises(B.BackendError, match="differs from PyTorch"):
        B.check_against_torch(enc, B.Runner("onnx", wrong))


def test_missing_runtime_falls_back_to_torch_with_one_warning(monkeypatch, tmp_path):
    monkeypatch.setenv(B.CACHE_ENV, str(tmp_path))

    def missing(backend: str) -> str:
        raise ImportError(backend)

    monkeypatch.setattr(B, "_runtime_version", missing)
    enc = tiny_encoder()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert B.attach_backend(enc, "openvino", 1) == "torch"
    assert len(caught) == 1
    assert "'openvino' is not installed" in str(caught[0].message)
    assert "falling back to PyTorch" in str(caught[0].message)
    assert enc.runner is None


def test_failed_check_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv(B.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(B, "CHECK_COSINE", 1.5)  # nothing can pass
    enc = tiny_encoder()
    with pytest.warns(RuntimeWarning, match="differs from PyTorch.*falling back"):
        assert B.attach_backend(enc, "onnx", 1) == "torch"
    assert enc.runner is None


def test_encoder_on_runner_matches_torch(tmp_path, monkeypatch):
    monkeypatch.setenv(B.CACHE_ENV, str(tmp_path))
    enc = tiny_encoder()
    batch = torch.from_numpy(B.fixed_inputs(32, n=3))
    ref = enc.embed_batch(batch)
    assert B.attach_backend(enc, "onnx", 1) == "onnx"
    got = enc.embed_batch(batch)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (ref * got).sum(axis=1).min() > 0.9999
    enc.flip_average = True
    runner, enc.runner = enc.runner, None
    flipped_ref = enc.embed_batch(batch)
    enc.runner = runner
    assert (flipped_ref * enc.embed_batch(batch)).sum(axis=1).min() > 0.9999


def test_interrupted_export_write_leaves_nothing_to_trust(tmp_path, monkeypatch):
    enc = tiny_encoder()

    def disk_full(_fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(B.os, "fsync", disk_full)
    with pytest.raises(OSError):
        B.cached_export(enc, "rt", cache=tmp_path)
    assert not [p for p in Path(tmp_path).rglob("*") if p.is_file()]


def _top10(vecs: np.ndarray) -> list[set[int]]:
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -np.inf)
    return [set(np.argsort(-row)[:10].tolist()) for row in sims]


@pytest.mark.slow
def test_backends_mix_on_real_paintings(data_dir):
    """Vectors from every backend are interchangeable: cosine >= 0.999 per painting, top-10
    neighbours >= 95% the same, on real sample paintings."""
    from artsim.encoders import load_encoder
    from artsim.images import load_rgb

    files = sorted((data_dir / "wikiart" / "images").rglob("*.jpg"))[::40][:60]
    files += sorted((data_dir / "nga" / "images").glob("*.jpg"))[:20]
    images = [load_rgb(f, max_side=260) for f in files]
    ref = load_encoder("efficientnet-lite2", backend="torch", bf16=False)
    assert ref.backend == "torch"
    ref_vecs = ref.embed_images(images)
    ref_top = _top10(ref_vecs)
    backends = ["onnx"] + (["openvino"] if B._installed("openvino") else [])
    for name in backends:
        enc = load_encoder("efficientnet-lite2", backend=name)
        assert enc.backend == name and not enc.bf16
        vecs = enc.embed_images(images)
        assert (vecs * ref_vecs).sum(axis=1).min() >= 0.999, name
        overlap = np.mean([len(a & b) / 10 for a, b in zip(_top10(vecs), ref_top, strict=True)])
        assert overlap >= 0.95, (name, overlap)


@pytest.mark.slow
def test_bf16_backends_agree_on_real_paintings(data_dir):
    """Where the CPU has native bf16, OpenVINO bf16 (which auto may pick there) is as close to
    fp32 as PyTorch bf16, the default there before it: cosine >= 0.98 per painting (0.998 at
    the median), top-10 neighbours >= 95 % the same (session 22: 0.993 at worst, 0.9987 at
    the median, 0.97 for both)."""
    from artsim.encoders import load_encoder
    from artsim.encoders.base import cpu_supports_bf16
    from artsim.images import load_rgb

    if not cpu_supports_bf16():
        pytest.skip("this CPU has no native bf16 (AVX512-BF16 or AMX)")
    files = sorted((data_dir / "wikiart" / "images").rglob("*.jpg"))[::40][:60]
    files += sorted((data_dir / "nga" / "images").glob("*.jpg"))[:20]
    images = [load_rgb(f, max_side=260) for f in files]
    ref_vecs = load_encoder("efficientnet-lite2", backend="torch", bf16=False).embed_images(images)
    ref_top = _top10(ref_vecs)
    for kw in ({"backend": "torch", "bf16": True}, {"backend": "openvino-bf16"}):
        enc = load_encoder("efficientnet-lite2", **kw)
        assert enc.backend == kw["backend"]
        vecs = enc.embed_images(images)
        cos = (vecs * ref_vecs).sum(axis=1)
        assert cos.min() >= 0.98 and np.median(cos) >= 0.998, (kw, cos.min())
        overlap = np.mean([len(a & b) / 10 for a, b in zip(_top10(vecs), ref_top, strict=True)])
        assert overlap >= 0.95, (kw, overlap)


@pytest.mark.slow
def test_catalog_mixes_backends_and_records_them(data_dir, tmp_path):
    from artsim.catalog import Catalog
    from artsim.images import load_rgb
    from artsim.records import SourceItem

    files = sorted((data_dir / "wikiart" / "images").rglob("*.jpg"))[:24]
    items = [SourceItem(id=f.stem, image=str(f)) for f in files]
    cat = Catalog.create(tmp_path / "cat", backend="torch", bf16=False)
    cat.add(items[:12])
    assert cat.manifest["model"]["backend"] == "torch"
    cat = Catalog.open(tmp_path / "cat", backend="onnx")
    cat.add(items)
    assert cat.info()["model"]["backend"] == "onnx" and len(cat) == 24
    # a painting indexed by PyTorch is found first when queried through ONNX Runtime
    for f in files[:3]:
        best = cat.search(load_rgb(f), k=1)[0]
        assert best.id == f.stem and best.score > 0.999


def test_face_network_runs_on_onnxruntime_like_torch(monkeypatch, tmp_path):
    from artsim.detectors.faces import dlib_model_path
    from artsim.encoders import dlib_resnet

    monkeypatch.setenv(B.CACHE_ENV, str(tmp_path))
    path = dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")
    model = dlib_resnet.load_model.__wrapped__(path)
    assert model.artsim_runner is not None and model.artsim_runner.backend == "onnx"
    chips = B.fixed_inputs(dlib_resnet.INPUT_SIZE, n=3).transpose(0, 2, 3, 1)
    got = dlib_resnet.descriptors(model, chips)
    ref = dlib_resnet._torch_descriptors(model, chips)
    assert got.shape == (3, 128) and B._cosines(ref, got).min() >= 0.9999
    monkeypatch.setenv("ARTSIM_BACKEND", "torch")
    assert dlib_resnet.load_model.__wrapped__(path).artsim_runner is None


def test_gpu_path_matches_cpu_path(monkeypatch):
    """The CUDA code path (pinned copy, normalising on the device, autocast) run on the CPU:
    where there is no GPU, pinning is skipped and autocast('cuda') disables itself."""
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: self)
    enc = tiny_encoder()
    batch = torch.from_numpy(B.fixed_inputs(32, n=3))
    ref = enc.embed_batch(batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available, disabling autocast"
        got = enc._embed_cuda(batch)
        enc.flip_average = True
        flipped = enc._embed_cuda(batch)
    assert got.dtype == np.float32 and np.allclose(got, ref, atol=1e-5)
    assert np.allclose(flipped, enc.embed_batch(batch), atol=1e-5)


def test_auto_on_native_bf16_takes_the_backend_measured_fastest(monkeypatch, tmp_path):
    """measured_cpu_backend: PyTorch bf16 against ONNX Runtime fp32 and OpenVINO bf16 on this
    CPU, once; the choice is remembered per CPU, threads and versions, and a broken record is
    measured again; a runtime that fails is left out, and the record says why; with no
    runtime left, PyTorch, not remembered."""
    monkeypatch.setenv(B.CACHE_ENV, str(tmp_path))
    timed: list[str] = []
    speed = {"torch": 80.0, "onnx": 90.0, "openvino-bf16": 85.0}
    broken: set[str] = set()

    def build_runner(enc, runtime, threads):  # the runtimes themselves: tested above
        if runtime in broken:
            raise B.BackendError(f"{runtime}: bad allocation")
        return B.Runner(runtime, lambda x: x)

    def images_per_second(encoders) -> dict[str, float]:
        assert encoders["torch"].runner is None and encoders["torch"].bf16
        assert all(
            e.runner.backend == k and not e.bf16 for k, e in encoders.items() if k != "torch"
        )
        timed.extend(encoders)
        return {kind: speed[kind] for kind in encoders}

    monkeypatch.setattr(B, "build_runner", build_runner)
    monkeypatch.setattr(B, "_images_per_second", images_per_second)

    def make(bf16: bool) -> TinyEncoder:
        enc = tiny_encoder()
        enc.bf16 = bf16
        return enc

    assert B.measured_cpu_backend("tiny", make, 2) == "onnx"
    assert sorted(timed) == ["onnx", "openvino-bf16", "torch"]
    record = json.loads((tmp_path / B.CHOICE_FILE).read_text())
    (entry,) = record.values()
    assert entry["choice"] == "onnx" and entry["images_per_second"] == speed
    assert entry["cpu"] == B.cpu_signature() and entry["threads"] == 2
    speed.update(torch=100.0)
    assert B.measured_cpu_backend("tiny", make, 2) == "onnx"  # remembered, not timed again
    assert len(timed) == 3
    assert B.measured_cpu_backend("tiny", make, 1) == "torch"  # other threads: measured
    assert len(timed) == 6
    (tmp_path / B.CHOICE_FILE).write_text("{not json")
    speed.update({"openvino-bf16": 150.0})
    assert B.measured_cpu_backend("tiny", make, 2) == "openvino-bf16"
    assert len(timed) == 9

    # OpenVINO unusable now: the faster of the other two, remembered with the failure (it
    # would fail again: every process would build and time all three otherwise)
    broken.add("openvino-bf16")
    speed.update(onnx=120.0)
    assert B.measured_cpu_backend("tiny", make, 3) == "onnx"
    assert sorted(timed[9:]) == ["onnx", "torch"]
    (entry,) = [
        e for e in json.loads((tmp_path / B.CHOICE_FILE).read_text()).values() if e["threads"] == 3
    ]
    assert entry["choice"] == "onnx" and "bad allocation" in entry["failed"]["openvino-bf16"]
    assert B.measured_cpu_backend("tiny", make, 3) == "onnx" and len(timed) == 11
    # both runtimes unusable: PyTorch, untimed and not remembered
    broken.add("onnx")
    before = len(timed)
    assert B.measured_cpu_backend("tiny", make, 4) == "torch"
    assert len(timed) == before
    assert all(
        e["threads"] != 4 for e in json.loads((tmp_path / B.CHOICE_FILE).read_text()).values()
    )
    # no writable cache folder: the runtimes could not keep their export; nothing is timed
    broken.clear()
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    assert B.measured_cpu_backend("tiny", make, 5, cache=blocked) == "torch"
    assert len(timed) == before


def test_models_command_says_what_auto_runs_here(monkeypatch, tmp_path):
    """auto_backend_here (`artsim models`): ONNX Runtime without native bf16; with it, the
    measurement remembered for this CPU, or that the first use measures; never measures."""
    import artsim.encoders.base as base

    monkeypatch.setattr(base, "cpu_supports_bf16", lambda: False)
    lines = B.auto_backend_here(cache=tmp_path)
    assert lines[0].startswith("this CPU: ") and "backend auto here: onnx" in lines[1]
    monkeypatch.setattr(base, "cpu_supports_bf16", lambda: True)
    lines = B.auto_backend_here(cache=tmp_path)
    assert "measured at first use" in lines[1] and str(tmp_path) in lines[2]
    assert not (tmp_path / B.CHOICE_FILE).exists()
    monkeypatch.setattr(B, "build_runner", lambda enc, runtime, threads: B.Runner(runtime, None))
    speeds = {"torch": 70.0, "onnx": 82.0, "openvino-bf16": 150.0}
    monkeypatch.setattr(B, "_images_per_second", lambda encoders: speeds)
    assert B.measured_cpu_backend("tiny", lambda bf16: tiny_encoder(), 2, cache=tmp_path) == (
        "openvino-bf16"
    )
    (line,) = [ln for ln in B.auto_backend_here(cache=tmp_path) if "auto here" in ln]
    assert line.startswith("backend auto here: openvino-bf16 for tiny on 2 threads")
    assert "onnx 82, openvino-bf16 150, torch 70" in line


def test_openvino_bf16_runs_only_with_native_bf16(monkeypatch, tmp_path):
    """openvino-bf16: on a CPU with native bf16 it passes the bf16-level check and embeds like
    PyTorch within bf16's rounding; elsewhere OpenVINO would quietly run f32, so it refuses,
    and attach_backend falls back to PyTorch with one warning."""
    pytest.importorskip("openvino")
    import artsim.encoders.base as base

    monkeypatch.setenv(B.CACHE_ENV, str(tmp_path))
    enc = tiny_encoder()
    batch = torch.from_numpy(B.fixed_inputs(32, n=3))
    ref = enc.embed_batch(batch)
    if base.cpu_supports_bf16():
        assert B.attach_backend(enc, "openvino-bf16", 1) == "openvino-bf16"
        assert enc.runner.backend == "openvino-bf16" and "bf16" in enc.runner.detail
        cos = (ref * enc.embed_batch(batch)).sum(axis=1)
        assert cos.min() >= B.BF16_CHECK_COSINE
        enc.runner = None
    # without native bf16 (OpenVINO would emulate it on any AVX-512 CPU): refused
    monkeypatch.setattr(base, "cpu_supports_bf16", lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert B.attach_backend(enc, "openvino-bf16", 1) == "torch"
    assert len(caught) == 1 and "no native bf16" in str(caught[0].message)
    assert enc.runner is None


def test_bf16_check_is_bf16s_level_not_fp32s():
    """A bf16 runtime is held to BF16_CHECK_COSINE, an fp32 one to CHECK_COSINE."""
    enc = tiny_encoder()

    def rounded(x: np.ndarray) -> np.ndarray:  # what bf16 weights and activations do
        with torch.inference_mode():
            out = enc._forward(torch.from_numpy(x).to(torch.bfloat16).float()).numpy()
        return out + np.random.default_rng(0).normal(0, 0.03 * np.abs(out).mean(), out.shape)

    worst = B.check_against_torch(enc, B.Runner("openvino-bf16", rounded))
    assert B.BF16_CHECK_COSINE <= worst < B.CHECK_COSINE
    with pytest.raises(B.BackendError, match="differs from PyTorch"):
        B.check_against_torch(enc, B.Runner("openvino", rounded))


def test_load_encoder_measures_on_native_bf16(monkeypatch, tmp_path):
    """auto on a CPU with native bf16 (AMX or AVX512-BF16) asks measured_cpu_backend and runs
    its answer (PyTorch in bf16 when that runtime fails here); an explicit backend or bf16
    never measures; the manifest records the answer's precision from the start."""
    import artsim.encoders as E
    from artsim.catalog import Catalog
    from artsim.records import SourceItem
    from tests.images_factory import gradient

    monkeypatch.setenv(B.CACHE_ENV, str(tmp_path))
    asked: list[str] = []

    def measured(model, make, threads, **kw) -> str:
        asked.append(model)
        assert kw["pooling"] == "gem+mid"  # the default, named or not: one measurement
        assert make(False).bf16 is False  # what it would time
        return answer

    monkeypatch.setattr(B, "measured_cpu_backend", measured)
    monkeypatch.setattr(E, "cpu_supports_bf16", lambda: True)
    # and where the catalog asks (whether auto may make it int8): else this fails on AVX2 CPUs
    monkeypatch.setattr("artsim.encoders.base.cpu_supports_bf16", lambda: True)
    real_build = B.build_runner
    failing: set[str] = set()

    def build_runner(enc, runtime, threads):  # OpenVINO bf16 on any CPU: PyTorch stands in
        if runtime in failing:
            raise B.BackendError(f"{runtime}: failed here")
        if runtime in B.BF16_BACKENDS:
            forward = enc._forward
            return B.Runner(runtime, lambda x: forward(torch.from_numpy(x)).detach().numpy())
        return real_build(enc, runtime, threads)

    monkeypatch.setattr(B, "build_runner", build_runner)
    E.load_encoder.cache_clear()
    try:
        answer = "onnx"
        enc = E.load_encoder("efficientnet-lite2", device="cpu")
        assert asked == ["efficientnet-lite2"] and enc.backend == "onnx" and not enc.bf16
        E.load_encoder.cache_clear()
        answer = "torch"
        enc = E.load_encoder("efficientnet-lite2", device="cpu")
        assert len(asked) == 2 and enc.backend == "torch" and enc.bf16
        for kw in ({"backend": "torch"}, {"bf16": True}, {"bf16": False}):
            E.load_encoder.cache_clear()
            enc = E.load_encoder("efficientnet-lite2", device="cpu", **kw)
            assert len(asked) == 2 and enc.bf16 == (kw != {"bf16": False})
        E.load_encoder.cache_clear()
        answer = "openvino-bf16"
        enc = E.load_encoder("efficientnet-lite2", device="cpu")
        assert len(asked) == 3 and enc.backend == "openvino-bf16" and not enc.bf16
        # the remembered runtime fails in this process: PyTorch, in bf16 as on such a CPU
        E.load_encoder.cache_clear()
        failing.add("openvino-bf16")
        with pytest.warns(RuntimeWarning, match="failed here.*falling back to PyTorch"):
            enc = E.load_encoder("efficientnet-lite2", device="cpu")
        assert enc.backend == "torch" and enc.bf16 and enc.runner is None
        failing.clear()
        E.load_encoder.cache_clear()
        cat = Catalog.create(tmp_path / "made-in-bf16")
        assert cat.manifest["model"]["backend"] == "openvino-bf16" and cat.manifest["model"]["bf16"]
        # a catalog made where ONNX Runtime was picked, indexed later where PyTorch bf16 is:
        # the manifest says what made the last run's vectors, precision included
        E.load_encoder.cache_clear()
        answer = "onnx"
        cat = Catalog.create(tmp_path / "cat")
        assert cat.manifest["model"]["backend"] == "onnx" and not cat.manifest["model"]["bf16"]
        E.load_encoder.cache_clear()
        answer = "torch"
        gradient(96, 64).save(tmp_path / "a.png")
        cat = Catalog.open(tmp_path / "cat")
        cat.add([SourceItem(id="a", image=str(tmp_path / "a.png"))], aspects=["global"])
        assert cat.manifest["model"]["backend"] == "torch" and cat.manifest["model"]["bf16"]
        E.load_encoder.cache_clear()
        answer = "openvino-bf16"
        cat = Catalog.open(tmp_path / "cat")
        cat.add([SourceItem(id="b", image=str(tmp_path / "a.png"))], aspects=["global"])
        assert cat.manifest["model"]["backend"] == "openvino-bf16" and cat.manifest["model"]["bf16"]
        assert len(cat) == 2
    finally:
        E.load_encoder.cache_clear()
