"""The offline default encoder (artsim.encoders.efficientnet): EfficientNet-Lite2 with its
BatchNorms folded and its padding simplified, outputs unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from artsim.encoders import load_encoder
from tests.images_factory import gradient


@pytest.mark.slow
def test_efficientnet_default_is_normalised_and_deterministic():
    enc = load_encoder("efficientnet-lite2")
    ims = [gradient(300, 200, i) for i in range(4)]
    a, b = enc.embed_images(ims), enc.embed_images(ims[::-1])[::-1]
    assert a.shape == (4, 1400)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.allclose(a, b, atol=1e-3)  # batch order does not change a vector


def _tiny_net():
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    model = EfficientNet.from_name("efficientnet-lite0").eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so folding has work to do
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


def test_folding_batchnorms_and_simplifying_padding_keep_the_outputs():
    from artsim.encoders.efficientnet import fold_batchnorms, simplify_padding

    model = _tiny_net()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        before = model.extract_features(x)
    fold_batchnorms(model)
    simplify_padding(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.inference_mode():
        after = model.extract_features(x)
    assert torch.allclose(before, after, atol=1e-4)


def test_last_block_at_stride_finds_the_mid_level_features():
    from artsim.encoders.efficientnet import last_block_at_stride

    model = _tiny_net()
    i16, c16 = last_block_at_stride(model, 16)
    i32, _ = last_block_at_stride(model, 32)
    assert 0 <= i16 < i32 == len(model._blocks) - 1 and c16 > 0
    assert last_block_at_stride(model, 1000) == (-1, 0)


def test_an_unknown_pooling_is_refused():
    from artsim.encoders.efficientnet import load_efficientnet_lite2

    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        load_efficientnet_lite2(pooling="max")


def test_the_input_size_is_a_choice_recorded_in_the_preprocessing():
    from artsim.encoders import recorded_size
    from artsim.encoders.efficientnet import DEFAULT_SIZE, load_efficientnet_lite2
    from artsim.errors import ArtsimError

    enc = load_encoder("efficientnet-lite2", backend="torch", bf16=False)
    assert enc.preprocess.crop == enc.preprocess.resize == DEFAULT_SIZE == 224
    # no size and the default size are one network in memory, not two
    assert load_encoder("efficientnet-lite2", backend="torch", bf16=False, size=224) is enc
    at_260 = load_encoder("efficientnet-lite2", backend="torch", bf16=False, size=260)
    ims = [gradient(300, 200, i) for i in range(2)]
    assert at_260.preprocess.to_uint8(ims[0]).shape == (3, 260, 260)
    a, b = enc.embed_images(ims), at_260.embed_images(ims)
    assert a.shape == b.shape == (2, 1400)  # same dims, other vectors: never mixed
    assert (a * b).sum(axis=1).max() < 0.9999
    for size in (64, 1024):
        with pytest.raises(ArtsimError, match=f"input size {size} px is outside 128-512"):
            load_efficientnet_lite2(size=size)
    # what a catalog's manifest says decides the size it is reopened at
    model = {"name": "efficientnet-lite2", "preprocess": enc.describe()["preprocess"]}
    assert recorded_size(model) == 224
    assert recorded_size({**model, "preprocess": at_260.describe()["preprocess"]}) == 260
    with pytest.raises(ArtsimError, match="does not record efficientnet-lite2's input size"):
        recorded_size({"name": "efficientnet-lite2"})
    assert recorded_size({"name": "dinov2-small", "preprocess": {"crop": 224}}) is None
