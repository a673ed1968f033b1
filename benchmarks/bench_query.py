"""Query latency of the search index with the catalog already open (synthetic vectors).

Vectors are drawn from a mixture of 2,000 Gaussian clusters on the unit sphere (real image
embeddings are clustered; uniform random vectors would make every neighbour equidistant),
queries are fresh draws from the same mixture. Reports p50/p95 latency of one query (k=10)
and recall@10 against exact search for approximate indexes.

    python benchmarks/bench_query.py --sizes 10000 100000 1000000 --dim 1280
"""

from __future__ import annotations

import argparse
import json
import time

import faiss
import numpy as np

from artsim.search.index import HNSW_EF_SEARCH, HNSW_M, build_index


def mixture(
    n: int, d: int, rng: np.random.Generator, centers: np.ndarray, spread: float = 0.6
) -> np.ndarray:
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        idx = rng.integers(0, len(centers), m)
        x = centers[idx] + spread * rng.standard_normal((m, d), dtype=np.float32) / np.sqrt(d)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def latency(fn, queries: np.ndarray) -> tuple[float, float, np.ndarray]:
    times, ids = [], []
    for q in queries:
        t = time.perf_counter()
        _, i = fn(q[None])
        times.append((time.perf_counter() - t) * 1000)
        ids.append(i[0])
    return float(np.percentile(times, 50)), float(np.percentile(times, 95)), np.array(ids)


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(
        np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact, strict=True)])
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument(
        "--dim",
        type=int,
        default=1400,
        help="1400 = the default encoder (efficientnet-lite2, gem+mid)",
    )
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--hnsw-max",
        type=int,
        default=200_000,
        help="largest size to build HNSW for (build is slow)",
    )
    ap.add_argument(
        "--ef-search",
        type=int,
        nargs="+",
        default=sorted({64, 128, 256, 512, HNSW_EF_SEARCH}),
        help="HNSW efSearch values to measure (recall against latency)",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((2000, args.dim), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    rows = []
    print(f"faiss {faiss.__version__}, threads {faiss.omp_get_max_threads()}, dim {args.dim}")
    for n in args.sizes:
        xb = mixture(n, args.dim, rng, centers)
        xq = mixture(args.queries, args.dim, rng, centers)
        flat = build_index(xb, kind="flat")
        p50, p95, exact = latency(lambda q, f=flat: f.search(q, 10), xq)
        rows.append(
            {
                "n": n,
                "index": "exact (IndexFlatIP)",
                "p50_ms": p50,
                "p95_ms": p95,
                "recall@10": 1.0,
                "build_s": 0.0,
                "memory_mb": xb.nbytes / 1e6,
            }
        )
        print(json.dumps(rows[-1]))
        if n <= args.hnsw_max:
            t = time.perf_counter()
            hnsw = build_index(xb, kind="hnsw")
            build = time.perf_counter() - t
            for ef in args.ef_search:
                params = faiss.SearchParametersHNSW(efSearch=ef)
                p50, p95, ids = latency(
                    lambda q, h=hnsw, p=params: h.index.search(q, 10, params=p), xq
                )
                rows.append(
                    {
                        "n": n,
                        "index": f"HNSW{HNSW_M} efSearch={ef}"
                        + (" (default)" if ef == HNSW_EF_SEARCH else ""),
                        "p50_ms": p50,
                        "p95_ms": p95,
                        "recall@10": recall(ids, exact),
                        "build_s": build,
                        "memory_mb": (xb.nbytes + n * HNSW_M * 2 * 4) / 1e6,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
        else:
            nlist = int(4 * np.sqrt(n))
            t = time.perf_counter()
            quant = faiss.IndexFlatIP(args.dim)
            ivf = faiss.IndexIVFFlat(quant, args.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            ivf.train(xb[rng.choice(n, min(n, 50 * nlist), replace=False)])
            ivf.add(xb)
            build = time.perf_counter() - t
            for nprobe in (16, 32, 64):
                ivf.nprobe = nprobe
                p50, p95, ids = latency(lambda q, i=ivf: i.search(q, 10), xq)
                rows.append(
                    {
                        "n": n,
                        "index": f"IVF{nlist},Flat nprobe={nprobe}",
                        "p50_ms": p50,
                        "p95_ms": p95,
                        "recall@10": recall(ids, exact),
                        "build_s": build,
                        "memory_mb": xb.nbytes / 1e6,
                    }
                )
                print(json.dumps(rows[-1]))
        del xb, flat
    print(
        "\n| vectors | index | p50 ms | p95 ms | recall@10 | build s | memory MB |\n|---:|---|---:|---:|---:|---:|---:|"
    )
    for r in rows:
        print(
            f"| {r['n']:,} | {r['index']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['recall@10']:.3f} | {r['build_s']:.0f} | {r['memory_mb']:.0f} |"
        )
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
