"""A catalog's int8 network (`--backend openvino-int8`, or auto's choice for a large first run
on a CPU without native bf16): the whole-image encoder quantised statically by NNCF on
OpenVINO, calibrated on real paintings (the first ones the catalog indexes, never random data)
and kept in the catalog.

Why a catalog's choice, kept in the catalog: int8 vectors are at a median cosine of ~0.98 to fp32
(fp32 backends agree to 0.9999), so they cannot mix with fp32 vectors, and the quantised network
depends on its calibration images. Every process that embeds for such a catalog (a query, a
later index run, a Ray worker, a server) must run that very network: the catalog keeps it
under ``models/`` (content-addressed: ``int8-<sha256[:16]>.xml`` and ``.bin``), and its
manifest records the sha256, which is checked whenever the network is loaded. Speed and
retrieval metrics against fp32: docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from artsim.encoders.backends import (
    BackendError,
    Runner,
    _atomic_write,
    _cosines,
    _runtime_version,
    cached_export,
    compiled_openvino_runner,
)

if TYPE_CHECKING:
    import torch

    from artsim.encoders.base import Encoder

INT8_BACKEND = "openvino-int8"
CALIBRATION_IMAGES = 64  # NNCF: ~6 s on 2 cores; every metric within 0.01 (benchmarks.md)
FEW_CALIBRATION_IMAGES = 32  # fewer, and activation ranges rest on too few paintings: a warning
CHECK_IMAGES = 32  # the check runs PyTorch fp32 on these: ~1.5 s on 2 cores
# measured medians are 0.977-0.979 (minimum ~0.91); below 0.97 something went wrong
CHECK_MEDIAN = 0.97
CALIBRATION_TIMEOUT_S = 900  # ~15 s normally; a hung child must not hold the catalog's lock
# auto makes a catalog int8 only when its first run brings this many paintings: calibrating
# (~15 s on 2 cores, in a child process) costs what int8 then saves on ~4,000 paintings
# (3-4 ms each on an AVX2 CPU), so smaller collections stay fp32 (docs/benchmarks.md)
AUTO_MIN_PAINTINGS = 10_000
MODELS_FOLDER = "models"
REMEDY = "pip install 'openvino>=2024.0' 'nncf>=2.10' (dependencies of artsim)"


def available() -> str | None:
    """None when quantising can run here, else what is missing and how to get it."""
    import importlib.util

    missing = [p for p in ("openvino", "nncf") if importlib.util.find_spec(p) is None]
    return f"{' and '.join(missing)} not installed; {REMEDY}" if missing else None


def quantise(encoder: Encoder, calibration: torch.Tensor) -> tuple[bytes, bytes]:
    """The encoder's network quantised to int8 (NNCF, mixed preset: symmetric weights,
    asymmetric activations), calibrated on uint8 NCHW images already resized for the model.
    Returns the OpenVINO IR (xml, bin)."""
    problem = available()
    if problem:
        raise BackendError(f"{INT8_BACKEND}: {problem}")
    os.environ.setdefault("NNCF_CI", "1")  # NNCF's switch for its telemetry: artsim stays offline
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(cached_export(encoder, _runtime_version("openvino"))))
    inputs = [
        encoder.preprocess.normalise(calibration[i : i + 1]).numpy()
        for i in range(len(calibration))
    ]
    # NNCF draws its progress bar on stdout: stderr keeps `--json` output clean. Its own
    # logger, not nncf.set_log_level: that also changes the level of handlers it did not make
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            quantised = nncf.quantize(
                model,
                nncf.Dataset(inputs),
                subset_size=len(inputs),
                preset=nncf.QuantizationPreset.MIXED,
            )
    finally:
        nncf_logger.setLevel(level)
    with tempfile.TemporaryDirectory(prefix="artsim-int8-") as tmp:
        xml = Path(tmp) / "int8.xml"
        ov.save_model(quantised, str(xml), compress_to_fp16=False)
        return xml.read_bytes(), xml.with_suffix(".bin").read_bytes()


def network_sha256(xml: bytes, weights: bytes) -> str:
    return hashlib.sha256(
        hashlib.sha256(xml).digest() + hashlib.sha256(weights).digest()
    ).hexdigest()


def save(catalog_path: Path, xml: bytes, weights: bytes, record: dict[str, Any]) -> dict[str, Any]:
    """Write the network into the catalog (atomically, under its content's name); returns the
    manifest record that names it."""
    sha = network_sha256(xml, weights)
    name = f"int8-{sha[:16]}"
    folder = catalog_path / MODELS_FOLDER
    _atomic_write(folder / f"{name}.bin", weights)
    _atomic_write(folder / f"{name}.xml", xml)
    return {**record, "file": f"{MODELS_FOLDER}/{name}.xml", "sha256": sha}


def read_network(catalog_path: Path, record: dict[str, Any]) -> tuple[bytes, bytes]:
    """The catalog's int8 network (xml, weights) as its manifest record names it, checked
    against the record's sha256; raises BackendError (missing, unreadable or changed)."""
    name = record.get("file") if isinstance(record, dict) else None
    xml_path = catalog_path / str(name or "")
    try:
        if not name:
            raise OSError("the manifest names no file")
        xml, weights = xml_path.read_bytes(), xml_path.with_suffix(".bin").read_bytes()
    except OSError as exc:
        raise BackendError(
            f"{INT8_BACKEND}: the catalog's int8 network {xml_path} cannot be read ({exc})"
        ) from exc
    if network_sha256(xml, weights) != record.get("sha256"):
        raise BackendError(
            f"{INT8_BACKEND}: {xml_path} does not match the sha256 in the manifest "
            "(changed or corrupt); its vectors cannot be reproduced"
        )
    return xml, weights


def load_runner(catalog_path: Path, record: dict[str, Any], threads: int) -> Runner:
    """Compile the catalog's int8 network after checking it against the manifest's sha256;
    raises BackendError (missing package, missing or changed file)."""
    try:
        import openvino as ov
    except ImportError as exc:
        raise BackendError(f"{INT8_BACKEND}: openvino not installed; {REMEDY}") from exc
    xml, weights = read_network(catalog_path, record)
    xml_path = catalog_path / record["file"]
    core = ov.Core()
    try:
        # f32 for the layers NNCF left unquantised: bf16 there would move the vectors again
        compiled = core.compile_model(
            core.read_model(xml, ov.Tensor(np.frombuffer(weights, np.uint8))),
            "CPU",
            {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"},
        )
    except RuntimeError as exc:  # an IR this OpenVINO cannot read (a newer one saved it)
        raise BackendError(f"{INT8_BACKEND}: OpenVINO cannot load {xml_path}: {exc}") from exc
    return compiled_openvino_runner(
        compiled, INT8_BACKEND, f"openvino {ov.__version__}, {threads} threads, int8"
    )


def check(encoder: Encoder, runner: Runner, images: torch.Tensor) -> tuple[float, float]:
    """(median, min) cosine of the int8 network's vectors to PyTorch fp32's on uint8 NCHW
    images; raises BackendError when the median is under CHECK_MEDIAN."""
    import torch

    x = encoder.preprocess.normalise(images)
    with torch.inference_mode():
        ref = encoder._forward(x.contiguous(memory_format=torch.channels_last)).float().numpy()
    got = np.concatenate([runner(x[i : i + 8].numpy()) for i in range(0, len(x), 8)])
    cos = _cosines(ref, got)
    median, worst = float(np.median(cos)), float(cos.min())
    if not np.isfinite(cos).all() or median < CHECK_MEDIAN:
        raise BackendError(
            f"{INT8_BACKEND}: the quantised network's vectors are too far from fp32 (median "
            f"cosine {median:.4f} < {CHECK_MEDIAN}); use the default backend"
        )
    return median, worst


def calibrate(
    encoder: Encoder, catalog_path: Path, images: torch.Tensor, threads: int
) -> dict[str, Any]:
    """Quantise on `images` (uint8 NCHW), check, and store the network in the catalog; returns
    its manifest record."""
    import nncf
    import openvino as ov

    xml, weights = quantise(encoder, images)
    record = save(
        catalog_path,
        xml,
        weights,
        {
            "calibration_images": len(images),
            "tools": f"nncf {nncf.__version__}, openvino {ov.__version__}",
        },
    )
    try:
        runner = load_runner(catalog_path, record, threads)
        median, worst = check(encoder, runner, images[:CHECK_IMAGES])
    except BackendError:
        for suffix in (".xml", ".bin"):  # a network that failed its check is never kept
            (catalog_path / record["file"]).with_suffix(suffix).unlink(missing_ok=True)
        raise
    return {**record, "cosine_to_fp32": {"median": round(median, 4), "min": round(worst, 4)}}


def calibrate_in_subprocess(
    catalog_path: Path,
    images: np.ndarray,
    threads: int,
    *,
    model: str,
    pooling: str | None,
    model_path: str | None,
    size: int | None = None,
) -> dict[str, Any]:
    """`calibrate` in a child process (`python -m artsim.encoders.int8`): NNCF's peak memory
    (~450 MB) leaves with it instead of raising the index run's peak for good. A plain
    subprocess, not multiprocessing: spawn would re-run a user's script without a main guard."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="artsim-calibrate-") as tmp:
        np.save(Path(tmp) / "images.npy", images)
        spec: dict[str, Any] = {
            "catalog": str(catalog_path),
            "images": str(Path(tmp) / "images.npy"),
            "threads": threads,
            "model": model,
            "pooling": pooling,
            "model_path": model_path,
            "size": size,
            "out": str(Path(tmp) / "record.json"),
        }
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        # the artsim this process runs, wherever it was imported from; NNCF without telemetry
        here = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path, "NNCF_CI": "1"}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "artsim.encoders.int8", str(Path(tmp) / "spec.json")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                timeout=CALIBRATION_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendError(
                f"{INT8_BACKEND}: calibration took over {CALIBRATION_TIMEOUT_S} s and was stopped"
            ) from exc
        out = Path(spec["out"])
        if done.returncode != 0 or not out.is_file():
            why = "killed (out of memory?)" if done.returncode < 0 else f"exit {done.returncode}"
            tail = " | ".join(done.stderr.strip().splitlines()[-3:]) or "no output"
            raise BackendError(f"{INT8_BACKEND}: calibration failed ({why}): {tail}")
        return json.loads(out.read_text())


def _main(spec_file: str) -> None:
    import torch

    from artsim.encoders import load_encoder
    from artsim.errors import ArtsimError

    spec = json.loads(Path(spec_file).read_text())
    try:
        reference = load_encoder(
            spec["model"],
            model_path=spec["model_path"],
            pooling=spec["pooling"],
            size=spec.get("size"),
            bf16=False,
            backend="torch",
            device="cpu",
        )
        images = torch.from_numpy(np.load(spec["images"]))
        record = calibrate(reference, Path(spec["catalog"]), images, spec["threads"])
    except ArtsimError as exc:  # the reason alone, for the parent's message
        raise SystemExit(str(exc)) from None
    Path(spec["out"]).write_text(json.dumps(record))


if __name__ == "__main__":
    _main(sys.argv[1])
