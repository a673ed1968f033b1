"""Retrieval metrics over one ranked list, tie-aware, plus a per-query aggregator.

Conventions shared by every metric here:

- ``ranked_ids`` is the result list, best first. An id that appears twice (several faces
  or figures of one painting) counts once, at its first (best) position.
- ``relevant`` is the set of ids that count as correct. An empty set raises ``ValueError``:
  such a query cannot be scored, and the caller counts it as skipped.
- An empty result list scores 0.0 (never NaN).
- Relevant items that were not retrieved sit at rank infinity: they count in the
  denominators of recall and AP but contribute nothing.
- ``k`` must be >= 1. ``precision_at_k`` divides by ``k`` even when fewer than ``k``
  results came back (missing results are not correct results).

Ties. Without ``ranked_scores`` the order given is taken as strict. With ``ranked_scores``
(one per id, in rank order, higher-is-better or lower-is-better but monotone), runs of
adjacent *exactly equal* scores form tie groups, and every metric returns its **expected
value over all orderings of each tie group, each ordering equally likely** (McSherry &
Najork, "Computing information retrieval performance measures efficiently in the presence
of tied scores", ECIR 2008). This is deterministic, does not depend on the arbitrary order
an index breaks ties in, and neither rewards nor punishes a model for ties: a relevant
item tied with 9 others at the top gets recall@1 = 0.1, not 1 (optimistic) or 0
(pessimistic). To treat nearly-equal float scores as tied, round them first
(e.g. ``np.round(scores, 6)``).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class _Group:
    """One tie group: ``start`` results precede it, it holds ``size`` results, ``rel`` relevant."""

    start: int
    size: int
    rel: int
    rel_before: int


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")


def _groups(
    ranked_ids: Sequence[str],
    relevant: Collection[str],
    ranked_scores: Sequence[float] | np.ndarray | None,
) -> tuple[list[_Group], int]:
    """Split the (deduplicated) ranking into tie groups; also return |relevant|."""
    rel_set = set(relevant)
    if not rel_set:
        raise ValueError("relevant set is empty: this query cannot be scored (count it as skipped)")
    if ranked_scores is not None:
        scores = np.asarray(ranked_scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(ranked_ids):
            raise ValueError(
                f"ranked_scores has {len(scores)} values but ranked_ids has {len(ranked_ids)}"
            )
        if np.isnan(scores).any():
            raise ValueError("ranked_scores contains NaN")
        diffs = np.diff(scores)
        if not ((diffs <= 0).all() or (diffs >= 0).all()):
            raise ValueError(
                "ranked_scores must be monotone in rank order (all non-increasing for "
                "similarities or all non-decreasing for distances)"
            )
    else:
        scores = None

    seen: set[str] = set()
    flags: list[bool] = []
    kept_scores: list[float] = []
    for i, item in enumerate(ranked_ids):
        if item in seen:
            continue
        seen.add(item)
        flags.append(item in rel_set)
        if scores is not None:
            kept_scores.append(float(scores[i]))

    groups: list[_Group] = []
    rel_before = 0
    i = 0
    n = len(flags)
    while i < n:
        j = i + 1
        if scores is not None:
            while j < n and kept_scores[j] == kept_scores[i]:
                j += 1
        rel = sum(flags[i:j])
        groups.append(_Group(start=i, size=j - i, rel=rel, rel_before=rel_before))
        rel_before += rel
        i = j
    return groups, len(rel_set)


def _survival(size: int, rel: int, m: int) -> float:
    """P(none of ``rel`` relevant items lands in the first ``m`` of ``size`` shuffled slots).

    Equals C(size - rel, m) / C(size, m), computed as a product to stay in floats.
    """
    if rel == 0 or m <= 0:
        return 1.0
    if m > size - rel:
        return 0.0
    i = np.arange(m, dtype=np.float64)
    return float(np.prod((size - rel - i) / (size - i)))


def _expected_hits(groups: list[_Group], k: int) -> float:
    """Expected number of relevant results in the top k."""
    total = 0.0
    for g in groups:
        if g.start >= k:
            break
        taken = min(g.size, k - g.start)
        total += g.rel if taken == g.size else taken * g.rel / g.size
    return total


def _ap_sum(groups: list[_Group], k: int | None) -> float:
    """Expected sum over ranks j <= k of rel(j) * precision@j (the AP numerator).

    Inside a tie group of n results with r relevant, after ``start`` results holding
    ``rel_before`` relevant: slot j is relevant with probability r/n, and given that, the
    other j-1 slots before it hold (j-1)(r-1)/(n-1) relevant on average (McSherry & Najork).
    """
    total = 0.0
    for g in groups:
        if k is not None and g.start >= k:
            break
        if g.rel == 0:
            continue
        last = g.size if k is None else min(g.size, k - g.start)
        j = np.arange(1, last + 1, dtype=np.float64)
        inside = (j - 1) * (g.rel - 1) / (g.size - 1) if g.size > 1 else np.zeros_like(j)
        prec = (g.rel_before + 1 + inside) / (g.start + j)
        total += float(np.sum(prec)) * g.rel / g.size
    return total


def average_precision(
    ranked_ids: Sequence[str],
    relevant: Collection[str],
    *,
    k: int | None = None,
    ranked_scores: Sequence[float] | np.ndarray | None = None,
) -> float:
    """Average precision of one ranking (expected value over tie orderings when scores are given).

    Without ``k``: sum of precision@rank over the retrieved relevant items, divided by
    |relevant| (unretrieved relevant items contribute 0).

    With ``k`` (AP@k): the same sum restricted to ranks <= k, divided by min(k, |relevant|),
    so a perfect top k scores 1.0 even when more than k items are relevant (the convention
    of e.g. MS MARCO/TREC "AP@k" normalised by the best achievable; not divided by k).
    """
    if k is not None:
        _check_k(k)
    groups, n_rel = _groups(ranked_ids, relevant, ranked_scores)
    denom = n_rel if k is None else min(k, n_rel)
    return _ap_sum(groups, k) / denom


def recall_at_k(
    ranked_ids: Sequence[str],
    relevant: Collection[str],
    k: int,
    *,
    ranked_scores: Sequence[float] | np.ndarray | None = None,
) -> float:
    """Fraction of the relevant items found in the top k (expected over tie orderings)."""
    _check_k(k)
    groups, n_rel = _groups(ranked_ids, relevant, ranked_scores)
    return _expected_hits(groups, k) / n_rel


def precision_at_k(
    ranked_ids: Sequence[str],
    relevant: Collection[str],
    k: int,
    *,
    ranked_scores: Sequence[float] | np.ndarray | None = None,
) -> float:
    """Fraction of the top k slots holding a relevant item; always divided by k."""
    _check_k(k)
    groups, _ = _groups(ranked_ids, relevant, ranked_scores)
    return _expected_hits(groups, k) / k


def hit_at_k(
    ranked_ids: Sequence[str],
    relevant: Collection[str],
    k: int,
    *,
    ranked_scores: Sequence[float] | np.ndarray | None = None,
) -> float:
    """1.0 if any relevant item is in the top k, else 0.0.

    With tied scores this is the probability of a hit over the orderings of the tie group
    that straddles rank k, so it may lie strictly between 0 and 1.
    """
    _check_k(k)
    groups, _ = _groups(ranked_ids, relevant, ranked_scores)
    miss = 1.0
    for g in groups:
        if g.start >= k or miss == 0.0:
            break
        miss *= _survival(g.size, g.rel, min(g.size, k - g.start))
    return 1.0 - miss


def reciprocal_rank(
    ranked_ids: Sequence[str],
    relevant: Collection[str],
    *,
    k: int | None = None,
    ranked_scores: Sequence[float] | np.ndarray | None = None,
) -> float:
    """1 / rank of the first relevant item (0.0 if none within the list, or within k if given).

    With ties, the expectation of 1/rank over the orderings of the first tie group holding
    a relevant item.
    """
    if k is not None:
        _check_k(k)
    groups, _ = _groups(ranked_ids, relevant, ranked_scores)
    for g in groups:
        if k is not None and g.start >= k:
            return 0.0
        if g.rel == 0:
            continue
        last = g.size - g.rel + 1  # the first relevant item can be no later than this slot
        if k is not None:
            last = min(last, k - g.start)
        j = np.arange(1, last + 1)
        # P(first relevant at slot j) = S(j-1) - S(j), S = survival of the first j slots
        i = np.arange(last, dtype=np.float64)
        surv = np.concatenate(([1.0], np.cumprod((g.size - g.rel - i) / (g.size - i))))
        prob = surv[:-1] - surv[1:]
        return float(np.sum(prob / (g.start + j)))
    return 0.0


def _is_number(value: Any) -> bool:
    return isinstance(value, Real | np.number) and not isinstance(value, bool | np.bool_)


def summarise(per_query: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean of every numeric field over the queries that have it.

    A field that is ``None`` (or absent) in a row counts that query as skipped for that
    metric. Non-numeric fields (the query path, a source label) are ignored; booleans are
    not averaged. Returns::

        {"queries": number of rows,
         "means":   {metric: mean over rows with a number, or None if there are none},
         "counts":  {metric: how many rows had a number},
         "stderr":  {metric: standard error of the mean (sample sd / sqrt(n)), None if n < 2}}
    """
    values: dict[str, list[float]] = {}
    order: list[str] = []
    for row in per_query:
        for key, value in row.items():
            if value is None:
                if key not in values:
                    values[key] = []
                    order.append(key)
                continue
            if not _is_number(value):
                continue
            if key not in values:
                values[key] = []
                order.append(key)
            values[key].append(float(value))
    # keys that were only ever None and never numeric still appear (count 0) only if no row
    # gave them a non-numeric value; drop keys that are non-numeric somewhere
    numeric_keys = [
        key
        for key in order
        if not any(
            key in row and row[key] is not None and not _is_number(row[key]) for row in per_query
        )
    ]
    means: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    stderr: dict[str, float | None] = {}
    for key in numeric_keys:
        vals = values[key]
        counts[key] = len(vals)
        means[key] = float(np.mean(vals)) if vals else None
        stderr[key] = float(np.std(vals, ddof=1) / math.sqrt(len(vals))) if len(vals) >= 2 else None
    return {"queries": len(per_query), "means": means, "counts": counts, "stderr": stderr}


