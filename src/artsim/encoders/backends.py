"""Where an encoder's network runs: PyTorch (the reference), ONNX Runtime or OpenVINO, CPU or CUDA.

The network is exported to ONNX once, at first use, with torch's TorchScript-based exporter
(`dynamo=False`), and cached in the user cache directory under a name that hashes the weights,
the pooling and input size, and the exporter and runtime versions. A sidecar records the
export's own sha256: a file that no longer matches it (truncated, edited, half-written by an
older version) is rebuilt, never used. Before first use in a process, the runtime's output is
checked against PyTorch's on fixed inputs (cosine >= 0.9999 per image; a bf16 runtime's
>= 0.995); a runtime that is
missing, fails to export or fails the check falls back to PyTorch with one warning.

Why ONNX Runtime by default on CPUs without native bf16 (most AVX2 machines): there PyTorch
runs fp32, and ONNX Runtime does about half the CPU work per image, with outputs equal to
PyTorch fp32 up to float rounding, so vectors from any backend mix in one catalog. Where the
CPU has native bf16 (AMX or AVX512-BF16), no runtime always wins (AMD Zen 4: PyTorch bf16 in
session 8, OpenVINO bf16 in session 22; Zen 5: ONNX Runtime), so `measured_cpu_backend` times
PyTorch bf16, ONNX Runtime fp32 and OpenVINO bf16 once on that machine (docs/benchmarks.md,
docs/models.md). The bf16 runtimes' vectors are as close to fp32 as bf16 allows (cosine
~0.999), so OpenVINO bf16 is checked at that level (`BF16_CHECK_COSINE`), not at fp32's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from artsim.errors import ArtsimError

if TYPE_CHECKING:
    import torch

    from artsim.encoders.base import Encoder

BACKENDS = ("auto", "torch", "onnx", "openvino", "openvino-bf16")
DEVICES = ("auto", "cpu", "cuda")
CHECK_COSINE = 0.9999
# runtimes computing in bf16: checked against PyTorch fp32 at bf16's level, where PyTorch bf16
# itself measures 0.9985-0.9986 at worst on `fixed_inputs` (session 22)
BF16_BACKENDS = frozenset({"openvino-bf16"})
BF16_CHECK_COSINE = 0.995
CACHE_ENV = "ARTSIM_CACHE_DIR"
EXPORT_FORMAT = 1  # bump when the exported graph changes for the same weights
OPSET = 17
# models whose export is known to work and to pay off; others run on PyTorch under "auto"
EXPORTABLE = frozenset({"efficientnet-lite2"})


class BackendError(ArtsimError):
    """A backend could not be prepared (missing package, export failure, failed check)."""


@dataclass(frozen=True, slots=True)
class Runner:
    """A compiled network: normalised float32 NCHW batch -> float32 (N, dim) features."""

    backend: str
    run: Callable[[np.ndarray], np.ndarray]
    detail: str = ""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.run(np.ascontiguousarray(x, dtype=np.float32))


# ---------------------------------------------------------------------- choosing
def resolve_device(device: str | None) -> str:
    """'auto' -> 'cuda' when torch sees a CUDA device, else 'cpu'; 'cuda' without one is an error."""
    import torch

    device = (device or "auto").lower()
    if device not in DEVICES:
        raise ArtsimError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ArtsimError(
            "--device cuda: PyTorch sees no CUDA device (torch.cuda.is_available() is False; "
            "a CPU-only torch build or no driver); use --device cpu or --device auto"
        )
    return device


def resolve_backend(backend: str | None, *, model: str, device: str, bf16: bool) -> str:
    """The backend 'auto' stands for. CUDA, and a CPU run in bf16 (``bf16``: native bf16
    where `measured_cpu_backend` found PyTorch fastest, or a model that does not export),
    keep PyTorch; elsewhere ONNX Runtime for the models known to export."""
    backend = (backend or "auto").lower()
    if backend == "openvino-int8":  # artsim.encoders.int8
        raise ArtsimError(
            "openvino-int8 is chosen when a catalog is created (`artsim index --backend "
            "openvino-int8`, Catalog.create(..., backend='openvino-int8')): its network is "
            "calibrated on the catalog's own paintings and kept in the catalog"
        )
    if backend not in BACKENDS:
        raise ArtsimError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if device == "cuda":
        if backend not in ("auto", "torch"):
            raise ArtsimError(
                f"--backend {backend} runs on the CPU only; use --backend torch (or auto) with "
                "--device cuda, or --device cpu"
            )
        return "torch"
    if backend != "auto":
        return backend
    if bf16 or model not in EXPORTABLE:
        return "torch"
    return "onnx"


CHOICE_FILE = "backend-choice.json"
CHOICE_FORMAT = 3  # bump when what is timed changes (2: rounds alternate; 3: openvino-bf16)
CHOICE_BATCH = 32
CHOICE_ROUNDS = 3
# what `measured_cpu_backend` times, PyTorch (in bf16) first
MEASURED = ("torch", "onnx", "openvino-bf16")
# the CPU flags a choice depends on (a machine with other flags measures again)
_VECTOR_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "fma")


def cpu_signature() -> dict[str, Any]:
    """The CPU a speed measurement holds for: name and generation (`base.cpu_info`), vector
    flags and usable CPUs."""
    from artsim.encoders.base import cpu_info

    name, flags = cpu_info()
    return {
        "model": name,
        "flags": [f for f in _VECTOR_FLAGS if f in flags],
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
    }


def measured_cpu_backend(
    model: str,
    make: Callable[[bool], Encoder],
    threads: int,
    *,
    pooling: str | None = None,
    size: int | None = None,
    cache: Path | None = None,
) -> str:
    """'torch' (PyTorch bf16), 'onnx' (ONNX Runtime fp32) or 'openvino-bf16': whichever
    embeds a batch of paintings fastest on this CPU. For CPUs with native bf16, where none
    always wins (AMD Zen 5: ONNX Runtime 1.15x faster than PyTorch bf16; Zen 4: PyTorch bf16
    1.18x in session 8, the two within 5 % in session 18, OpenVINO bf16 1.5-1.6x both in
    session 22; docs/benchmarks.md). Measured once per CPU generation, thread count, model
    and library versions (a few seconds: the models built, one warm-up and `CHOICE_ROUNDS`
    timed batches each, alternating, the best kept) and remembered in the cache directory;
    processes starting together wait for the first one's answer (a file lock) instead of
    measuring side by side; the models are held while measuring (the default model: ~30 MB
    each). ``make(bf16)`` builds the encoder. Without a writable cache directory the
    runtimes cannot keep their export, so 'torch' without measuring. A runtime that fails to
    build or check is left out, and the record says why (deleting the file measures again);
    when both fail, or timing fails, 'torch' for this process only, not remembered."""
    import gc

    import torch
    from filelock import FileLock
    from filelock import Timeout as LockTimeout

    key = {
        "format": CHOICE_FORMAT,
        "model": model,
        "pooling": pooling,
        **({"size": size} if size else {}),
        "cpu": cpu_signature(),
        "threads": threads,
        "torch": torch.__version__,
        "runtime": _runtime_version("onnx") if _installed("onnxruntime") else None,
        "openvino": _runtime_version("openvino") if _installed("openvino") else None,
    }
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache or cache_dir()
    path = folder / CHOICE_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock", timeout=120)
        lock.acquire()
    except (OSError, LockTimeout):
        return "torch"
    try:
        known = _read_choices(path)
        entry = known.get(name)
        if isinstance(entry, dict) and entry.get("choice") in MEASURED:
            return str(entry["choice"])
        encoders = {"torch": make(True)}
        failed: dict[str, str] = {}
        try:
            for runtime in MEASURED[1:]:
                enc = make(False)
                try:
                    enc.runner = build_runner(enc, runtime, threads)
                except Exception as exc:  # any failure: that runtime is no choice here
                    failed[runtime] = str(exc)
                    continue
                encoders[runtime] = enc
            del enc
            if len(encoders) == 1:
                return "torch"  # not remembered: the next process tries again
            try:
                speeds = _images_per_second(encoders)
            except Exception:  # a runtime failing on real batches: as above
                return "torch"
        finally:
            for enc in encoders.values():
                enc.runner = None
            del encoders
            gc.collect()  # the export's wrapper module keeps the encoder in a cycle
        choice = max(speeds, key=lambda b: speeds[b])
        known = _read_choices(path)  # another model's entry may have been added meanwhile
        # remembered with its failures too: a runtime that fails its check or finds no bf16
        # would fail again, and every process would otherwise build and time them all again
        known[name] = {**key, "choice": choice, "images_per_second": speeds, "failed": failed}
        with contextlib.suppress(OSError):  # unwritten: measured again next time
            _atomic_write(path, json.dumps(known, indent=1).encode())
        return choice
    finally:
        lock.release()


def auto_backend_here(cache: Path | None = None) -> list[str]:
    """What `auto` runs the exported models on with this CPU, in lines for `artsim models`:
    ONNX Runtime without native bf16; with it, the remembered measurements of this CPU and
    their speeds, or that the first use measures. Reads only, measures nothing."""
    from artsim.encoders.base import cpu_supports_bf16

    sig = cpu_signature()
    lines = [f"this CPU: {sig['model']}, {sig['cpus']} CPUs, flags {' '.join(sig['flags'])}"]
    if not cpu_supports_bf16():
        return [*lines, "backend auto here: onnx (ONNX Runtime fp32: this CPU has no native bf16)"]
    path = (cache or cache_dir()) / CHOICE_FILE
    entries = [
        e
        for e in _read_choices(path).values()
        if isinstance(e, dict) and e.get("format") == CHOICE_FORMAT and e.get("cpu") == sig
    ]
    for e in entries:
        speeds = ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(e.get("images_per_second", {}).items())
        )
        failed = "; failed: " + ", ".join(sorted(e["failed"])) if e.get("failed") else ""
        lines.append(
            f"backend auto here: {e.get('choice')} for {e.get('model')} on {e.get('threads')} "
            f"threads (measured img/s: {speeds}{failed})"
        )
    if not entries:
        lines.append(
            "backend auto here: the fastest of " + ", ".join(MEASURED) + " (PyTorch in bf16), "
            "measured at first use"
        )
    return [*lines, f"auto's measurements are kept in {path}: delete it to measure again"]


def _read_choices(path: Path) -> dict[str, Any]:
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _images_per_second(encoders: dict[str, Encoder]) -> dict[str, float]:
    """Each encoder's best of `CHOICE_ROUNDS` timed batches of `CHOICE_BATCH` fixed inputs,
    after one warm-up. The rounds alternate between the encoders, so that a load that
    comes or goes while measuring slows both alike."""
    import time

    import torch

    crop = next(iter(encoders.values())).preprocess.crop
    batch = torch.from_numpy(fixed_inputs(crop, CHOICE_BATCH))
    for encoder in encoders.values():
        encoder.embed_batch(batch)  # warm-up: oneDNN and ONNX Runtime prepare their kernels
    best = dict.fromkeys(encoders, float("inf"))
    for _ in range(CHOICE_ROUNDS):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            encoder.embed_batch(batch)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: CHOICE_BATCH / t for name, t in best.items()}


# ---------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """$ARTSIM_CACHE_DIR, else the platform's user cache folder (~/.cache/artsim on Linux)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("artsim", appauthor=False))


