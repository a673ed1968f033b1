"""Ranking paintings by their best face or figure (artsim.search.regions)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

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


def test_a_row_is_scored_against_every_query_vector() -> None:
    # painting b's many rows fill the first vector's fetch list; a's row is fetched only by the
    # second vector, yet scores higher against the first: it must get that score and vector
    many = [_unit(1, 0.02 * i, 0) for i in range(60)]
    vectors = np.stack([*many, _unit(0.9, 0, 0.44)])
    rows = _Rows(["b"] * 60 + ["a"])
    q0, q1 = _unit(1, 0, 0), _unit(0, 0, 1)
    hits = best_rows_per_item(None, rows, build_index(vectors), np.stack([q0, q1]), 2, None, None)  # type: ignore[arg-type]
    a = next(h for h in hits if rows.item_ids[h[0]] == "a")
    assert a[2] == 0 and abs(a[1] - float(vectors[60] @ q0)) < 1e-5


def test_rows_can_be_left_out() -> None:
    vectors = np.stack([_unit(1, 0, 0), _unit(1, 0.1, 0), _unit(0, 1, 0)])
    rows = _Rows(["a", "b", "c"])
    index = build_index(vectors)
    keep = np.array([False, True, True])
    hits = best_rows_per_item(None, rows, index, _unit(1, 0, 0), 3, None, None, keep)  # type: ignore[arg-type]
    assert [rows.item_ids[r] for r, _, _ in hits] == ["b", "c"]
    none = best_rows_per_item(
        None, rows, index, _unit(1, 0, 0), 3, None, None, np.zeros(3, dtype=bool)
    )  # type: ignore[arg-type]
    assert none == []
    with pytest.raises(ValueError, match="row_ok has shape"):
        best_rows_per_item(None, rows, index, _unit(1, 0, 0), 3, None, None, keep[:2])  # type: ignore[arg-type]


def test_pick_largest() -> None:
    assert pick_largest([(0, 0, 10, 10), (5, 5, 20, 30), (0, 0, 25, 2)]) == 1
