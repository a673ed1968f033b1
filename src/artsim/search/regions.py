"""Search over aspects with several rows per painting (faces, figures): rank paintings by
their best-matching row, fetching more rows until k distinct paintings are found."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from artsim.search import masked_search

if TYPE_CHECKING:
    from artsim.catalog import AspectData, Catalog
    from artsim.search.index import VectorIndex


def best_rows_per_item(
    catalog: Catalog,
    data: AspectData,
    index: VectorIndex,
    queries: np.ndarray,
    k: int,
    mask: np.ndarray | None,
    exclude: str | None,
    row_ok: np.ndarray | None = None,
) -> list[tuple[int, float, int]]:
    """(row, score, query) of the best row of each of the top-k paintings. Several query
    vectors (e.g. a pose and its mirror) count as alternatives: a row's score is its best over
    them, and `query` is the index of the vector that gave it. `row_ok`: rows allowed (None:
    all)."""
    queries = np.atleast_2d(queries)
    fetch = max(4 * k, 32)
    while True:
        candidates: set[int] = set()
        exhausted = True
        for qv in queries:
            _, rows = masked_search(catalog, data, index, qv, fetch, mask, exclude, row_ok)
            exhausted = exhausted and len(rows) < fetch
            candidates.update(int(r) for r in rows)
        # a row one query vector fetched may score higher against another that did not fetch
        # it: score every candidate against all of them
        best: dict[str, tuple[int, float, int]] = {}
        rows_list = sorted(candidates)
        if rows_list:
            all_scores = index.rows(np.asarray(rows_list)) @ queries.T
            for r, row_scores in zip(rows_list, all_scores, strict=True):
                qi = int(np.argmax(row_scores))
                s = float(row_scores[qi])
                item = data.item_ids[r]
                if item not in best or s > best[item][1]:
                    best[item] = (r, s, qi)
        if len(best) >= k or exhausted or fetch >= len(data):
            break
        fetch *= 4
    return sorted(best.values(), key=lambda rs: (-rs[1], rs[0]))[:k]


def pick_largest(boxes: list[tuple[float, float, float, float]]) -> int:
    return int(np.argmax([w * h for _, _, w, h in boxes]))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0
