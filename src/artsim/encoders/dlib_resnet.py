"""dlib's face-recognition ResNet, read from its `.dat` file and run in PyTorch.

The dlib-bin wheel is built without BLAS, so `dlib.face_recognition_model_v1` spends ~150 ms per
face in its own convolution loops. The same network (same weights, same arithmetic up to float
rounding) runs in a few milliseconds per face on PyTorch's oneDNN kernels. `embed_chips` in
`artsim.encoders.faces` uses this module; a test checks it against dlib on real chips.

Architecture (dlib's `dnn_face_recognition_ex.cpp`; 29 conv layers): input 150x150 RGB,
(x - mean) / 256; conv 7x7/2 (32) + affine + relu; max-pool 3x3/2; residual blocks of two
3x3 convs: 3 at 32 channels, then a down-sampling block and 3 more at 64, down + 2 at 128,
down + 2 at 256, down at 256; global average; fc 128 (no bias).
Batch norm is stored folded into per-channel affine layers. dlib pads only stride-1 convs
(by k // 2) and, where a down-sampling block's two branches differ in size or channels, adds
them over the overlap with zeros elsewhere (`add_prev`).

The `.dat` file is dlib's serialisation of the network: layers from the input outwards, each
a type string ("con_4", "affine_", "fc_2", ...) followed by its parameters. Integers are
dlib-packed (a byte giving the length, high bit = negative, then little-endian bytes), tensors
are (version 2, n, k, nr, nc, then float32 little-endian).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from artsim.errors import ModelUnavailableError

if TYPE_CHECKING:
    import torch

# input_rgb_image_sized<150>'s defaults; the file stores them with dlib's float encoding, and
# these are the values dlib documents (checked against dlib's output in the tests).
INPUT_MEAN_RGB = (122.782, 117.001, 104.298)
INPUT_SCALE = 256.0
INPUT_SIZE = 150


class DlibFormatError(ModelUnavailableError):
    """The file is not the dlib face-recognition network this module knows how to read."""


@dataclass(frozen=True, slots=True)
class ConvParams:
    weight: np.ndarray  # (out, in, kh, kw)
    bias: np.ndarray  # (out,)
    stride: int
    padding: int


@dataclass(frozen=True, slots=True)
class DlibResnetWeights:
    convs: tuple[ConvParams, ...]  # input to output order
    affines: tuple[tuple[np.ndarray, np.ndarray], ...]  # (gamma, beta) after each conv
    fc: np.ndarray  # (128, 256): torch Linear layout


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def int(self) -> int:
        head = self.data[self.pos]
        size, negative = head & 0x0F, bool(head & 0x80)
        raw = self.data[self.pos + 1 : self.pos + 1 + size]
        self.pos += 1 + size
        value = int.from_bytes(raw, "little")
        return -value if negative else value

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"tensor version {version} (expected 2)")
        n, k, nr, nc = self.int(), self.int(), self.int(), self.int()
        count = n * k * nr * nc
        end = self.pos + 4 * count
        if end > len(self.data):
            raise DlibFormatError("tensor runs past the end of the file")
        arr = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos = end
        return arr.astype(np.float32)


def _find(data: bytes, name: bytes, start: int) -> int:
    """Position just after the next serialised string `name`, or -1."""
    token = bytes([1, len(name)]) + name
    at = data.find(token, start)
    return -1 if at < 0 else at + len(token)


def read_weights(path: Path) -> DlibResnetWeights:
    """Parse dlib_face_recognition_resnet_model_v1.dat into arrays."""
    try:
        return _parse(path.read_bytes())
    except (ModelUnavailableError, IndexError, ValueError) as exc:
        raise DlibFormatError(
            f"{path}: not dlib's face-recognition network ({exc}); "
            "reinstall it: pip install --force-reinstall face-recognition-models"
        ) from exc


def _parse(data: bytes) -> DlibResnetWeights:
    convs: list[ConvParams] = []
    affines: list[tuple[np.ndarray, np.ndarray]] = []
    pos = 0
    while (pos := _find(data, b"con_4", pos)) >= 0:
        r = _Reader(data, pos)
        params = r.tensor()
        filters, nr, nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(7))
        if nr != nc or stride_y != stride_x or pad_y != pad_x or filters <= 0:
            raise DlibFormatError(f"unexpected conv shape at byte {pos}")
        in_ch, rest = divmod(params.size - filters, filters * nr * nc)
        if rest:
            raise DlibFormatError(f"conv parameter count {params.size} does not divide")
        split = filters * in_ch * nr * nc
        convs.append(
            ConvParams(
                weight=params[:split].reshape(filters, in_ch, nr, nc),
                bias=params[split:],
                stride=stride_y,
                padding=pad_y,
            )
        )
        pos = r.pos
    pos = 0
    while (pos := _find(data, b"affine_", pos)) >= 0:
        r = _Reader(data, pos)
        params = r.tensor()
        half = params.size // 2
        affines.append((params[:half], params[half:]))
        pos = r.pos
    pos = _find(data, b"fc_2", 0)
    if pos < 0:
        raise DlibFormatError("no fc layer")
    r = _Reader(data, pos)
    outputs, inputs = r.int(), r.int()
    params = r.tensor()
    if params.size != inputs * outputs:
        raise DlibFormatError(f"fc has {params.size} values, expected {inputs}x{outputs}")
    fc = params.reshape(inputs, outputs).T.copy()
    if len(convs) != 29 or len(affines) != 29:
        raise DlibFormatError(
            f"found {len(convs)} conv and {len(affines)} affine layers, expected 29 each"
        )
    return DlibResnetWeights(convs=tuple(convs), affines=tuple(affines), fc=fc)


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: sum over the overlap; the larger extent wins, zeros elsewhere."""
    import torch.nn.functional as F

    c = max(a.shape[1], b.shape[1])
    h = max(a.shape[2], b.shape[2])
    w = max(a.shape[3], b.shape[3])

    def grow(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


def build_model(weights: DlibResnetWeights) -> torch.nn.Module:
    """A torch.nn.Module computing dlib's 128-d descriptor (not normalised) from (n,3,150,150)
    float input already shifted and scaled (see `preprocess`)."""
    import torch
    from torch import nn

    def folded(conv: ConvParams, affine: tuple[np.ndarray, np.ndarray]) -> nn.Conv2d:
        """The conv with its affine (frozen batch norm) folded in."""
        out_ch, in_ch, k, _ = conv.weight.shape
        layer = nn.Conv2d(in_ch, out_ch, k, conv.stride, conv.padding)
        gamma, beta = torch.from_numpy(affine[0]), torch.from_numpy(affine[1])
        assert layer.bias is not None  # Conv2d's bias=True default
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(conv.weight) * gamma[:, None, None, None])
            layer.bias.copy_(torch.from_numpy(conv.bias) * gamma + beta)
        return layer

    units = [folded(c, a) for c, a in zip(weights.convs, weights.affines, strict=True)]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = units[0]
            self.blocks = nn.ModuleList(
                nn.ModuleList([units[i], units[i + 1]]) for i in range(1, len(units), 2)
            )
            self.fc = nn.Linear(weights.fc.shape[1], weights.fc.shape[0], bias=False)
            with torch.no_grad():
                self.fc.weight.copy_(torch.from_numpy(weights.fc))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.stem(x))
            x = nn.functional.max_pool2d(x, 3, 2)
            for pair in self.blocks:
                # each block is ModuleList([conv, conv]) (kept so: its parameter names)
                first, second = cast(tuple[nn.Conv2d, nn.Conv2d], pair)
                y = second(torch.relu(first(x)))
                if first.stride[0] == 1:
                    x = torch.relu(x + y)
                else:
                    x = torch.relu(_add_padded(nn.functional.avg_pool2d(x, 2, 2), y))
            return self.fc(x.mean(dim=(2, 3)))

    return Net().eval()


