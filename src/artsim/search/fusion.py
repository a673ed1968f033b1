"""Fused search: overall look, face and pose combined.

Each aspect's raw cosine scores live on different scales (faces of strangers still score
0.8 with dlib; poses of any standing figure score high), so they are calibrated per query
as z-scores against that aspect's score distribution over the whole catalog, then combined
with weights. A painting lacking an aspect (a landscape has no face) gets z = 0 for it:
no evidence either way, rather than a zero similarity that would punish it.
Aspects the query itself lacks (no face found) are left out and the weights renormalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from artsim.errors import ArtsimError
from artsim.records import SearchResult
from artsim.search import Query, to_result

if TYPE_CHECKING:
    from artsim.catalog import AspectData, Catalog

# chosen on the ground truth (benchmarks/make_evaluation.py, docs/evaluation.md): face=1 gave
# the best same-sitter hit@5 (0.750 against 0.527 for global alone); adding pose lowered it
# (0.736 at 0.25), so pose is off by default and can be switched on per query with weights
DEFAULT_WEIGHTS = {"global": 1.0, "face": 1.0, "pose": 0.0}


@dataclass(slots=True)
class AspectScores:
    """Best score per painting for one aspect (NaN where the painting lacks the aspect)."""

    aspect: str
    best: np.ndarray  # (n_items,) raw cosine, NaN = missing
    best_row: np.ndarray  # (n_items,) row giving that score, -1 = missing
    z: np.ndarray  # calibrated, 0 where missing


def _calibrate(aspect: str, best: np.ndarray, best_row: np.ndarray) -> AspectScores:
    have = ~np.isnan(best)
    z = np.zeros_like(best)
    if have.sum() >= 2:
        mu, sd = float(best[have].mean()), float(best[have].std())
        z[have] = (best[have] - mu) / (sd if sd > 1e-6 else 1.0)
    return AspectScores(aspect, best, best_row, z)


def _best_per_item(
    n_items: int, row_pos: np.ndarray | None, sims: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    assert row_pos is not None  # set by Catalog.aspect, which loaded this aspect's data
    best = np.full(n_items, -np.inf, dtype=np.float32)
    np.maximum.at(best, row_pos, sims)
    best_row = np.full(n_items, -1, dtype=np.int64)
    # the row achieving each item's best (last one wins on exact ties, which is harmless)
    hit = sims >= best[row_pos]
    best_row[row_pos[hit]] = np.flatnonzero(hit)
    best[np.isneginf(best)] = np.nan
    return best, best_row


def global_scores(catalog: Catalog, query: Query) -> AspectScores:
    from artsim.search.global_ import query_vector

    data = catalog.aspect("global")
    sims = data.vectors["global"] @ query_vector(catalog, query)
    return _calibrate("global", *_best_per_item(len(catalog), data.row_pos, sims))


def _not_analysed(catalog: Catalog, query: Query, aspect: str) -> bool:
    """A catalog painting never analysed for this aspect: fuse without it rather than run
    a detector at query time (the catalog simply lacks that aspect for it)."""
    return query.item_id is not None and query.item_id not in catalog.aspect(aspect).done


def face_scores(
    catalog: Catalog, query: Query, face: int | None, box: tuple[float, float, float, float] | None
) -> AspectScores | None:
    from artsim.search.faces import choose_face

    if box is None and _not_analysed(catalog, query, "face"):
        return None
    try:
        chosen = choose_face(catalog, query, face, box, look=False)
    except ArtsimError:
        return None  # the query has no face: fuse the other aspects
    data = catalog.aspect("face")
    if len(data) == 0:
        return None
    sims = face_similarities(data, chosen)
    return _calibrate("face", *_best_per_item(len(catalog), data.row_pos, sims))


def face_similarities(data: AspectData, chosen: dict) -> np.ndarray:
    """The query face against every indexed face: identity (dlib) cosine. Look-alike mixes were
    measured worse for fusion (benchmarks/eval_face_score_mix.py)."""
    return data.vectors["identity"] @ chosen["identity"]


def pose_scores(
    catalog: Catalog, query: Query, figure: int | None, mirror: bool
) -> AspectScores | None:
    from artsim.encoders.poses import query_descriptors
    from artsim.search.poses import choose_pose

    if _not_analysed(catalog, query, "pose"):
        return None
    try:
        pose = choose_pose(catalog, query, figure)
    except ArtsimError:
        return None
    data = catalog.aspect("pose")
    if len(data) == 0:
        return None
    sims = (data.vectors["pose"] @ query_descriptors(pose, mirror).T).max(axis=1)
    return _calibrate("pose", *_best_per_item(len(catalog), data.row_pos, sims))


def fused_scores(
    catalog: Catalog,
    query: Query,
    weights: dict[str, float],
    *,
    face: int | None = None,
    box: tuple[float, float, float, float] | None = None,
    figure: int | None = None,
    mirror: bool = False,
) -> tuple[np.ndarray, dict[str, AspectScores]]:
    have = set(catalog.aspect_names())
    if query.item_id is None:
        # a query image: decode it and run every analysis the fusion uses once, up front
        need = {a for a in ("global", "face", "pose") if weights.get(a, 0) > 0}
        need &= have | {"global"}
        if need:
            query.analyse(catalog, need, look=False, face_box=box if "face" in need else None)
    parts: dict[str, AspectScores] = {}
    if weights.get("global", 0) > 0:
        parts["global"] = global_scores(catalog, query)
    if weights.get("face", 0) > 0 and "face" in have:
        fs = face_scores(catalog, query, face, box)
        if fs is not None:
            parts["face"] = fs
    if weights.get("pose", 0) > 0 and "pose" in have:
        ps = pose_scores(catalog, query, figure, mirror)
        if ps is not None:
            parts["pose"] = ps
    if not parts:
        raise ArtsimError(
            "fused search has nothing to combine: all weights are 0 or the aspects are missing"
        )
    total = sum(weights[a] for a in parts)
    fused = sum(weights[a] * s.z for a, s in parts.items()) / total
    assert isinstance(fused, np.ndarray)  # parts is not empty: a sum of arrays
    return fused, parts


def search_fused(
    catalog: Catalog,
    query: Query,
    *,
    k: int = 10,
    mask: np.ndarray | None = None,
    exclude: str | None = None,
    weights: dict[str, float] | None = None,
    face: int | None = None,
    box: tuple[float, float, float, float] | None = None,
    figure: int | None = None,
    mirror: bool = False,
) -> list[SearchResult]:
    w = dict(DEFAULT_WEIGHTS)
    if weights:
        from artsim.search.options import SearchOptions

        w.update(SearchOptions.parse(aspect="fused", weights=weights).weights_dict or {})
    fused, parts = fused_scores(catalog, query, w, face=face, box=box, figure=figure, mirror=mirror)
    allowed = np.ones(len(catalog), dtype=bool) if mask is None else mask.copy()
    if exclude is not None and exclude in catalog:
        allowed[catalog._pos[exclude]] = False
    cand = np.flatnonzero(allowed)
    if cand.size == 0:
        return []
    kk = min(k, cand.size)
    top = cand[np.argpartition(-fused[cand], kk - 1)[:kk]]
    top = top[np.argsort(-fused[top], kind="stable")]
    results = []
    for pos in top:
        item_id = catalog.ids[pos]
        raw = {a: float(s.best[pos]) for a, s in parts.items() if not np.isnan(s.best[pos])}
        extra: dict = {"scores": raw}
        if "face" in parts and parts["face"].best_row[pos] >= 0:
            r = int(parts["face"].best_row[pos])
            fdata = catalog.aspect("face")
            extra.update(box=tuple(fdata.info[r]["box"]), face_id=fdata.row_ids[r])
        if "pose" in parts and parts["pose"].best_row[pos] >= 0:
            r = int(parts["pose"].best_row[pos])
            pdata = catalog.aspect("pose")
            extra.update(pose_id=pdata.row_ids[r], keypoints=pdata.info[r]["keypoints"])
            extra.setdefault("box", tuple(pdata.info[r]["box"]))
        results.append(to_result(catalog, item_id, float(fused[pos]), "fused", **extra))
    return results
