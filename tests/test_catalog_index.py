"""The FAISS vector index (artsim.catalog.index): exact, HNSW, masks, save and load."""

from __future__ import annotations

import numpy as np
import pytest

from artsim.catalog.index import build_index, load_index, save_index


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


@pytest.mark.slow  # builds a 50,000-row HNSW graph (~15 s)
def test_filtered_hnsw_keeps_its_recall_when_the_filter_is_selective():
    # clustered rows, as real paintings are: with a fixed efSearch the walk spends itself on
    # excluded rows (recall@10 0.935 here before efSearch was widened by the kept fraction)
    n, d = 50_000, 64
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(n // 100, d)).astype(np.float32)
    v = centres[rng.integers(0, n // 100, n)] + 0.6 * rng.normal(size=(n, d)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = v[rng.integers(0, n, 60)] + 0.3 * rng.normal(size=(60, d)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    vi = build_index(v, kind="hnsw")
    mask = rng.random(n) < 0.1  # ~5,000 rows kept: above the exact-subset limit
    rows = np.flatnonzero(mask)
    ref = rows[np.argsort(-(q @ v[rows].T), axis=1)[:, :10]]
    _, idx = vi.search(q, 10, mask)
    assert mask[idx].all()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, ref, strict=True)])
    assert recall >= 0.97


def test_empty_index():
    vi = build_index(np.zeros((0, 8), np.float32))
    _scores, idx = vi.search(np.ones((1, 8), np.float32), 3)
    assert (idx == -1).all()


def test_filtered_hnsw_walk_widens_with_the_filter_but_never_below_twice_k():
    import faiss

    vi = build_index(_unit(1200, 16, 8), kind="hnsw")
    sel = faiss.IDSelectorRange(0, 600)
    assert vi._params(10, sel, 0.5).efSearch == 512  # 256 / half the rows kept
    assert vi._params(10, sel, 0.01).efSearch == 1024  # capped
    assert vi._params(600, sel, 0.5).efSearch == 1200  # a large k keeps its 2k, cap or not
    assert vi._params(10).efSearch == 256  # no filter: as built
