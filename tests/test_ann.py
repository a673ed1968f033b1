"""Indexes chosen within memory and latency budgets (artsim.search.ann): measured recall,
compressed indexes, masked search without a vector copy, budgets that cannot be met."""

from __future__ import annotations

import numpy as np
import pytest

from artsim.catalog.index import load_index, save_index
from artsim.errors import ArtsimError
from artsim.search.ann import (
    BudgetError,
    build_within_budget,
    candidates,
    exact_top,
    parse_bytes,
)


def _clustered(n=4000, d=32, seed=3):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(40, d)).astype(np.float32)
    v = centers[rng.integers(0, 40, n)] + 0.5 * rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_parse_bytes():
    assert parse_bytes("2GB") == 2_000_000_000
    assert parse_bytes("1.5G") == 1_500_000_000
    assert parse_bytes("512MiB") == 512 * 1024**2
    assert parse_bytes(1000) == 1000 and parse_bytes(None) is None
    with pytest.raises(ArtsimError, match="bad memory size"):
        parse_bytes("lots")


def test_no_budget_small_catalog_stays_exact():
    v = _clustered()
    vi, report = build_within_budget(v, n_queries=50, keep_vectors=True)
    assert vi.kind == "flat" and report.chosen.recall == 1.0
    assert vi.vectors is not None and vi.vectors.shape == v.shape


def test_memory_budget_picks_a_compressed_index_that_meets_recall():
    v = _clustered()
    flat_bytes = v.nbytes
    vi, report = build_within_budget(
        v, max_index_memory=flat_bytes // 2, n_queries=100, keep_vectors=False
    )
    assert vi.kind == "ivf" and "SQ8" in report.chosen.candidate.factory
    assert report.chosen.memory <= flat_bytes // 2
    assert report.chosen.recall >= 0.95 and vi.params["nprobe"] >= 1
    # recall measured independently of the tuning queries
    rng = np.random.default_rng(9)
    q = v[rng.choice(len(v), 100, replace=False)] + 0.05 * rng.normal(size=(100, 32))
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    _, found = vi.search(q, 10)
    truth = exact_top(v, q, 10)
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]) >= 0.9
    skipped = [t.candidate.factory for t in report.trials if t.skipped]
    assert skipped[:2] == ["Flat", "HNSW32"]  # over the budget: never built


def test_masked_search_on_index_without_vector_copy():
    v = _clustered()
    vi, _ = build_within_budget(v, max_index_memory=v.nbytes // 2, keep_vectors=False)
    assert vi.vectors is None
    small = np.zeros(len(v), bool)
    small[::400] = True  # 10 rows: exact on rows decoded from the index
    _, idx = vi.search(v[:1], 10, small)
    assert small[idx[0]].all() and sorted(idx[0]) == sorted(np.flatnonzero(small))
    big = np.zeros(len(v), bool)
    big[1::2] = True  # half the rows: IVF with a selector, probing widened
    _, idx = vi.search(v[:3], 10, big)
    assert (idx >= 0).all() and big[idx].all()


def test_impossible_budget_says_what_can_be_met():
    v = _clustered()
    with pytest.raises(BudgetError, match=r"What can be met: --max-index-memory") as err:
        build_within_budget(v, max_index_memory=1000, n_queries=20)
    assert "Flat: needs" in str(err.value)
    with pytest.raises(BudgetError, match=r"What can be met: --max-query-ms"):
        build_within_budget(v, max_query_ms=1e-6, n_queries=20, kinds=["flat"])


def test_hnsw_candidates_are_left_out_for_huge_catalogs():
    kinds = {c.kind for c in candidates(2_000_000, 1400)}
    assert "hnsw" not in kinds and "ivf" in kinds
    fac = [c.factory for c in candidates(2_000_000, 1400)]
    assert any(f.startswith("OPQ") for f in fac)


def test_budgeted_index_roundtrip_keeps_search_parameter(tmp_path):
    v = _clustered()
    vi, _ = build_within_budget(v, max_index_memory=v.nbytes // 2, n_queries=50)
    path = tmp_path / "global-global.faiss"
    save_index(vi, path)
    back = load_index(v, path)
    assert back.kind == "ivf" and back.params["nprobe"] == vi.params["nprobe"]
    assert (back.search(v[:5], 10)[1] == vi.search(v[:5], 10)[1]).all()
    path.with_suffix(".json").unlink()  # crash between index and sidecar: rebuilt, not misused
    assert load_index(v, path) is None


def test_sizes_are_written_in_decimal_units():
    from artsim.search.ann import format_bytes

    assert format_bytes(2_500_000_000) == "2.50 GB"
    assert format_bytes(1_200_000) == "1.20 MB"
    assert format_bytes(999) == "999 B"
    assert parse_bytes(format_bytes(2_500_000_000).replace(" ", "")) == 2_500_000_000


def test_list_and_code_sizes_follow_the_catalog():
    from artsim.search.ann import TRAIN_MAX, nlist_for, pq_m_for

    assert nlist_for(500) == 12  # small: >= 39 training points per list
    assert nlist_for(1_000_000, train_max=10**7) == 4096  # about 4 sqrt(n), a power of two
    assert nlist_for(1_000_000, train_max=39 * 100) == 100  # capped by the training sample
    assert nlist_for(1_000_000) == TRAIN_MAX // 39
    assert pq_m_for(1280) == 80 and pq_m_for(64) == 8 and pq_m_for(8192) == 128


def test_exact_top_streams_chunks_like_one_pass():
    from artsim.search.ann import held_out, recall_at

    v = _clustered(n=900, d=16)
    q = v[:7]
    whole = np.argsort(-(q @ v.T), axis=1, kind="stable")[:, :10]
    assert (exact_top(v, q, 10, chunk=128) == whole).all()
    rows, queries, truth = held_out(v, 20, k=10)
    assert (queries == v[rows]).all()
    assert len(rows) == 20 and truth.shape == (20, 10)
    assert not any(r in t for r, t in zip(rows, truth, strict=True))  # the query row left out
    assert recall_at(truth, truth) == 1.0
    half = truth.copy()
    half[:, 5:] = -1  # misses
    assert recall_at(half, truth) == 0.5
