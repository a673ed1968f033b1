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
