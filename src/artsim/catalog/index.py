"""Nearest-neighbour index over L2-normalised vectors (cosine = inner product).

Exact search (FAISS IndexFlatIP) up to `exact_max` vectors; above that, HNSW with an
efSearch chosen so recall@10 against exact stays >= 0.99 (see benchmarks/bench_query.py).
Filtered searches over a small subset are done exactly on that subset, so a selective
filter never loses results to graph traversal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

DEFAULT_EXACT_MAX = 50_000
HNSW_M = 32
HNSW_EF_SEARCH = 256  # recall@10 >= 0.996 at 10k and 100k, p50 3.7 ms at 100k (bench_query)
HNSW_EF_CONSTRUCTION = 80
SUBSET_EXACT_MAX = 4096  # below this many allowed rows, numpy on the subset beats any index


@dataclass
class VectorIndex:
    vectors: np.ndarray  # (n, d) float32, rows L2-normalised
    kind: str = "flat"
    index: faiss.Index | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, row indices) per query; rows excluded by mask never appear.
        Missing results are padded with index -1 and score -inf."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        nq = queries.shape[0]
        if self.size == 0 or k <= 0:
            return np.full((nq, max(k, 0)), -np.inf, np.float32), np.full(
                (nq, max(k, 0)), -1, np.int64
            )
        if mask is not None:
            rows = np.flatnonzero(mask)
            if rows.size == 0:
                return np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64)
            if rows.size <= SUBSET_EXACT_MAX:
                return _exact_subset(self.vectors, rows, queries, k)
            sel = faiss.IDSelectorBatch(rows.astype(np.int64))
            if self.kind == "hnsw":
                params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(HNSW_EF_SEARCH, 2 * k))
            else:
                params = faiss.SearchParameters(sel=sel)
            scores, idx = self.index.search(queries, min(k, rows.size), params=params)
            return _pad(scores, idx, k)
        params = None
        if self.kind == "hnsw":  # per call, not on the shared index: server threads search at once
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        scores, idx = self.index.search(queries, min(k, self.size), params=params)
        return _pad(scores, idx, k)


def _pad(
    scores: np.ndarray, idx: np.ndarray, k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    scores = np.where(idx < 0, -np.inf, scores).astype(np.float32)
    if k is not None and idx.shape[1] < k:
        extra = k - idx.shape[1]
        scores = np.pad(scores, ((0, 0), (0, extra)), constant_values=-np.inf)
        idx = np.pad(idx, ((0, 0), (0, extra)), constant_values=-1)
    return scores, idx


def _exact_subset(
    vectors: np.ndarray, rows: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    sims = queries @ vectors[rows].T
    kk = min(k, rows.size)
    top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
    top_scores = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return _pad(np.take_along_axis(top_scores, order, axis=1), rows[top], k)


def build_index(
    vectors: np.ndarray, *, exact_max: int = DEFAULT_EXACT_MAX, kind: str | None = None
) -> VectorIndex:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    kind = kind or ("flat" if n <= exact_max else "hnsw")
    if kind == "flat":
        index: faiss.Index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    if n:
        index.add(vectors)
    return VectorIndex(vectors=vectors, kind=kind, index=index)


def save_index(vi: VectorIndex, path: Path) -> None:
    """HNSW graphs are worth keeping on disk; flat indexes are rebuilt from the vectors."""
    from artsim.catalog.store import atomic_write_bytes

    atomic_write_bytes(path, faiss.serialize_index(vi.index).tobytes())


def load_index(vectors: np.ndarray, path: Path) -> VectorIndex | None:
    try:
        index = faiss.deserialize_index(np.fromfile(path, dtype=np.uint8))
    except Exception:
        return None
    if index.ntotal != vectors.shape[0] or index.d != vectors.shape[1]:
        return None
    kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
    return VectorIndex(
        vectors=np.ascontiguousarray(vectors, dtype=np.float32), kind=kind, index=index
    )
