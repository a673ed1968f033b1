"""Encoders: the registry, the offline default, and real loading code for hub models,
exercised with tiny randomly initialised models that the tests build and save."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from artsim.encoders import MODELS, get_spec, load_encoder, weights_available
from artsim.encoders.base import Preprocess, gem
from artsim.errors import ArtsimError, ModelUnavailableError
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


def test_registry_lists_all_models():
    assert {
        "efficientnet-lite2",
        "dinov2-small",
        "dinov2-base",
        "dino-vits16",
        "convnext-base",
        "clip-vit-b32",
    } <= set(MODELS)
    with pytest.raises(ArtsimError, match="unknown model"):
        get_spec("resnet-9000")


def test_default_weights_ship_offline():
    assert weights_available("efficientnet-lite2")


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


def test_gem_between_avg_and_max():
    x = torch.rand(2, 4, 5, 5)
    g = gem(x, p=3.0)
    assert torch.all(g >= x.mean(dim=(2, 3)) - 1e-6) and torch.all(g <= x.amax(dim=(2, 3)) + 1e-6)
    assert torch.allclose(gem(x, p=1.0), x.mean(dim=(2, 3)), atol=1e-6)


def test_whole_view_keeps_the_whole_painting():
    pre = Preprocess(resize=64, crop=64, mean=(0.5,) * 3, std=(0.5,) * 3, view="whole")
    im = gradient(200, 100)
    t = pre.to_uint8(im)
    assert t.shape == (3, 64, 64)
    # left and right edges survive (a centre crop would cut them off)
    left = np.asarray(im)[:, :10].mean()
    assert abs(float(t[:, :, :2].float().mean()) - left) < 25


def test_preprocess_keeps_aspect_then_crops():
    pre = Preprocess(resize=64, crop=56, mean=(0.5,) * 3, std=(0.5,) * 3)
    t = pre.to_uint8(gradient(200, 100))
    assert t.shape == (3, 56, 56) and t.dtype == torch.uint8


@pytest.mark.slow
def test_efficientnet_default_is_normalised_and_deterministic():
    enc = load_encoder("efficientnet-lite2")
    ims = [gradient(300, 200, i) for i in range(4)]
    a, b = enc.embed_images(ims), enc.embed_images(ims[::-1])[::-1]
    assert a.shape == (4, 1400)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.allclose(a, b, atol=1e-3)  # batch order does not change a vector
