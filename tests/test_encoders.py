"""The encoder registry (artsim.encoders): the models it lists and where their weights come from.
Each encoder family has its own test module (test_efficientnet.py, test_hf.py, test_backends.py)."""

from __future__ import annotations

import pytest

from artsim.encoders import MODELS, get_spec, weights_available
from artsim.errors import ArtsimError


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
