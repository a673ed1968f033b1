"""What every whole-image encoder shares: preprocessing, batching, bf16/channels-last inference."""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

RUNNER_BATCH = 8  # images per call to ONNX Runtime / OpenVINO (see Encoder.embed_batch)

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True, slots=True)
class Preprocess:
    """How an image becomes the model's input, recorded in the catalog manifest.

    view="crop": the model config's eval transform: shorter side to `resize`, centre crop
    `crop` x `crop`. view="whole": the whole painting resized to `crop` x `crop` (no part cut
    off; chosen for EfficientNet-Lite2 by measurement, see docs/evaluation.md). Then normalise.
    """

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    view: str = "crop"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_uint8(self, image: Image.Image) -> torch.Tensor:
        """PIL RGB -> uint8 CHW tensor of crop x crop (normalisation happens batched, later)."""
        if self.view == "whole":
            resized = image.resize(
                (self.crop, self.crop), _RESAMPLE[self.interpolation], reducing_gap=3.0
            )
            return torch.from_numpy(np.asarray(resized, dtype=np.uint8).copy()).permute(2, 0, 1)
        w, h = image.size
        scale = self.resize / min(w, h)
        nw, nh = max(self.crop, round(w * scale)), max(self.crop, round(h * scale))
        resized = image.resize((nw, nh), _RESAMPLE[self.interpolation], reducing_gap=3.0)
        left, top = (nw - self.crop) // 2, (nh - self.crop) // 2
        cropped = resized.crop((left, top, left + self.crop, top + self.crop))
        arr = np.asarray(cropped, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)

    def normalise(self, batch_uint8: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std).view(1, 3, 1, 1) * 255.0
        x = batch_uint8.to(torch.float32, copy=True)
        if x.dim() != 4:  # one unbatched image: broadcasting makes the batch of one
            return (x - mean) / std
        # in place on one fresh copy: the same numbers as (x - mean) / std, a third of the CPU
        return x.sub_(mean).div_(std)


# /proc/cpuinfo fields that tell CPU generations apart where the model name does not (AMD's
# "AMD EPYC" is Zen 3, 4 and 5 alike; ARM gives no model name at all)
_GENERATION_FIELDS = ("cpu family", "model", "CPU implementer", "CPU part")


