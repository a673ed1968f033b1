"""The FAISS vector index (exact, HNSW, and the budgeted indexes of `artsim.search.ann`) moved to `artsim.catalog.index` (the catalog builds and saves it);
its names stay importable from here."""

from artsim.catalog.index import (
    DEFAULT_EXACT_MAX,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    SUBSET_EXACT_MAX,
    VectorIndex,
    build_index,
    index_kind,
    load_index,
    save_index,
)

__all__ = [
    "DEFAULT_EXACT_MAX",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_EF_SEARCH",
    "HNSW_M",
    "SUBSET_EXACT_MAX",
    "VectorIndex",
    "build_index",
    "index_kind",
    "load_index",
    "save_index",
]