def export_key(encoder: Encoder, runtime: str) -> dict[str, Any]:
    """Everything the exported file depends on; its hash names the file."""
    return module_key(
        encoder.name,
        encoder.weights_hash,
        encoder.preprocess.crop,
        runtime,
        extra={k: v for k, v in sorted(encoder.extra.items()) if k != "source"},
    )


def module_key(
    name: str, weights_hash: str, size: int, runtime: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    import torch

    return {
        "format": EXPORT_FORMAT,
        "model": name,
        "weights_sha256": weights_hash,
        "extra": extra or {},
        "input": size,
        "exporter": f"torch-{torch.__version__}-torchscript-opset{OPSET}",
        "runtime": runtime,
    }


def _sha256(path: Path) -> str:
    from artsim.encoders.base import file_sha256

    return file_sha256(path)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Forward:
    """Wraps an encoder's `_forward` as an nn.Module for tracing."""

    @staticmethod
    def module(encoder: Encoder) -> torch.nn.Module:
        import torch

        class Forward(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = encoder.model

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return encoder._forward(x).float()

        return Forward().eval()


def export_onnx_bytes(encoder: Encoder) -> bytes:
    """The encoder's network as ONNX (fp32, dynamic batch); see `export_module_bytes`."""
    return export_module_bytes(_Forward.module(encoder), encoder.preprocess.crop)


def export_module_bytes(module: torch.nn.Module, size: int) -> bytes:
    """A module taking (n, 3, size, size) float32 as ONNX (fp32, dynamic batch), without the
    `onnx` package.

    torch's TorchScript exporter imports `onnx` only to splice onnxscript custom functions
    into the file; this network has none, so that step is skipped (the `onnx` package would
    need protobuf >= 6, which breaks mediapipe). The result is checked against PyTorch
    before use, so a broken export cannot pass silently."""
    import io
    from unittest import mock

    import torch
    from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

    example = torch.zeros(2, 3, size, size)
    buf = io.BytesIO()
    with (
        mock.patch.object(onnx_proto_utils, "_add_onnxscript_fn", lambda proto, _opsets: proto),
        warnings.catch_warnings(),
        torch.inference_mode(False),
        torch.no_grad(),
    ):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buf,  # type: ignore[arg-type]  # a file object works (TorchScript exporter); torch types f as a path
            dynamo=False,
            opset_version=OPSET,
            input_names=["x"],
            output_names=["features"],
            dynamic_axes={"x": {0: "n"}, "features": {0: "n"}},
        )
    return buf.getvalue()


def cached_export(encoder: Encoder, runtime: str, *, cache: Path | None = None) -> Path:
    """Path of a verified ONNX export for this encoder, exporting (atomically) when the cached
    file is missing, stale or does not match its recorded hash."""
    return cached_module_export(
        export_key(encoder, runtime), lambda: export_onnx_bytes(encoder), cache=cache
    )


def cached_module_export(
    key: dict[str, Any], export: Callable[[], bytes], *, cache: Path | None = None
) -> Path:
    """`cached_export` for any network: `key` names and guards the file, `export` makes it."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    folder = (cache or cache_dir()) / "exports"
    path = folder / f"{key['model']}-{digest}.onnx"
    meta_path = path.with_suffix(".json")
    if path.is_file() or meta_path.is_file():
        problem = _cache_problem(path, meta_path, key)
        if problem is None:
            return path
        warnings.warn(
            f"artsim: export cache {path} {problem}; rebuilding it", RuntimeWarning, stacklevel=2
        )
    data = export()
    _atomic_write(path, data)
    meta = {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    _atomic_write(meta_path, json.dumps(meta, indent=2).encode())
    return path


def _cache_problem(path: Path, meta_path: Path, key: dict[str, Any]) -> str | None:
    """Why a cached export cannot be used, or None when it can."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return "has no readable record of its hash"
    if meta.get("key") != key:
        return "was made for other weights or versions (stale)"
    if not path.is_file():
        return "is missing its model file"
    if _sha256(path) != meta.get("sha256"):
        return "does not match its recorded sha256 (corrupt or changed)"
    return None


# ---------------------------------------------------------------------- runtimes
def _onnxruntime_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting between ops: the decode threads need those cycles on a small CPU
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # keep the memory arena: without it every run page-faults its buffers afresh (+8 ms of
    # CPU per image, measured); its size is bounded by feeding RUNNER_BATCH images at a time
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return Runner(
        "onnx",
        lambda x: session.run(None, {name: x})[0],
        f"onnxruntime {ort.__version__}, {threads} threads",
    )


def _openvino_runner(path: Path, threads: int, precision: str = "f32") -> Runner:
    """OpenVINO at ``precision``: "f32", or "bf16" (``openvino-bf16``), which only a CPU with
    native bf16 runs (BackendError elsewhere: OpenVINO would quietly run f32)."""
    import openvino as ov

    from artsim.encoders.base import cpu_supports_bf16

    refused = (
        "openvino-bf16: this CPU has no native bf16 (AVX512-BF16 or AMX){}; "
        "use --backend auto or onnx"
    )
    # OpenVINO accepts bf16 on any AVX-512 CPU too and emulates it there, slowly
    if precision == "bf16" and not cpu_supports_bf16():
        raise BackendError(refused.format(""))
    core = ov.Core()
    # the precision explicitly: on CPUs with bf16 units OpenVINO runs bf16 unless told f32
    compiled = core.compile_model(
        core.read_model(str(path)),
        "CPU",
        {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision},
    )
    ran = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
    if precision == "bf16" and "bfloat16" not in ran and "bf16" not in ran:
        raise BackendError(refused.format(f", OpenVINO would run {ran}"))
    backend = "openvino" if precision == "f32" else f"openvino-{precision}"
    return compiled_openvino_runner(
        compiled, backend, f"openvino {ov.__version__}, {threads} threads, {precision}"
    )


def compiled_openvino_runner(compiled: Any, backend: str, detail: str) -> Runner:
    """A Runner over an OpenVINO compiled model (fp32 or bf16 here, artsim.encoders.int8's
    int8)."""
    request = compiled.create_infer_request()
    lock = threading.Lock()  # one request, and a server's threads may embed at once

    def run(x: np.ndarray) -> np.ndarray:
        with lock:
            return np.array(request.infer({0: x})[0], dtype=np.float32, copy=True)

    return Runner(backend, run, detail)


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def _runtime_version(backend: str) -> str:
    """The runtime's name and version (one export serves OpenVINO at every precision)."""
    if backend == "onnx":
        import onnxruntime

        return f"onnxruntime-{onnxruntime.__version__}"
    import openvino

    return f"openvino-{openvino.__version__}"


def fixed_inputs(size: int, n: int = 2) -> np.ndarray:
    """Deterministic, image-like uint8 NCHW inputs: smooth colour fields with some texture."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(20260101)
    coarse = torch.from_numpy(rng.uniform(0, 255, (n, 3, 6, 6)).astype(np.float32))
    smooth = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    texture = torch.from_numpy(rng.normal(0, 12, (n, 3, size, size)).astype(np.float32))
    return (smooth + texture).clamp(0, 255).round().to(torch.uint8).numpy()


def runs_bf16(encoder: Encoder) -> bool:
    """Whether the encoder's vectors come out of bf16 arithmetic (PyTorch bf16 or a bf16
    runtime): what a catalog's manifest records as the run's precision."""
    return encoder.bf16 or encoder.backend in BF16_BACKENDS


def check_against_torch(encoder: Encoder, runner: Runner, threshold: float | None = None) -> float:
    """Smallest per-image cosine between the runner's and PyTorch's vectors on fixed inputs;
    raises BackendError below `threshold` (by default CHECK_COSINE, BF16_CHECK_COSINE for a
    bf16 runtime)."""
    import torch

    if threshold is None:
        threshold = BF16_CHECK_COSINE if runner.backend in BF16_BACKENDS else CHECK_COSINE

    x = encoder.preprocess.normalise(torch.from_numpy(fixed_inputs(encoder.preprocess.crop)))
    with torch.inference_mode():
        ref = encoder._forward(x.contiguous(memory_format=torch.channels_last)).float().numpy()
    got = runner(x.numpy())
    if got.shape != ref.shape or not np.isfinite(got).all():
        raise BackendError(f"{runner.backend}: output shape {got.shape}, expected {ref.shape}")
    cos = _cosines(ref, got)
    worst = float(cos.min())
    if worst < threshold:
        raise BackendError(
            f"{runner.backend}: differs from PyTorch (cosine {worst:.6f} < {threshold})"
        )
    return worst


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
    return (a * b).sum(axis=1)


def build_runner(encoder: Encoder, backend: str, threads: int) -> Runner:
    """Export (or reuse the cache), compile and check one runtime; raises BackendError."""
    try:
        version = _runtime_version(backend)
    except ImportError as exc:
        package = "onnxruntime" if backend == "onnx" else "openvino"
        raise BackendError(f"{backend}: package '{package}' is not installed") from exc
    try:
        path = cached_export(encoder, version)
        if backend == "onnx":
            runner = _onnxruntime_runner(path, threads)
        else:
            runner = _openvino_runner(path, threads, "bf16" if backend in BF16_BACKENDS else "f32")
    except BackendError:
        raise
    except Exception as exc:  # exporter and runtimes raise many types; all mean "unusable"
        raise BackendError(f"{backend}: {type(exc).__name__}: {exc}") from exc
    check_against_torch(encoder, runner)
    return runner


def attach_backend(encoder: Encoder, backend: str, threads: int) -> str:
    """Run `encoder` on `backend` ('torch', 'onnx', 'openvino' or 'openvino-bf16'); returns
    the backend that will actually run, after at most one fallback warning."""
    if backend == "torch":
        return "torch"
    try:
        encoder.runner = build_runner(encoder, backend, threads)
    except BackendError as exc:
        warnings.warn(
            f"artsim: {exc}; falling back to PyTorch (slower, same vectors)",
            RuntimeWarning,
            stacklevel=2,
        )
        return "torch"
    return backend
