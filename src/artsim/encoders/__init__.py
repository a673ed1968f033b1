"""Whole-image encoders behind one registry.

`load_encoder(name)` returns a cached, ready Encoder; `list_models()` says which are usable offline.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from artsim.encoders.base import (
    Encoder,
    Preprocess,
    cpu_supports_bf16,
    default_threads,
)
from artsim.errors import ArtsimError

DEFAULT_MODEL = "efficientnet-lite2"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    dim: int
    library: str
    hub_id: str | None
    kind: str
    description: str


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "efficientnet-lite2",
            1400,
            "efficientnet-lite-pytorch",
            None,
            "gem+mid",
            "EfficientNet-Lite2, ImageNet; GeM of the last map + mean of the stride-16 stage. On PyPI.",
        ),
        ModelSpec(
            "dinov2-small",
            384,
            "transformers",
            "facebook/dinov2-small",
            "cls",
            "DINOv2 ViT-S/14 self-supervised; CLS token.",
        ),
        ModelSpec(
            "dinov2-base",
            768,
            "transformers",
            "facebook/dinov2-base",
            "cls",
            "DINOv2 ViT-B/14 self-supervised; CLS token.",
        ),
        ModelSpec(
            "dino-vits16",
            384,
            "transformers",
            "facebook/dino-vits16",
            "cls",
            "DINO ViT-S/16 self-supervised; CLS token.",
        ),
        ModelSpec(
            "convnext-base",
            1024,
            "transformers",
            "facebook/convnext-base-224-22k",
            "pooler",
            "ConvNeXt-Base ImageNet-22k; pooled output.",
        ),
        ModelSpec(
            "clip-vit-b32",
            512,
            "transformers",
            "openai/clip-vit-base-patch32",
            "clip",
            "CLIP ViT-B/32 image tower; projected embedding.",
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ArtsimError(
            f"unknown model {name!r}; choose one of: {', '.join(MODELS)} (see `artsim models`)"
        ) from None


def weights_available(name: str) -> bool:
    """Whether the model can be loaded without network."""
    spec = get_spec(name)
    if spec.library == "efficientnet-lite-pytorch":
        from artsim.encoders.efficientnet import weights_path

        path = weights_path()
        return path is not None and Path(path).is_file()
    assert spec.hub_id is not None, name  # every spec but EfficientNet's names its Hub repo
    try:
        from huggingface_hub import try_to_load_from_cache

        return any(
            isinstance(try_to_load_from_cache(spec.hub_id, f), str)
            for f in ("model.safetensors", "pytorch_model.bin")
        )
    except Exception:
        return False


def _pooling(spec: ModelSpec, pooling: str | None) -> str | None:
    """The pooling a model is built with: ``pooling``, else EfficientNet's default (its
    spec's kind, "gem+mid"); other models have one."""
    return pooling or (spec.kind if spec.library == "efficientnet-lite-pytorch" else None)


def takes_size(name: str) -> bool:
    """Whether the model's input size is a choice (EfficientNet-Lite2's); the transformers
    models keep their processor's."""
    return get_spec(name).library == "efficientnet-lite-pytorch"


def recorded_size(model: dict) -> int | None:
    """The input size a catalog's manifest records for its model (``model["preprocess"]``),
    for `load_encoder(size=...)`; None for a model without the choice."""
    if model.get("name") not in MODELS or not takes_size(model["name"]):
        return None  # an unknown model: load_encoder names the problem
    crop = (model.get("preprocess") or {}).get("crop")
    if not isinstance(crop, int):
        raise ArtsimError(
            f"the catalog's manifest does not record {model['name']}'s input size "
            "(model.preprocess.crop); run `artsim check CATALOG --repair` to rebuild it"
        )
    return crop


def _build(
    name: str,
    spec: ModelSpec,
    model_path: str | None,
    pooling: str | None,
    bf16: bool,
    size: int | None = None,
) -> Encoder:
    if spec.library == "efficientnet-lite-pytorch":
        from artsim.encoders.efficientnet import DEFAULT_SIZE, load_efficientnet_lite2

        return load_efficientnet_lite2(
            pooling=pooling or spec.kind, bf16=bf16, size=size or DEFAULT_SIZE
        )
    if size is not None:
        raise ArtsimError(
            f"{name}: its input size is its processor's; only efficientnet-lite2 takes a size"
        )
    from artsim.encoders.hf import load_hf_encoder

    assert spec.hub_id is not None, name  # every spec but EfficientNet's names its Hub repo
    return load_hf_encoder(name, spec.hub_id, spec.kind, model_path=model_path, bf16=bf16)