def summarise_by(per_query: Sequence[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """``summarise`` separately for each value of ``key`` (e.g. the ground-truth source)."""
    buckets: dict[str, list[Mapping[str, Any]]] = {}
    for row in per_query:
        buckets.setdefault(str(row.get(key)), []).append(row)
    return {name: summarise(rows) for name, rows in sorted(buckets.items())}


Quad = Sequence[Sequence[float]] | np.ndarray  # corners, (4, 2) or any convex polygon


def quad_iou(a: Quad, b: Quad) -> float:
    """Intersection over union of two convex quadrilaterals (or polygons), in pixels."""
    import cv2

    pa, pb = np.asarray(a, np.float32).reshape(-1, 2), np.asarray(b, np.float32).reshape(-1, 2)
    inter, _ = cv2.intersectConvexConvex(pa, pb)
    union = cv2.contourArea(pa) + cv2.contourArea(pb) - inter
    return float(inter / union) if union > 0 else 0.0


def localisation_hits(
    found: Sequence[Quad], truth: Sequence[Quad], size: tuple[int, int], min_iou: float = 0.8
) -> tuple[int, int]:
    """How many true paintings a localiser found, and how many of its regions are wrong.

    A true painting is found when a region covers its visible part (its quad clipped to the
    photo, since a painting may be cut off by the photo's edge) with IoU >= ``min_iou``; a
    region is wrong when it overlaps no true painting's visible part by IoU >= 0.5."""
    import cv2

    w, h = size
    frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    visible = []
    for q in truth:
        area, poly = cv2.intersectConvexConvex(np.asarray(q, np.float32).reshape(-1, 2), frame)
        if area > 0 and poly is not None:
            visible.append(poly.reshape(-1, 2))
    hits = sum(max((quad_iou(f, v) for f in found), default=0.0) >= min_iou for v in visible)
    wrong = sum(max((quad_iou(f, v) for v in visible), default=0.0) < 0.5 for f in found)
    return int(hits), int(wrong)
