"""Hugging Face encoders (artsim.encoders.hf): real loading code exercised with tiny randomly
initialised models that the tests build and save; preprocessing read from the saved processor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from artsim.encoders import load_encoder
from artsim.errors import ModelUnavailableError
from tests.images_factory import gradient


def _save_tiny(name: str, folder):
    """Build and save a tiny random model of the same family as `name`."""
    from transformers import (
        BitImageProcessor,
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        ConvNextConfig,
        ConvNextImageProcessor,
        ConvNextModel,
        Dinov2Config,
        Dinov2Model,
        ViTConfig,
        ViTImageProcessor,
        ViTModel,
    )

    torch.manual_seed(0)
    if name.startswith("dinov2"):
        model = Dinov2Model(
            Dinov2Config(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
                image_size=56,
                patch_size=14,
            )
        )
        proc = BitImageProcessor(
            size={"shortest_edge": 64},
            crop_size={"height": 56, "width": 56},
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        )
    elif name == "dino-vits16":
        model = ViTModel(
            ViTConfig(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
                image_size=64,
                patch_size=16,
            ),
            add_pooling_layer=False,
        )
        proc = ViTImageProcessor(
            size={"height": 64, "width": 64},
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        )
    elif name == "convnext-base":
        model = ConvNextModel(
            ConvNextConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_channels=3)
        )
        proc = ConvNextImageProcessor(size={"shortest_edge": 64}, crop_pct=0.875)
    else:
        cfg = CLIPConfig(
            text_config={
                "hidden_size": 16,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 32,
                "vocab_size": 100,
            },
            vision_config={
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "image_size": 64,
                "patch_size": 16,
            },
            projection_dim=24,
        )
        model = CLIPModel(cfg)
        proc = CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})
    model.save_pretrained(folder)
    proc.save_pretrained(folder)
    return model


@pytest.mark.parametrize("name", ["dinov2-small", "dino-vits16", "convnext-base", "clip-vit-b32"])
def test_hub_model_loads_from_local_folder(tmp_path, name):
    model = _save_tiny(name, tmp_path)
    enc = load_encoder(name, model_path=str(tmp_path), bf16=False)
    # preprocessing comes from the saved processor config, not a blanket 224 squash
    assert enc.preprocess.crop in (56, 64)
    ims = [gradient(90, 70, i) for i in range(3)]
    vecs = enc.embed_images(ims)
    assert vecs.shape == (3, enc.dim) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # the vectors are the model's: compare with a direct forward pass
    batch = torch.stack([enc.preprocess.to_uint8(im) for im in ims])
    with torch.no_grad():
        x = enc.preprocess.normalise(batch)
        if name == "clip-vit-b32":
            ref = model.get_image_features(pixel_values=x)
            ref = getattr(ref, "pooler_output", ref)
        elif name == "convnext-base":
            ref = model(pixel_values=x).pooler_output
        else:
            ref = model(pixel_values=x).last_hidden_state[:, 0]
    ref = torch.nn.functional.normalize(ref, dim=1).numpy()
    assert np.allclose(vecs, ref, atol=1e-4)


def test_missing_weights_fail_fast_with_remedy(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    with pytest.raises(ModelUnavailableError) as exc:
        load_encoder.__wrapped__("dinov2-small", bf16=False)
    msg = str(exc.value)
    assert "dinov2-small" in msg and "--model-path" in msg and "facebook/dinov2-small" in msg


def test_model_path_without_config(tmp_path):
    with pytest.raises(ModelUnavailableError, match=r"config\.json"):
        load_encoder.__wrapped__("dinov2-small", model_path=str(tmp_path), bf16=False)


class _Processor:
    def __init__(self, **cfg) -> None:
        self.cfg = cfg

    def to_dict(self) -> dict:
        return self.cfg


def test_preprocess_is_read_from_the_processor_config():
    from artsim.encoders.hf import preprocess_from_processor

    vit = preprocess_from_processor(
        _Processor(size={"height": 224, "width": 224}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    )
    assert (vit.resize, vit.crop, vit.mean, vit.interpolation) == (224, 224, (0.5,) * 3, "bicubic")
    dino = preprocess_from_processor(
        _Processor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, resample=2)
    )
    assert (dino.resize, dino.crop, dino.interpolation) == (256, 224, "bilinear")
    assert dino.mean == (0.485, 0.456, 0.406)  # ImageNet statistics by default
    # ConvNeXt below 384 px: shortest_edge / crop_pct, then a crop of shortest_edge
    convnext = preprocess_from_processor(_Processor(size={"shortest_edge": 224}, crop_pct=0.875))
    assert (convnext.resize, convnext.crop) == (256, 224)
    no_crop = preprocess_from_processor(
        _Processor(size=224, crop_size={"height": 200}, do_center_crop=False)
    )
    assert (no_crop.resize, no_crop.crop) == (224, 224)
