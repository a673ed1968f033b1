"""Ranking paintings by their best face or figure (artsim.search.regions)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artsim.search.index import build_index
from artsim.search.regions import best_rows_per_item, pick_largest


@dataclass
class _Rows:  # the part of AspectData the ranking reads
    item_ids: list[str]

    def __len__(self) -> int:
        return len(self.item_ids)


def _unit(*v: float) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_best_row_per_painting_and_the_query_vector_that_found_it() -> None:
    # painting a: two rows; b: one row that only the second query vector (a mirror) matches
    vectors = np.stack([_unit(1, 0, 0), _unit(1, 1, 0), _unit(0, 0, 1)])
    rows = _Rows(["a", "a", "b"])
    index = build_index(vectors)
    queries = np.stack([_unit(1, 0.1, 0), _unit(0, 0.1, 1)])
    hits = best_rows_per_item(None, rows, index, queries, 2, None, None)  # type: ignore[arg-type]
    assert [(rows.item_ids[r], q) for r, _, q in hits] == [("a", 0), ("b", 1)]
    assert hits[0][0] == 0  # a's best row is its first
    # one query vector: every hit comes from it
    single = best_rows_per_item(None, rows, index, queries[0], 2, None, None)  # type: ignore[arg-type]
    assert {q for _, _, q in single} == {0}


def test_pick_largest() -> None:
    assert pick_largest([(0, 0, 10, 10), (5, 5, 20, 30), (0, 0, 25, 2)]) == 1
