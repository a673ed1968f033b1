"""Hugging Face transformers encoders (DINOv2, DINO, ConvNeXt, CLIP): by hub id or local folder.

Weights cannot be downloaded on an offline machine, so loading tries the local folder
(--model-path) or the local hub cache first, and fails at once with a remedy otherwise.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import torch

from artsim.encoders.base import Encoder, Preprocess, file_sha256
from artsim.errors import ModelUnavailableError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class HFEncoder(Encoder):
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        kind = self.extra["kind"]
        model: Any = self.model  # a transformers model: its outputs' types vary by class
        if kind == "clip":
            feats = model.get_image_features(pixel_values=x)
            # transformers >= 5 returns an output object whose pooler_output is projected
            return getattr(feats, "pooler_output", feats)
        out = model(pixel_values=x)
        if kind == "cls":
            return out.last_hidden_state[:, 0]
        return out.pooler_output  # convnext: layer-normed global average


def _hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _remedy(name: str, hub_id: str) -> str:
    return (
        f"{name}: weights for '{hub_id}' are not on this machine and the Hugging Face hub cannot be reached. "
        f"On a machine with network run `huggingface-cli download {hub_id} --local-dir DIR`, copy DIR here "
        f"and pass --model-path DIR (or use the offline default, --model efficientnet-lite2)."
    )


def _rgb(values: Iterable[float]) -> tuple[float, float, float]:
    """A processor's per-channel mean or std (a list in its config) as three floats."""
    r, g, b = (float(v) for v in values)
    return r, g, b


class ImageProcessor(Protocol):
    """What is read of a transformers image processor: its config as a dict."""

    def to_dict(self) -> dict[str, Any]: ...


def preprocess_from_processor(processor: ImageProcessor) -> Preprocess:
    """Translate a transformers image processor config into our Preprocess record."""
    cfg = processor.to_dict()
    size = _as_size(cfg.get("size"))
    crop = _as_size(cfg.get("crop_size")) or size
    resize = int(size.get("shortest_edge") or size.get("height") or 224)
    crop_px = int(crop.get("height") or crop.get("shortest_edge") or resize)
    if not cfg.get("do_center_crop", True):
        crop_px = resize
    # ConvNeXt resizes shortest_edge / crop_pct, then crops shortest_edge (below 384 px)
    crop_pct = cfg.get("crop_pct")
    if crop_pct and "shortest_edge" in size and resize < 384:
        crop_px, resize = resize, int(resize / crop_pct)
    resample = _RESAMPLE_NAMES.get(_as_int(cfg.get("resample", 3)), "bicubic")
    mean = cfg.get("image_mean") or (0.485, 0.456, 0.406)
    std = cfg.get("image_std") or (0.229, 0.224, 0.225)
    return Preprocess(
        resize=resize,
        crop=crop_px,
        mean=_rgb(mean),
        std=_rgb(std),
        interpolation=resample,
    )


_RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}


def _as_int(value) -> int:
    try:
        return int(getattr(value, "value", value))
    except (TypeError, ValueError):
        return 3


def _as_size(value) -> dict:
    if value is None:
        return {}
    if isinstance(value, int):
        return {"shortest_edge": value}
    return {k: v for k, v in dict(value).items() if v is not None}


def _weights_hash(folder: Path) -> str:
    for fname in WEIGHT_FILES:
        if (folder / fname).is_file():
            return file_sha256(folder / fname)
    return "unknown"


def _resolve_local(hub_id: str, model_path: str | None) -> Path | None:
    if model_path:
        folder = Path(model_path)
        if not (folder / "config.json").is_file():
            raise ModelUnavailableError(
                f"{model_path}: not a model folder (no config.json). Save one with "
                f"model.save_pretrained(DIR) and processor.save_pretrained(DIR), or "
                f"`huggingface-cli download {hub_id} --local-dir DIR`."
            )
        return folder
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:
        return None


def load_hf_encoder(
    name: str, hub_id: str, kind: str, *, model_path: str | None = None, bf16: bool = False
) -> HFEncoder:
    """kind: 'cls' (ViT CLS token), 'pooler' (ConvNeXt) or 'clip' (projected image embedding)."""
    try:
        from transformers import AutoImageProcessor, AutoModel, CLIPModel
    except ImportError as exc:  # an extra since a plain install needs only EfficientNet
        raise ModelUnavailableError(
            f"model {name!r} needs the Hugging Face transformers library, which is not "
            "installed; run: pip install 'artsim[hf]'"
        ) from exc

    folder = _resolve_local(hub_id, model_path)
    if folder is None:
        if not _hub_reachable():
            raise ModelUnavailableError(_remedy(name, hub_id))
        from huggingface_hub import snapshot_download

        try:
            folder = Path(snapshot_download(hub_id))
        except Exception as exc:
            raise ModelUnavailableError(f"{_remedy(name, hub_id)} ({exc})") from exc
    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    if kind == "clip":
        model = CLIPModel.from_pretrained(folder, local_files_only=True)
        dim = model.config.projection_dim
    else:
        model = AutoModel.from_pretrained(folder, local_files_only=True)
        cfg = model.config
        dim = getattr(cfg, "hidden_size", None) or cfg.hidden_sizes[-1]
    assert dim is not None, f"{name}: no embedding size in the model config"
    model.eval()
    return HFEncoder(
        name=name,
        dim=int(dim),
        preprocess=preprocess_from_processor(processor),
        weights_hash=_weights_hash(folder),
        model=model,
        bf16=bf16,
        channels_last=False,
        extra={"kind": kind, "source": str(model_path or hub_id)},
    )
