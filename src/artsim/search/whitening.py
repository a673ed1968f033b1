"""PCA whitening learned on a catalog's own global vectors (Jégou & Chum, 2012).

Centering removes the direction every painting shares (varnish, craquelure, frame), and
dividing by the component scales stops a few dominant directions from deciding every
ranking. A power below 1 (shrinkage) keeps noisy low-variance components from taking over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from artsim.catalog.index import VectorIndex, build_index

if TYPE_CHECKING:
    from artsim.catalog import Catalog


@dataclass(frozen=True, slots=True)
class Whitening:
    mean: np.ndarray  # (d,)
    projection: np.ndarray  # (d, r)

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = (np.atleast_2d(x) - self.mean) @ self.projection
        return (y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def fit_whitening(
    vectors: np.ndarray, *, dim: int | None = None, power: float = 0.5, eps: float = 1e-6
) -> Whitening:
    """Learn mean and projection. dim: keep the top components (default: min(n-1, d));
    power: eigenvalue exponent (1 = full whitening, 0 = plain PCA rotation)."""
    x = np.asarray(vectors, dtype=np.float64)
    n, d = x.shape
    if n < 3:
        raise ValueError("whitening needs at least 3 vectors")
    mean = x.mean(axis=0)
    xc = x - mean
    cov = xc.T @ xc / (n - 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    r = min(dim or d, n - 1, d)
    scale = (np.maximum(evals[:r], eps)) ** (-power / 2.0)
    return Whitening(mean.astype(np.float32), (evecs[:, :r] * scale).astype(np.float32))


def whitened_index(catalog: Catalog) -> tuple[Whitening, VectorIndex]:
    """PCA whitening fitted on a catalog's global vectors, and an index over the whitened
    vectors; computed once per opened catalog (the catalog drops it when it reloads)."""
    if catalog._whitened is None:
        vectors = catalog.aspect("global").vectors["global"]
        wh = fit_whitening(vectors)
        catalog._whitened = (wh, build_index(wh.apply(vectors)))
    return catalog._whitened