def load_encoder(
    name: str = DEFAULT_MODEL,
    *,
    model_path: str | None = None,
    bf16: bool | None = None,
    pooling: str | None = None,
    flip_average: bool = False,
    backend: str | None = "auto",
    device: str | None = "auto",
    size: int | None = None,
) -> Encoder:
    """Load (once per process) the named encoder; the arguments: `_load_encoder`.

    The cache sees every argument in one fixed form, the default size filled in: an
    lru_cache keys on the arguments as passed, so ``load_encoder()`` and
    ``load_encoder(size=224)`` would otherwise hold two copies of one network."""
    return _cached_encoder(
        name, model_path, bf16, pooling, flip_average, backend, device, _size_or_default(name, size)
    )


def _size_or_default(name: str, size: int | None) -> int | None:
    if size is None and takes_size(name):
        from artsim.encoders.efficientnet import DEFAULT_SIZE

        return DEFAULT_SIZE
    return size


def _load_encoder(
    name: str = DEFAULT_MODEL,
    model_path: str | None = None,
    bf16: bool | None = None,
    pooling: str | None = None,
    flip_average: bool = False,
    backend: str | None = "auto",
    device: str | None = "auto",
    size: int | None = None,
) -> Encoder:
    """Load the named encoder, uncached (`load_encoder` caches it).

    size: the network's input side in pixels (efficientnet-lite2 only; None: its default,
    224; a catalog passes the size it was made with, `recorded_size`).

    backend: auto | torch | onnx | openvino | openvino-bf16 (artsim.encoders.backends);
    device: auto | cpu | cuda. bf16=None means: where the CPU has native bf16 (AMX or
    AVX512-BF16), backend auto takes PyTorch bf16, ONNX Runtime fp32 or OpenVINO bf16,
    whichever this CPU was measured to run fastest (`backends.measured_cpu_backend`, once per
    machine), and backend torch runs PyTorch in bf16; explicit bf16=True forces PyTorch bf16
    on the CPU, False forbids it (and auto's measurement)."""
    from artsim.encoders.backends import (
        EXPORTABLE,
        attach_backend,
        measured_cpu_backend,
        resolve_backend,
        resolve_device,
    )

    spec = get_spec(name)
    size = _size_or_default(name, size)
    torch.set_num_threads(default_threads())
    where = resolve_device(device)
    if where == "cuda":
        use_bf16 = False  # the GPU path uses fp16 autocast on an fp32 model
    elif bf16 is None:
        # native bf16 (AMX, or AVX512-BF16 as on AMD Zen 4 and 5): whichever of PyTorch bf16,
        # ONNX Runtime fp32 and OpenVINO bf16 this CPU runs fastest, measured once; elsewhere
        # ONNX Runtime
        use_bf16 = cpu_supports_bf16() and backend in (None, "auto", "torch")
        if use_bf16 and backend in (None, "auto") and name in EXPORTABLE:
            backend = measured_cpu_backend(
                name,
                lambda b: _build(name, spec, model_path, pooling, b, size),
                default_threads(),
                # one measurement for the default pooling, named or not
                pooling=_pooling(spec, pooling),
                size=size,
            )
            use_bf16 = backend == "torch"
    else:
        use_bf16 = bf16
    chosen = resolve_backend(backend, model=name, device=where, bf16=use_bf16)
    if chosen != "torch":
        use_bf16 = False  # the runtimes are checked against PyTorch fp32
    enc = _build(name, spec, model_path, pooling, use_bf16, size)
    enc.flip_average = flip_average
    if where == "cuda":
        enc.model = enc.model.to(where)
        enc.device = where
    else:
        enc.backend = attach_backend(enc, chosen, default_threads())
        if enc.backend != chosen and bf16 is None and cpu_supports_bf16():
            # the runtime fell back to PyTorch: in bf16, as PyTorch runs on such a CPU
            enc = _build(name, spec, model_path, pooling, True, size)
            enc.flip_average = flip_average
    return enc


_cached_encoder = functools.lru_cache(maxsize=4)(_load_encoder)
# the controls of an lru_cache'd function: tests clear the cache, benchmarks load uncached
load_encoder.cache_clear = _cached_encoder.cache_clear  # type: ignore[attr-defined]
load_encoder.cache_info = _cached_encoder.cache_info  # type: ignore[attr-defined]
load_encoder.__wrapped__ = _load_encoder  # type: ignore[attr-defined]

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "Encoder",
    "ModelSpec",
    "Preprocess",
    "get_spec",
    "load_encoder",
    "recorded_size",
    "takes_size",
    "weights_available",
]
