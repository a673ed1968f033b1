"""Retrieval metrics against hand-computed examples, ties included, and a brute-force check."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artsim.evaluation.metrics import (
    average_precision,
    hit_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    summarise,
    summarise_by,
)

# ---------------------------------------------------------------- strict order (no scores)

RANKED = ["a", "b", "c", "d", "e"]
RELEVANT = {"a", "c", "f"}  # f is never retrieved: ranks 1 and 3 are relevant


def test_average_precision_hand_computed() -> None:
    # (P@1 + P@3) / |relevant| = (1 + 2/3) / 3
    assert average_precision(RANKED, RELEVANT) == pytest.approx(5 / 9)


def test_average_precision_at_k_is_normalised_by_min_k_relevant() -> None:
    # only rank 1 counts within k=2; divided by min(2, 3) = 2
    assert average_precision(RANKED, RELEVANT, k=2) == pytest.approx(1 / 2)
    # k=5 includes ranks 1 and 3; divided by min(5, 3) = 3, the same as plain AP here
    assert average_precision(RANKED, RELEVANT, k=5) == pytest.approx(5 / 9)
    # a perfect top 2 with 3 relevant scores 1.0 at k=2
    assert average_precision(["a", "c", "x"], RELEVANT, k=2) == pytest.approx(1.0)


def test_recall_precision_hit_rr_hand_computed() -> None:
    assert recall_at_k(RANKED, RELEVANT, 1) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, RELEVANT, 3) == pytest.approx(2 / 3)
    assert recall_at_k(RANKED, RELEVANT, 100) == pytest.approx(2 / 3)
    assert precision_at_k(RANKED, RELEVANT, 3) == pytest.approx(2 / 3)
    # fewer results than k: still divided by k
    assert precision_at_k(RANKED, RELEVANT, 10) == pytest.approx(2 / 10)
    assert hit_at_k(RANKED, RELEVANT, 1) == 1.0
    assert hit_at_k(["x", "y", "a"], RELEVANT, 2) == 0.0
    assert reciprocal_rank(RANKED, RELEVANT) == 1.0
    assert reciprocal_rank(["x", "y", "a"], {"a"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x", "y", "a"], {"a"}, k=2) == 0.0


def test_single_relevant_item_ap_equals_reciprocal_rank() -> None:
    ranked = ["q1", "q2", "t", "q3"]
    assert average_precision(ranked, {"t"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, {"t"}) == pytest.approx(1 / 3)


def test_empty_results_score_zero_not_nan() -> None:
    for value in (
        average_precision([], {"a"}),
        average_precision([], {"a"}, k=5),
        recall_at_k([], {"a"}, 5),
        precision_at_k([], {"a"}, 5),
        hit_at_k([], {"a"}, 5),
        reciprocal_rank([], {"a"}),
        average_precision(["x", "y"], {"a"}),
    ):
        assert value == 0.0
        assert not math.isnan(value)


def test_empty_relevant_set_raises() -> None:
    with pytest.raises(ValueError, match="relevant set is empty"):
        average_precision(["a"], set())
    with pytest.raises(ValueError, match="relevant set is empty"):
        recall_at_k([], set(), 1)


def test_bad_k_raises() -> None:
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must be"):
            recall_at_k(["a"], {"a"}, k)  # type: ignore[arg-type]


def test_duplicate_ids_count_once_at_first_position() -> None:
    # b's second appearance does not push the relevant item down or count twice
    assert reciprocal_rank(["b", "b", "a"], {"a"}) == pytest.approx(1 / 2)
    assert recall_at_k(["a", "a", "a"], {"a", "z"}, 3) == pytest.approx(1 / 2)
    assert precision_at_k(["a", "a"], {"a"}, 2) == pytest.approx(1 / 2)


# ---------------------------------------------------------------- ties (expected values)


def test_tie_of_two_straddling_rank_one() -> None:
    # a and y tie for first place: a is at rank 1 or 2 with probability 1/2 each
    ranked, scores = ["a", "y"], [1.0, 1.0]
    assert recall_at_k(ranked, {"a"}, 1, ranked_scores=scores) == pytest.approx(0.5)
    assert hit_at_k(ranked, {"a"}, 1, ranked_scores=scores) == pytest.approx(0.5)
    assert average_precision(ranked, {"a"}, ranked_scores=scores) == pytest.approx((1 + 1 / 2) / 2)
    assert reciprocal_rank(ranked, {"a"}, ranked_scores=scores) == pytest.approx(0.75)
    # listing y first does not change anything: the order inside a tie is irrelevant
    assert average_precision(["y", "a"], {"a"}, ranked_scores=scores) == pytest.approx(0.75)


def test_tie_behind_a_strict_result() -> None:
    # x strictly first, then a and y tied: a is at rank 2 or 3
    ranked, scores = ["x", "a", "y", "z"], [0.9, 0.5, 0.5, 0.1]
    assert average_precision(ranked, {"a"}, ranked_scores=scores) == pytest.approx(
        (1 / 2 + 1 / 3) / 2
    )
    assert reciprocal_rank(ranked, {"a"}, ranked_scores=scores) == pytest.approx(5 / 12)
    assert recall_at_k(ranked, {"a"}, 2, ranked_scores=scores) == pytest.approx(0.5)
    assert recall_at_k(ranked, {"a"}, 3, ranked_scores=scores) == pytest.approx(1.0)
    assert precision_at_k(ranked, {"a"}, 1, ranked_scores=scores) == 0.0
    # without scores the strict order puts a at rank 2
    assert average_precision(ranked, {"a"}) == pytest.approx(1 / 2)


def test_tie_group_with_two_relevant_of_three() -> None:
    # the 3 relevant-slot patterns {1,2}, {1,3}, {2,3} are equally likely:
    # AP = (1 + (1 + 2/3)/2 + (1/2 + 2/3)/2) / 3 = (1 + 5/6 + 7/12) / 3 = 29/36
    ranked, scores, rel = ["a", "b", "c"], [7.0, 7.0, 7.0], {"a", "b"}
    assert average_precision(ranked, rel, ranked_scores=scores) == pytest.approx(29 / 36)
    # first relevant at slot 1 with p 2/3, at slot 2 with p 1/3
    assert reciprocal_rank(ranked, rel, ranked_scores=scores) == pytest.approx(2 / 3 + 1 / 6)
    assert hit_at_k(ranked, rel, 1, ranked_scores=scores) == pytest.approx(2 / 3)
    assert precision_at_k(ranked, rel, 2, ranked_scores=scores) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, rel, 2, ranked_scores=scores) == pytest.approx(2 / 3)
    assert hit_at_k(ranked, rel, 2, ranked_scores=scores) == 1.0  # only one irrelevant item


def test_ap_at_k_with_tie_straddling_k() -> None:
    # x first; a ties with y for ranks 2-3; z is relevant but never retrieved; k = 2.
    # a at rank 2 (p 1/2) contributes P@2 = 1/2; divided by min(2, 2) = 2 -> 1/8
    ranked, scores = ["x", "a", "y"], [2.0, 1.0, 1.0]
    assert average_precision(ranked, {"a", "z"}, k=2, ranked_scores=scores) == pytest.approx(1 / 8)


def test_distances_ascending_are_accepted() -> None:
    # lower-is-better scores: a and b tie at distance 0.1
    ranked, dists = ["a", "b", "c"], [0.1, 0.1, 0.5]
    assert average_precision(ranked, {"b"}, ranked_scores=dists) == pytest.approx(0.75)


def test_scores_must_match_and_be_monotone() -> None:
    with pytest.raises(ValueError, match="monotone"):
        average_precision(["a", "b", "c"], {"a"}, ranked_scores=[1.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="values but ranked_ids has"):
        average_precision(["a", "b"], {"a"}, ranked_scores=[1.0])
    with pytest.raises(ValueError, match="NaN"):
        average_precision(["a", "b"], {"a"}, ranked_scores=[1.0, float("nan")])


def test_distinct_scores_equal_strict_order() -> None:
    ranked = ["a", "b", "c", "d", "e"]
    scores = [5.0, 4.0, 3.0, 2.0, 1.0]
    assert average_precision(ranked, RELEVANT, ranked_scores=scores) == pytest.approx(
        average_precision(ranked, RELEVANT)
    )


def _brute_force(ranked, scores, relevant, fn):
    """Average a strict metric over every ordering inside each tie group."""
    groups: list[list[str]] = []
    for item, score in zip(ranked, scores, strict=True):
        if groups and score == scores[ranked.index(groups[-1][0])]:
            groups[-1].append(item)
        else:
            groups.append([item])
    values = [
        fn([x for perm in combo for x in perm])
        for combo in itertools.product(*(itertools.permutations(g) for g in groups))
    ]
    return float(np.mean(values))


@settings(max_examples=150, deadline=None)
@given(
    scores=st.lists(st.integers(0, 3), min_size=0, max_size=7),
    rel_mask=st.lists(st.booleans(), min_size=7, max_size=7),
    extra_relevant=st.integers(0, 2),
    k=st.integers(1, 8),
)
def test_tie_aware_metrics_equal_brute_force_expectation(scores, rel_mask, extra_relevant, k):
    scores = sorted(scores, reverse=True)
    ranked = [f"r{i}" for i in range(len(scores))]
    relevant = {r for r, m in zip(ranked, rel_mask, strict=False) if m}
    relevant |= {f"missing{i}" for i in range(extra_relevant)}
    if not relevant:
        relevant = {"missing"}
    cases = [
        (
            lambda r, s: average_precision(r, relevant, ranked_scores=s),
            lambda p: average_precision(p, relevant),
        ),
        (
            lambda r, s: average_precision(r, relevant, k=k, ranked_scores=s),
            lambda p: average_precision(p, relevant, k=k),
        ),
        (
            lambda r, s: recall_at_k(r, relevant, k, ranked_scores=s),
            lambda p: recall_at_k(p, relevant, k),
        ),
        (
            lambda r, s: precision_at_k(r, relevant, k, ranked_scores=s),
            lambda p: precision_at_k(p, relevant, k),
        ),
        (
            lambda r, s: hit_at_k(r, relevant, k, ranked_scores=s),
            lambda p: hit_at_k(p, relevant, k),
        ),
        (
            lambda r, s: reciprocal_rank(r, relevant, ranked_scores=s),
            lambda p: reciprocal_rank(p, relevant),
        ),
        (
            lambda r, s: reciprocal_rank(r, relevant, k=k, ranked_scores=s),
            lambda p: reciprocal_rank(p, relevant, k=k),
        ),
    ]
    for tie_aware, strict in cases:
        expected = _brute_force(ranked, scores, relevant, strict) if ranked else strict([])
        assert tie_aware(ranked, scores) == pytest.approx(expected, abs=1e-12)


def test_large_tie_group_is_fast_and_sane() -> None:
    # every result tied (e.g. an all-zero score column): the relevant item's expected RR is
    # the mean of 1/j over j = 1..n
    n = 20_000
    ranked = [f"x{i}" for i in range(n)]
    scores = np.zeros(n, dtype=np.float32)
    rr = reciprocal_rank(ranked, {"x5"}, ranked_scores=scores)
    assert rr == pytest.approx(float(np.mean(1.0 / np.arange(1, n + 1))))
    assert recall_at_k(ranked, {"x5"}, 10, ranked_scores=scores) == pytest.approx(10 / n)


# ---------------------------------------------------------------- aggregation


def test_summarise_means_counts_and_skips() -> None:
    rows = [
        {"query": "a", "ap": 1.0, "hit@1": 1.0, "source": "s1", "n_relevant": 2},
        {"query": "b", "ap": 0.5, "hit@1": None, "source": "s2", "n_relevant": 4},
        {"query": "c", "ap": np.float32(0.0), "flag": True, "source": "s1", "n_relevant": 3},
    ]
    out = summarise(rows)
    assert out["queries"] == 3
    assert out["means"]["ap"] == pytest.approx(0.5)
    assert out["counts"]["ap"] == 3
    assert out["means"]["hit@1"] == pytest.approx(1.0)
    assert out["counts"]["hit@1"] == 1  # one None, one absent: skipped
    assert out["stderr"]["ap"] == pytest.approx(0.5 / math.sqrt(3))
    assert out["stderr"]["hit@1"] is None
    assert out["means"]["n_relevant"] == pytest.approx(3.0)
    # strings and booleans are not averaged
    assert "query" not in out["means"] and "source" not in out["means"]
    assert "flag" not in out["means"]

    by = summarise_by(rows, "source")
    assert set(by) == {"s1", "s2"}
    assert by["s1"]["means"]["ap"] == pytest.approx(0.5)
    assert by["s2"]["queries"] == 1


def test_summarise_empty_and_all_skipped() -> None:
    assert summarise([]) == {"queries": 0, "means": {}, "counts": {}, "stderr": {}}
    out = summarise([{"ap": None}, {"ap": None}])
    assert out["means"]["ap"] is None
    assert out["counts"]["ap"] == 0


def test_quad_iou_of_a_square_and_its_half() -> None:
    from artsim.evaluation.metrics import quad_iou

    square = [[0, 0], [10, 0], [10, 10], [0, 10]]
    assert quad_iou(square, square) == pytest.approx(1.0)
    assert quad_iou(square, [[0, 0], [5, 0], [5, 10], [0, 10]]) == pytest.approx(0.5)
    assert quad_iou(square, [[20, 20], [30, 20], [30, 30], [20, 30]]) == 0.0


def test_localisation_scores_a_cut_off_painting_by_its_visible_part() -> None:
    from artsim.evaluation.metrics import localisation_hits

    # a painting reaching 50 px past the photo's right edge: the region up to the edge finds it
    truth = [[[60, 10], [150, 10], [150, 90], [60, 90]]]
    seen = [[60, 10], [100, 10], [100, 90], [60, 90]]
    assert localisation_hits([seen], truth, (100, 100)) == (1, 0)
    # the whole-photo region is wrong; nothing found
    whole = [[0, 0], [100, 0], [100, 100], [0, 100]]
    assert localisation_hits([whole], truth, (100, 100)) == (0, 1)
    assert localisation_hits([], truth, (100, 100)) == (0, 0)
