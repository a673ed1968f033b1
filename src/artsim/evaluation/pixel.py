"""The prototype's pixel-metric baseline: SSIM between a query and what the engine returned.

SSIM is computed on grey images squashed to a common ``size`` x ``size`` (aspect ratio is
not kept: SSIM needs equal shapes, and squashing keeps the whole picture in view).
``ssim_topk_vs_random`` compares the mean SSIM of the top-k results with that of k random
collection images: a retrieval engine that finds structurally similar paintings should
beat random, though SSIM ignores content, so this is a sanity check, not a quality measure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from artsim.errors import ArtsimError
from artsim.images import load_rgb

try:
    from skimage.metrics import structural_similarity
except ImportError as exc:  # an extra: only the evaluation's SSIM baseline needs it
    raise ArtsimError(
        "artsim.evaluation.pixel needs scikit-image, which is not installed; "
        "run: pip install 'artsim[eval]'"
    ) from exc

ImageLike = Image.Image | str | Path


def _grey(item: ImageLike, size: int, root: Path | None) -> np.ndarray:
    """A size x size float grey array in [0, 1] from an image or a path (relative to root)."""
    if isinstance(item, Image.Image):
        im = item
        if max(im.size) > 2 * size:
            # the same pre-reduction load_rgb(max_side=size) applies, so that an image and
            # its file give the same score
            im = im.copy()
            im.thumbnail((2 * size, 2 * size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    else:
        path = Path(item)
        if root is not None and not path.is_absolute():
            path = root / path
        im = load_rgb(path, max_side=size)
    grey = im.convert("L").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.float64) / 255.0


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, data_range=1.0))


def ssim(a: ImageLike, b: ImageLike, *, size: int = 256, root: str | Path | None = None) -> float:
    """SSIM of two images (or paths) as grey ``size`` x ``size`` arrays; 1.0 for identical."""
    base = None if root is None else Path(root)
    return _ssim(_grey(a, size, base), _grey(b, size, base))


def mean_ssim(
    pairs_of_images: Iterable[tuple[ImageLike, ImageLike]],
    size: int = 256,
    *,
    root: str | Path | None = None,
) -> float:
    """Mean SSIM over pairs of images or paths (paths relative to ``root`` if given).

    Raises ValueError when there are no pairs (a mean over nothing is undefined).
    """
    base = None if root is None else Path(root)
    cache: dict[str, np.ndarray] = {}

    def grey(item: ImageLike) -> np.ndarray:
        if isinstance(item, Image.Image):
            return _grey(item, size, base)
        key = str(item)
        if key not in cache:
            cache[key] = _grey(item, size, base)
        return cache[key]

    values = [_ssim(grey(a), grey(b)) for a, b in pairs_of_images]
    if not values:
        raise ValueError("mean_ssim needs at least one pair of images")
    return float(np.mean(values))


def ssim_topk_vs_random(
    query_paths: Sequence[str | Path],
    result_paths_per_query: Sequence[Sequence[str | Path]] | Mapping[str, Sequence[str | Path]],
    all_paths: Sequence[str | Path],
    rng: np.random.Generator,
    k: int = 5,
    *,
    size: int = 256,
    root: str | Path | None = None,
) -> dict[str, float | int | None]:
    """Mean SSIM of each query with its top-k results, and with k random collection images.

    ``result_paths_per_query`` is aligned with ``query_paths`` (a list of lists) or keyed by
    query path. The query itself is never used as a result or as a random pick. Random
    picks are drawn without replacement from ``all_paths`` minus the query, with ``rng``.
    Returns {"topk": mean, "random": mean, "topk_pairs": n, "random_pairs": n}; a mean is
    None when it had no pairs (e.g. every result list was empty).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if isinstance(result_paths_per_query, Mapping):
        results = [list(result_paths_per_query.get(str(q), [])) for q in query_paths]
    else:
        if len(result_paths_per_query) != len(query_paths):
            raise ValueError(
                f"{len(result_paths_per_query)} result lists for {len(query_paths)} queries"
            )
        results = [list(r) for r in result_paths_per_query]
    base = None if root is None else Path(root)
    cache: dict[str, np.ndarray] = {}

    def grey(path: str | Path) -> np.ndarray:
        key = str(path)
        if key not in cache:
            cache[key] = _grey(path, size, base)
        return cache[key]

    pool = [str(p) for p in all_paths]
    topk: list[float] = []
    rand: list[float] = []
    for query, found in zip(query_paths, results, strict=True):
        q = str(query)
        hits = [str(p) for p in found if str(p) != q][:k]
        topk.extend(_ssim(grey(q), grey(p)) for p in hits)
        others = [p for p in pool if p != q]
        if others:
            picks = rng.choice(len(others), size=min(k, len(others)), replace=False)
            rand.extend(_ssim(grey(q), grey(others[i])) for i in picks)
    return {
        "topk": float(np.mean(topk)) if topk else None,
        "random": float(np.mean(rand)) if rand else None,
        "topk_pairs": len(topk),
        "random_pairs": len(rand),
    }