@functools.cache
def cpu_info() -> tuple[str, frozenset[str]]:
    """This CPU's name and flags (`parse_cpuinfo` of /proc/cpuinfo; "unknown" and no flags
    where it cannot be read)."""
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return "unknown", frozenset()


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """The first processor's name and flags in /proc/cpuinfo's ``text``. The name is the
    model name followed by the fields that tell generations apart, e.g. "AMD EPYC (cpu
    family 25, model 17)"."""
    name, flags, generation = "unknown", frozenset[str](), dict[str, str]()
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if not key and (name != "unknown" or flags):  # the first processor's block ends
            break
        if key == "model name" and name == "unknown":
            name = value
        elif key in ("flags", "Features") and not flags:  # x86, ARM
            flags = frozenset(value.split())
        elif key in _GENERATION_FIELDS:
            generation.setdefault(key, value)
    if generation:
        fields = ", ".join(f"{k} {generation[k]}" for k in _GENERATION_FIELDS if k in generation)
        name = f"{name} ({fields})"
    return name, flags


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 matrix units (AMX or AVX512-BF16)."""
    return not cpu_info()[1].isdisjoint({"amx_bf16", "avx512_bf16"})


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def gem(features: torch.Tensor, p: float = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """Generalised-mean pooling over H, W of an NCHW map (Radenović et al., 2018)."""
    # a mean over H, W rather than avg_pool2d(kernel=shape): same numbers, and it exports to ONNX
    return features.clamp(min=eps).pow(p).mean(dim=(2, 3)).pow(1.0 / p)


@dataclass
class Encoder:
    """A loaded whole-image encoder. Subclasses implement `_forward` on a normalised batch."""

    name: str
    dim: int
    preprocess: Preprocess
    weights_hash: str
    model: torch.nn.Module = field(repr=False)
    bf16: bool = False
    channels_last: bool = True
    flip_average: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # where the network runs (artsim.encoders.backends): a compiled runtime, or None for PyTorch
    runner: Any = field(default=None, repr=False)
    backend: str = "torch"
    device: str = "cpu"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "weights_sha256": self.weights_hash,
            "preprocess": self.preprocess.to_dict(),
            "bf16": self.bf16,
            "flip_average": self.flip_average,
            "backend": self.backend,
            "device": self.device,
            **self.extra,
        }

    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def embed_batch(self, batch_uint8: torch.Tensor) -> np.ndarray:
        """uint8 NCHW (already resized/cropped) -> L2-normalised float32 (N, dim)."""
        if self.runner is not None:
            # the runtimes in chunks of RUNNER_BATCH: about as fast per image as batches of 32
            # on a CPU, and ~340 MB less peak memory (activations at 260 px)
            parts = []
            for start in range(0, len(batch_uint8), RUNNER_BATCH):
                chunk = self.preprocess.normalise(batch_uint8[start : start + RUNNER_BATCH])
                arr = chunk.numpy()
                part = self.runner(arr)
                if self.flip_average:
                    part = part + self.runner(arr[..., ::-1])
                parts.append(part)
            embeddings = np.concatenate(parts)
            norms = np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
            return (embeddings / norms).astype(np.float32, copy=False)
        if self.device != "cpu":
            return self._embed_cuda(batch_uint8)
        x = self.preprocess.normalise(batch_uint8)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.bf16 and next(self.model.parameters()).dtype == torch.bfloat16:
            x = x.to(torch.bfloat16)  # a model converted to bf16 whole takes bf16 input
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self._forward(x).float()
            if self.flip_average:
                out = out + self._forward(torch.flip(x, dims=[3])).float()
        out = F.normalize(out, dim=1)
        return out.numpy().astype(np.float32, copy=False)

    def _embed_cuda(self, batch_uint8: torch.Tensor) -> np.ndarray:
        """GPU: uint8 batch copied from pinned memory (asynchronously), normalised on the GPU,
        run under fp16 autocast (tensor cores; closer to fp32 than bf16)."""
        x = batch_uint8.pin_memory().to(self.device, non_blocking=True)
        mean = torch.tensor(self.preprocess.mean, device=self.device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.preprocess.std, device=self.device).view(1, 3, 1, 1) * 255.0
        x = (x.float() - mean) / std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16):
            out = self._forward(x).float()
            if self.flip_average:
                out = out + self._forward(torch.flip(x, dims=[3])).float()
        return F.normalize(out, dim=1).cpu().numpy().astype(np.float32, copy=False)

    def embed_images(self, images: list[Image.Image], batch_size: int = 32) -> np.ndarray:
        """PIL RGB images -> (N, dim) L2-normalised vectors."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        resize = self.preprocess.to_uint8
        step = min(batch_size, RUNNER_BATCH) if self.runner is not None else batch_size
        # resizing releases the GIL: the pool resizes the next chunk while the network runs on
        # this one (a batch at a time, it had left the network waiting ~5 %), never more than
        # two chunks ahead, so a long list (face crops, enlarged) is not all held at once
        with ThreadPoolExecutor(max_workers=min(default_threads(), len(images))) as pool:
            queued = deque(pool.submit(resize, im) for im in images[: 2 * step])
            following = iter(images[2 * step :])
            try:
                for start in range(0, len(images), step):
                    n = min(step, len(images) - start)
                    batch = torch.stack([queued.popleft().result() for _ in range(n)])
                    queued.extend(pool.submit(resize, im) for im in itertools.islice(following, n))
                    chunks.append(self.embed_batch(batch))
            finally:
                for f in queued:  # after an error: no resizing left to wait for
                    f.cancel()
        return np.concatenate(chunks)


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)))
