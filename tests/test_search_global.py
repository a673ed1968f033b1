"""Whole-painting search (artsim.search.global_): the stored vector of a catalog painting, the
query excluded, masks, and average query expansion. On MemoryCatalog (no model)."""

from __future__ import annotations

import numpy as np

from artsim.search import Query
from artsim.search.global_ import query_vector, search_global
from tests.search_support import MemoryCatalog, Painting, unit


def _catalog() -> MemoryCatalog:
    rng = np.random.default_rng(1)
    base = unit(rng.normal(size=8))
    # p0..p9 drift away from p0 step by step; x is unrelated
    vecs = [unit(base + 0.15 * i * unit(rng.normal(size=8))) for i in range(10)]
    paintings = [Painting(f"p{i}", v, metadata={"n": i}) for i, v in enumerate(vecs)]
    return MemoryCatalog([*paintings, Painting("x", unit(-base))], aspects=("global",))


def test_a_catalog_painting_is_searched_with_its_stored_vector():
    cat = _catalog()
    q = Query(item_id="p3", label="p3")
    assert np.array_equal(query_vector(cat, q), cat.aspect("global").vectors["global"][3])
    assert q.analysis is None  # nothing was analysed


def test_results_are_exact_cosine_best_first_without_the_query():
    cat = _catalog()
    hits = search_global(cat, Query(item_id="p0", label="p0"), k=4, exclude="p0")
    v = cat.aspect("global").vectors["global"]
    expect = [cat.ids[i] for i in np.argsort(-(v @ v[0]))[1:5]]
    assert [h.id for h in hits] == expect
    assert np.allclose([h.score for h in hits], np.sort(v @ v[0])[::-1][1:5], atol=1e-5)
    assert hits[0].aspect == "global" and hits[0].metadata == cat.metadata(hits[0].id)
    assert hits[0].image == cat.image_of(hits[0].id)


def test_a_mask_keeps_k_results_from_the_allowed_paintings():
    cat = _catalog()
    mask = np.array([i in ("p7", "p8", "p9", "x") for i in cat.ids])
    hits = search_global(cat, Query(item_id="p0", label="p0"), k=3, mask=mask, exclude="p0")
    assert {h.id for h in hits} == {"p7", "p8", "p9"}  # x, allowed too, is the farthest
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_query_expansion_moves_the_query_towards_its_neighbours():
    cat = _catalog()
    q = Query(item_id="p0", label="p0")
    plain = search_global(cat, q, k=10, exclude="p0")
    expanded = search_global(cat, q, k=10, exclude="p0", query_expansion=3)
    assert {h.id for h in plain} == {h.id for h in expanded}  # the same paintings
    # the query is now the mean of p0 and its 3 neighbours: those score higher than before
    before = {h.id: h.score for h in plain}
    top3 = [h.id for h in plain[:3]]
    assert all({h.id: h.score for h in expanded}[i] > before[i] - 1e-6 for i in top3)
    assert expanded[-1].id == "x"
