"""Nearest-neighbour index over L2-normalised vectors (cosine = inner product).

Exact search (FAISS IndexFlatIP) up to `exact_max` vectors; above that, HNSW with an
efSearch chosen so recall@10 against exact stays >= 0.99 (see benchmarks/bench_query.py).
Filtered searches over a small subset are done exactly on that subset, so a selective
filter never loses results to graph traversal.

Indexes chosen within memory and latency budgets (IVF-SQ8, IVF-PQ with OPQ, HNSW with SQ8
or fp16) are built by `artsim.search.ann`; they arrive here with their tuned search
parameter (`params`: efSearch or nprobe) and may hold no float32 copy of the vectors
(`vectors is None`), in which case subset search decodes rows from the index itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

DEFAULT_EXACT_MAX = 50_000
HNSW_M = 32
HNSW_EF_SEARCH = 256  # recall@10 >= 0.996 at 10k and 100k, p50 3.7 ms at 100k (bench_query)
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_FILTER_MAX = 1024  # caps the widened walk of a filtered HNSW search
SUBSET_EXACT_MAX = 4096  # below this many allowed rows, numpy on the subset beats any index


@dataclass
class VectorIndex:
    vectors: np.ndarray | None  # (n, d) float32, rows L2-normalised; None: only in the index
    kind: str = "flat"  # flat | hnsw | ivf
    index: faiss.Index = field(kw_only=True, repr=False)
    params: dict[str, Any] = field(default_factory=dict)  # efSearch / nprobe, factory string

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0]) if self.vectors is not None else int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors is not None else int(self.index.d)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """Vectors of the given rows: the stored copy, else decoded from the index."""
        if self.vectors is not None:
            return self.vectors[rows]
        return self.index.reconstruct_batch(np.asarray(rows, dtype=np.int64))

    def _params(
        self, k: int, sel: faiss.IDSelector | None = None, fraction: float = 1.0
    ) -> faiss.SearchParameters | None:
        """Per-call search parameters (never set on the shared index: server threads search
        at once). A filter keeping `fraction` of the rows widens IVF probing in proportion,
        so k allowed rows are still found.

        The keyword constructors are faiss's Python wrapper (it keeps `sel` alive with the
        parameters); faiss's stubs declare only the bare SWIG constructors, hence the ignores."""
        if self.kind == "hnsw":
            ef = max(int(self.params.get("efSearch", HNSW_EF_SEARCH)), k)
            if sel is not None:
                # the graph walk visits excluded rows too: widen it as the filter narrows
                # (recall@10 at 8 % kept: 0.85 with a fixed efSearch, bench in docs/scale.md)
                base = max(ef, 2 * k)  # the cap never narrows it below what a large k needs
                ef = max(base, min(HNSW_EF_FILTER_MAX, int(np.ceil(base / max(fraction, 1e-9)))))
            return faiss.SearchParametersHNSW(  # type: ignore[attr-defined]  # not in faiss's stubs
                sel=sel, efSearch=ef
            )
        if self.kind == "ivf":
            ivf = faiss.extract_index_ivf(self.index)
            nprobe = int(self.params.get("nprobe", 16))
            nprobe = min(ivf.nlist, int(np.ceil(nprobe / max(fraction, 1e-9))))
            p = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)  # type: ignore[call-arg]
            if isinstance(self.index, faiss.IndexPreTransform):  # OPQ rotation in front
                outer = faiss.SearchParametersPreTransform(index_params=p)  # type: ignore[call-arg]
                outer.keep_alive = p  # type: ignore[attr-defined]  # SWIG does not own index_params
                return outer
            return p
        return faiss.SearchParameters(sel=sel) if sel is not None else None  # type: ignore[call-arg]

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
            kept = int(np.count_nonzero(mask))  # no row list unless it is small (1M rows: 5 ms)
            if kept == 0:
                return np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64)
            if kept <= SUBSET_EXACT_MAX:
                rows = np.flatnonzero(mask)
                return _exact_subset(self.rows(rows), rows, queries, k)
            # a bitmap, not IDSelectorBatch: building Batch's hash set of 78k rows took
            # 41 ms at 1M rows, the bitmap 0.1 ms (bench_million); `bits` must outlive search
            bits = np.packbits(np.asarray(mask, dtype=bool), bitorder="little")
            sel = faiss.IDSelectorBitmap(int(mask.size), faiss.swig_ptr(bits))
            params = self._params(k, sel, kept / self.size)
            scores, idx = self.index.search(queries, min(k, kept), params=params)
            return _pad(scores, idx, k)
        params = self._params(k)
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
    subset: np.ndarray, rows: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    sims = queries @ subset.T
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


def index_kind(index: faiss.Index) -> str:
    """flat, hnsw or ivf, looking through OPQ pre-transforms and refinement layers."""
    if isinstance(index, faiss.IndexPreTransform):
        return index_kind(faiss.downcast_index(index.index))
    if isinstance(index, faiss.IndexRefine):
        return index_kind(faiss.downcast_index(index.base_index))
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    return "flat"


def save_index(vi: VectorIndex, path: Path) -> None:
    """HNSW graphs and budgeted indexes are worth keeping on disk (with their tuned search
    parameter in a JSON sidecar); flat indexes are rebuilt from the vectors. The sidecar is
    written last, so a crash in between leaves an index that `load_index` ignores."""
    from artsim.catalog.store import atomic_write_bytes, atomic_write_json

    sidecar = path.with_suffix(".json")
    sidecar.unlink(missing_ok=True)
    # written straight to disk, not serialised in memory: a 1M-row index is over a GB
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        faiss.write_index(vi.index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if vi.params:
        atomic_write_json(sidecar, vi.params)
    else:
        atomic_write_bytes(sidecar, b"{}\n")


def load_index(vectors: np.ndarray | None, path: Path, *, mmap: bool = False) -> VectorIndex | None:
    """A saved index, or None when it is missing, unreadable or does not match `vectors`
    (then the caller rebuilds). mmap: map the file instead of reading it (large indexes)."""
    from artsim.catalog.store import read_json

    sidecar = path.with_suffix(".json")
    try:
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        index = faiss.read_index(str(path), flags)
        params = read_json(sidecar) if sidecar.is_file() else {}
    except Exception:
        return None
    if vectors is not None and (index.ntotal != vectors.shape[0] or index.d != vectors.shape[1]):
        return None
    kind = index_kind(index)
    if kind == "ivf" and not params:
        return None  # written without its sidecar (crash): nprobe unknown, rebuild
    if vectors is not None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return VectorIndex(vectors=vectors, kind=kind, index=index, params=params)
