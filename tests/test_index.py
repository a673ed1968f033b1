from __future__ import annotations

import numpy as np

from artsim.search.index import build_index, load_index, save_index


def _unit(n, d, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_flat_is_exact():
    v = _unit(500, 32)
    vi = build_index(v)
    q = v[:3]
    scores, idx = vi.search(q, 5)
    ref = np.argsort(-(q @ v.T), axis=1)[:, :5]
    assert (idx == ref).all()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)


def test_mask_applies_before_truncation():
    v = _unit(1000, 16, 1)
    vi = build_index(v)
    mask = np.zeros(1000, bool)
    mask[::97] = True  # 11 allowed rows
    scores, idx = vi.search(v[:1], 10, mask)
    assert (idx >= 0).all() and mask[idx].all()  # k results whenever k exist
    scores, idx = vi.search(v[:1], 20, mask)
    assert (idx[0] >= 0).sum() == 11 and np.isneginf(scores[0, 11:]).all()


def test_large_masked_subset_uses_selector():
    v = _unit(6000, 8, 2)
    vi = build_index(v)
    mask = np.ones(6000, bool)
    mask[0] = False
    _scores, idx = vi.search(v[:1], 5, mask)
    assert 0 not in idx[0]
    ref = np.argsort(-(v[:1] @ v.T)[0])[1:6]
    assert list(idx[0]) == list(ref)


def test_hnsw_recall_and_roundtrip(tmp_path):
    v = _unit(3000, 32, 3)
    vi = build_index(v, kind="hnsw")
    q = _unit(50, 32, 4)
    _, idx = vi.search(q, 10)
    ref = np.argsort(-(q @ v.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, ref, strict=True)])
    assert recall >= 0.99
    save_index(vi, tmp_path / "x.faiss")
    again = load_index(v, tmp_path / "x.faiss")
    assert again is not None and again.kind == "hnsw"
    assert (again.search(q, 10)[1] == idx).all()
    assert load_index(v[:10], tmp_path / "x.faiss") is None  # stale index is rebuilt, not trusted


def test_hnsw_search_leaves_the_shared_index_alone_and_serves_large_k():
    v = _unit(1200, 16, 5)
    vi = build_index(v, kind="hnsw")
    before = vi.index.hnsw.efSearch
    q = _unit(3, 16, 6)
    scores, idx = vi.search(q, 300)  # k above the default efSearch
    assert vi.index.hnsw.efSearch == before  # per-call parameters: threads may search at once
    assert idx.shape == (3, 300) and (idx >= 0).all()
    assert all(len(set(row)) == 300 for row in idx)
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_empty_index():
    vi = build_index(np.zeros((0, 8), np.float32))
    _scores, idx = vi.search(np.ones((1, 8), np.float32), 3)
    assert (idx == -1).all()


# ---------------------------------------------------------------- budgeted indexes (ann.py)
import pytest  # noqa: E402

from artsim.errors import ArtsimError  # noqa: E402
from artsim.search.ann import (  # noqa: E402
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
