from __future__ import annotations

import numpy as np
import pytest

from artsim.search.whitening import fit_whitening


def test_full_whitening_gives_identity_covariance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 8)) @ rng.normal(size=(8, 8)) + 3.0
    wh = fit_whitening(x, power=1.0)
    y = (x - wh.mean) @ wh.projection
    cov = np.cov(y, rowvar=False)
    assert np.allclose(cov, np.eye(8), atol=0.05)
    out = wh.apply(x[:5])
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_dim_reduction_and_errors():
    x = np.random.default_rng(1).normal(size=(50, 16))
    assert fit_whitening(x, dim=4).projection.shape == (16, 4)
    with pytest.raises(ValueError):
        fit_whitening(x[:2])
