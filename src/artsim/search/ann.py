"""Approximate nearest-neighbour indexes chosen within budgets, as autofaiss does.

Given the vectors, a memory budget (`max_index_memory`) and a latency budget
(`max_query_ms`, p50 of one query with k=10), candidates are tried from the most accurate
to the most compact:

    Flat                exact; 4·d bytes per vector
    HNSW32              graph over float32 (today's default above 50,000)
    HNSW32_SQfp16       graph over fp16 codes
    HNSW32_SQ8          graph over 8-bit codes
    IVF{nlist},SQ8      inverted lists of 8-bit codes; d bytes per vector
    OPQ{m},IVF{nlist},PQ{m}   rotated product quantisation; m bytes per vector

Those whose estimated size exceeds the memory budget are skipped without building. Each
remaining one is built, its search parameter (efSearch, nprobe) raised until recall@10
against exact search reaches `min_recall` on held-out queries (sampled catalog rows, their
own row excluded, as a search by catalog id does), and its p50 latency measured at that
setting. The first that meets both budgets wins. When none does, `BudgetError` says what
each candidate needed, so the caller knows which budget to raise.

HNSW over a million 1,400-d vectors takes most of an hour to build on two cores, so above
`HNSW_BUILD_MAX` rows HNSW candidates are left out unless asked for (`kinds`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

from artsim.errors import ArtsimError
from artsim.search.index import HNSW_EF_CONSTRUCTION, HNSW_M, VectorIndex

DEFAULT_MIN_RECALL = 0.95
HNSW_BUILD_MAX = 300_000
EF_STEPS = (16, 32, 64, 128, 256, 512, 1024)
NPROBE_STEPS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
TRAIN_MAX = 100_000  # IVF/PQ training sample (faiss wants ~30-256 per centroid)
ADD_CHUNK = 50_000  # rows added per call, so a memory-mapped source is read in slices
KMEANS_NITER = 10
OPQ_NITER = 10  # faiss's 50 rounds take many minutes at 1,400 dims for little recall
OPQ_TRAIN_MAX = 20_000


class BudgetError(ArtsimError):
    """No index meets the budgets; the message says what each candidate needed."""


@dataclass(frozen=True, slots=True)
class Candidate:
    factory: str  # faiss index_factory string
    kind: str  # flat | hnsw | ivf
    memory: int  # estimated bytes once built


@dataclass(slots=True)
class Trial:
    """One candidate as measured: the search parameter reached, its recall and p50."""

    candidate: Candidate
    param: dict[str, int] = field(default_factory=dict)
    recall: float = 0.0
    p50_ms: float = math.inf
    build_s: float = 0.0
    memory: int = 0
    skipped: str = ""  # why it was not built (over the memory budget)

    def describe(self) -> str:
        if self.skipped:
            return f"{self.candidate.factory}: {self.skipped}"
        p = ", ".join(f"{k}={v}" for k, v in self.param.items())
        return (
            f"{self.candidate.factory} ({p}): recall@10 {self.recall:.3f}, p50 {self.p50_ms:.2f} ms, "
            f"{format_bytes(self.memory)}"
        )


@dataclass(slots=True)
class AnnReport:
    chosen: Trial
    trials: list[Trial]
    n: int
    dim: int
    queries: int


def parse_bytes(text: str | int | float | None) -> int | None:
    """'2GB', '500MB', '1.5G', '2GiB' or a number of bytes -> bytes (decimal units)."""
    if text is None or isinstance(text, int | float):
        return None if text is None else int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?)[bB]?\s*", text)
    if not m:
        raise ArtsimError(f"bad memory size {text!r}: expected e.g. 2GB, 500MB or 1.5G")
    base = 1024 if m.group(3) else 1000
    power = " KMGT".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * base**power)


def format_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def nlist_for(n: int, train_max: int = TRAIN_MAX) -> int:
    """About 4·sqrt(n) lists (a power of two), with >= 39 training points per list."""
    if n < 1000:
        return max(1, n // 39)
    return int(min(2 ** round(math.log2(4 * math.sqrt(n))), min(n, train_max) // 39))


def pq_m_for(d: int) -> int:
    """PQ sub-quantisers: ~d/16 (a code of m bytes), a divisor-friendly multiple of 8."""
    return max(8, min(128, (d // 16) // 8 * 8))


def candidates(
    n: int, d: int, kinds: Sequence[str] | None = None, train_max: int = TRAIN_MAX
) -> list[Candidate]:
    """Every index this module can build for n vectors of d dims, best recall first."""
    graph = n * (HNSW_M * 2 * 4 + 16)  # level-0 neighbour lists (int32) plus upper levels
    nlist = nlist_for(n, train_max)
    m = pq_m_for(d)
    opq_d = m * 4  # OPQ rotation reduces to 4 dims per sub-quantiser
    ivf = n * 16 + nlist * d * 4  # ids, direct map (decode by id), centroids
    # above ~200k rows, lists are assigned through a small HNSW over the centroids
    coarse = f"IVF{nlist}_HNSW32" if n > 200_000 else f"IVF{nlist}"
    out = [
        Candidate("Flat", "flat", n * d * 4),
        Candidate(f"HNSW{HNSW_M}", "hnsw", n * d * 4 + graph),
        Candidate(f"HNSW{HNSW_M}_SQfp16", "hnsw", n * d * 2 + graph),
        Candidate(f"HNSW{HNSW_M}_SQ8", "hnsw", n * d + graph + 2 * d * 4),
        Candidate(f"{coarse},SQ8", "ivf", n * d + ivf),
        Candidate(
            f"OPQ{m}_{opq_d},{coarse},PQ{m}",
            "ivf",
            n * m + n * 16 + nlist * opq_d * 4 + d * opq_d * 4 + m * 256 * (opq_d // m) * 4,
        ),
    ]
    if kinds:
        return [c for c in out if c.kind in kinds]
    if n > HNSW_BUILD_MAX:
        out = [c for c in out if c.kind != "hnsw"]
    if nlist < 4:  # too few rows for inverted lists
        out = [c for c in out if c.kind != "ivf"]
    return out


def exact_top(
    vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = ADD_CHUNK
) -> np.ndarray:
    """Exact top-k rows by inner product, streaming `vectors` in chunks (a memmap is fine)."""
    nq = queries.shape[0]
    best_s = np.full((nq, k), -np.inf, np.float32)
    best_i = np.full((nq, k), -1, np.int64)
    for start in range(0, vectors.shape[0], chunk):
        block = np.asarray(vectors[start : start + chunk], dtype=np.float32)
        sims = queries @ block.T
        kk = min(k, block.shape[0])
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        s = np.concatenate([best_s, np.take_along_axis(sims, top, axis=1)], axis=1)
        i = np.concatenate([best_i, top + start], axis=1)
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(s, order, axis=1), np.take_along_axis(i, order, axis=1)
    return best_i


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true neighbours that were found."""
    return float(
        np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def held_out(
    vectors: np.ndarray, n_queries: int, k: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query rows, query vectors, true top-k excluding the query row) for recall."""
    n = vectors.shape[0]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n_queries, n), replace=False))
    queries = np.asarray(vectors[rows], dtype=np.float32)
    top = exact_top(vectors, queries, k + 1)
    return rows, queries, _drop_self(top, rows, k)


def _drop_self(top: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    return np.stack([t[t != r][:k] for t, r in zip(top, rows, strict=True)])


def build_within_budget(
    vectors: np.ndarray,
    *,
    max_index_memory: int | str | None = None,
    max_query_ms: float | None = None,
    min_recall: float = DEFAULT_MIN_RECALL,
    n_queries: int = 200,
    kinds: Sequence[str] | None = None,
    keep_vectors: bool = True,
    train_max: int = TRAIN_MAX,
    seed: int = 0,
    log: Any = None,
) -> tuple[VectorIndex, AnnReport]:
    """The first index (most accurate first) whose memory, p50 latency and recall@10 meet
    the budgets. `vectors` may be a numpy memmap: it is read in slices, never copied whole
    (unless keep_vectors, which keeps a float32 copy on the VectorIndex for callers that
    re-rank)."""
    budget = parse_bytes(max_index_memory)
    n, d = vectors.shape
    if n == 0:
        raise ArtsimError("no vectors to index")
    say = log or (lambda msg: None)
    q_rows, queries, truth = held_out(vectors, n_queries, seed=seed)
    trials: list[Trial] = []
    for cand in candidates(n, d, kinds, train_max):
        if budget is not None and cand.memory > budget:
            trials.append(
                Trial(cand, memory=cand.memory, skipped=f"needs {format_bytes(cand.memory)}")
            )
            continue
        say(f"building {cand.factory} ({format_bytes(cand.memory)} estimated)")
        t0 = time.perf_counter()
        index = _build(cand, vectors, seed, train_max)
        trial = Trial(cand, build_s=time.perf_counter() - t0, memory=index_bytes(index))
        vi = VectorIndex(
            vectors=None, kind=cand.kind, index=index, params={"factory": cand.factory}
        )
        _tune(vi, trial, q_rows, queries, truth, min_recall, max_query_ms)
        trials.append(trial)
        say("  " + trial.describe())
        if (
            trial.recall >= min_recall
            and (max_query_ms is None or trial.p50_ms <= max_query_ms)
            and (budget is None or trial.memory <= budget)
        ):
            vi.params.update(trial.param, recall_at_10=round(trial.recall, 4))
            vi.params["p50_ms"] = round(trial.p50_ms, 3)
            if keep_vectors:
                vi.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            return vi, AnnReport(trial, trials, n, d, len(q_rows))
        del index, vi
    raise BudgetError(_explain(trials, n, d, budget, max_query_ms, min_recall))


def _build(cand: Candidate, vectors: np.ndarray, seed: int, train_max: int) -> faiss.Index:
    n, d = vectors.shape
    index = faiss.index_factory(d, cand.factory, faiss.METRIC_INNER_PRODUCT)
    if cand.kind == "hnsw":
        hnsw = faiss.downcast_index(index)
        assert isinstance(hnsw, faiss.IndexHNSW), cand.factory  # HNSW<M>[_codes]: no wrapper
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    if not index.is_trained:
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, size=min(n, train_max), replace=False))
        train = np.ascontiguousarray(vectors[sample], dtype=np.float32)
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:  # k-means on the inner product of unit vectors: spherical
            ivf.cp.spherical = True
            ivf.cp.seed = seed
            ivf.cp.niter = KMEANS_NITER
        if isinstance(index, faiss.IndexPreTransform):  # OPQ: fewer, smaller rounds
            # chain is a SWIG std::vector (`.at`), typed as a list in faiss's stubs
            opq = faiss.downcast_VectorTransform(index.chain.at(0))  # type: ignore[attr-defined]
            assert isinstance(opq, faiss.OPQMatrix), cand.factory
            opq.niter = OPQ_NITER
            opq.max_train_points = OPQ_TRAIN_MAX
        index.train(train)
        del train
    for start in range(0, n, ADD_CHUNK):
        index.add(np.ascontiguousarray(vectors[start : start + ADD_CHUNK], dtype=np.float32))
    if cand.kind == "ivf":  # rows can be decoded by id (exact search on small filtered subsets)
        faiss.extract_index_ivf(index).make_direct_map()
    return index


def index_bytes(index: faiss.Index) -> int:
    """Size of the index as serialised: codes, graph, lists, centroids (what it holds in RAM)."""
    writer = faiss.VectorIOWriter()
    faiss.write_index(index, writer)
    return int(writer.data.size())


def _tune(
    vi: VectorIndex,
    trial: Trial,
    q_rows: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    min_recall: float,
    max_query_ms: float | None,
) -> None:
    """Smallest efSearch / nprobe reaching min_recall; its recall and p50 go in `trial`."""
    k = truth.shape[1]
    if vi.kind == "flat":
        steps: Sequence[dict[str, int]] = [{}]
    elif vi.kind == "hnsw":
        steps = [{"efSearch": ef} for ef in EF_STEPS]
    else:
        nlist = faiss.extract_index_ivf(vi.index).nlist
        steps = [{"nprobe": p} for p in NPROBE_STEPS if p <= nlist] or [{"nprobe": nlist}]
    for step in steps:
        vi.params.update(step)
        _, idx = vi.search(queries, k + 1)  # batch search for recall: fast
        trial.param, trial.recall = dict(step), recall_at(_drop_self(idx, q_rows, k), truth)
        if trial.recall >= min_recall:
            break
    trial.p50_ms = p50_latency(vi, queries, k)


def p50_latency(vi: VectorIndex, queries: np.ndarray, k: int = 10, repeat: int = 1) -> float:
    """Median wall time of one query at a time (how a user searches), in ms."""
    times = []
    for _ in range(repeat):
        for q in queries:
            t = time.perf_counter()
            vi.search(q[None], k)
            times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def _explain(
    trials: list[Trial],
    n: int,
    d: int,
    budget: int | None,
    max_query_ms: float | None,
    min_recall: float,
) -> str:
    asked = []
    if budget is not None:
        asked.append(f"--max-index-memory {format_bytes(budget)}")
    if max_query_ms is not None:
        asked.append(f"--max-query-ms {max_query_ms:g}")
    lines = [
        f"no index over {n:,} vectors of {d} dims meets {' and '.join(asked) or 'the budgets'} "
        f"at recall@10 >= {min_recall:g}. Measured:"
    ]
    lines += [f"  {t.describe()}" for t in trials]
    ok = [t for t in trials if not t.skipped and t.recall >= min_recall]
    if ok:
        fastest = min(ok, key=lambda t: t.p50_ms)
        smallest = min(ok, key=lambda t: t.memory)
        lines.append(
            f"What can be met: --max-query-ms {math.ceil(fastest.p50_ms * 1.2 * 10) / 10:g} "
            f"with {fastest.candidate.factory} ({format_bytes(fastest.memory)}), or "
            f"--max-index-memory {format_bytes(smallest.memory * 1.05)} with "
            f"{smallest.candidate.factory} (p50 {smallest.p50_ms:.2f} ms)."
        )
    else:
        built = [t for t in trials if not t.skipped]
        skipped = [t for t in trials if t.skipped]
        if skipped:
            need = min(skipped, key=lambda t: t.memory)
            lines.append(
                f"What can be met: --max-index-memory {format_bytes(need.memory * 1.05)} "
                f"lets {need.candidate.factory} be tried"
                + (" (the smaller ones miss the recall target)" if built else "")
                + "."
            )
    return "\n".join(lines)


def build_catalog_index(
    catalog: Any,
    *,
    max_index_memory: int | str | None = None,
    max_query_ms: float | None = None,
    min_recall: float = DEFAULT_MIN_RECALL,
    aspect: str = "global",
    name: str | None = None,
    log: Any = None,
) -> AnnReport:
    """Choose, build and save the catalog's index for one aspect within the budgets
    (`artsim index ... --max-index-memory 2GB --max-query-ms 5`). The index is saved as
    index/<aspect>-<name>.faiss with its search parameter, and used by later searches until
    new paintings are added (then `artsim index` with the budgets builds it again)."""
    from artsim.search.index import save_index

    name = name or aspect
    data = catalog.aspect(aspect)
    vectors = data.vectors[name]
    vi, report = build_within_budget(
        vectors,
        max_index_memory=max_index_memory,
        max_query_ms=max_query_ms,
        min_recall=min_recall,
        log=log,
    )
    vi.params["budget"] = {
        "max_index_memory": parse_bytes(max_index_memory),
        "max_query_ms": max_query_ms,
        "min_recall": min_recall,
    }
    save_index(vi, catalog.path / "index" / f"{aspect}-{name}.faiss")
    data.indexes[name] = vi
    return report