def preprocess(chips: np.ndarray) -> torch.Tensor:
    """(n, 150, 150, 3) uint8 RGB -> (n, 3, 150, 150) float, as dlib's input layer."""
    import torch

    x = torch.from_numpy(np.array(chips, dtype=np.uint8)).permute(0, 3, 1, 2).float()
    mean = torch.tensor(INPUT_MEAN_RGB).view(1, 3, 1, 1)
    return ((x - mean) / INPUT_SCALE).contiguous(memory_format=torch.channels_last)


@functools.lru_cache(maxsize=2)
def load_model(path: Path) -> torch.nn.Module:
    """The network for `path`, built once per process. Where ONNX Runtime is installed (and
    $ARTSIM_BACKEND is not 'torch') the network also gets an ONNX Runtime runner, exported,
    cached and checked against PyTorch like the whole-image encoders
    (artsim.encoders.backends); `descriptors` uses it."""
    import torch

    model = build_model(read_weights(path)).to(memory_format=torch.channels_last)
    model.artsim_runner = _runner(model, path)
    return model


def _runner(model: torch.nn.Module, path: Path):
    import os
    import warnings

    from artsim.encoders import backends as B

    if os.environ.get("ARTSIM_BACKEND", "auto") == "torch" or not B._installed("onnxruntime"):
        return None
    try:
        from artsim.encoders.base import default_threads, file_sha256

        version = B._runtime_version("onnx")
        key = B.module_key("dlib-face-resnet", file_sha256(path), INPUT_SIZE, version)
        onnx_path = B.cached_module_export(key, lambda: B.export_module_bytes(model, INPUT_SIZE))
        runner = B._onnxruntime_runner(onnx_path, default_threads())
        chips = B.fixed_inputs(INPUT_SIZE, n=2).transpose(0, 2, 3, 1)
        ref = _torch_descriptors(model, chips)
        worst = float(B._cosines(ref, runner(preprocess(chips).numpy())).min())
        if worst < B.CHECK_COSINE:
            raise B.BackendError(f"differs from PyTorch (cosine {worst:.6f})")
    except Exception as exc:  # any failure means: keep PyTorch, say so once
        warnings.warn(
            f"artsim: face network on ONNX Runtime unavailable ({exc}); using PyTorch",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return runner


def _torch_descriptors(model: torch.nn.Module, chips: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model(preprocess(chips)).float().numpy()


def descriptors(model: torch.nn.Module, chips: np.ndarray) -> np.ndarray:
    """Raw 128-d descriptors (float32) of (n, 150, 150, 3) uint8 chips."""
    runner = getattr(model, "artsim_runner", None)
    if runner is not None and len(chips):
        return runner(preprocess(chips).numpy())
    return _torch_descriptors(model, chips)
