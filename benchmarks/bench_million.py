"""A million-painting catalog: index build within budgets, query latency, recall, opening, filters.

Vectors: the real global vectors of a catalog of the sample data (NGA + WikiArt + People-Art
indexed with the default offline model, `--real`), plus synthetic vectors that follow their
distribution, so that neighbourhoods look like real ones:

    anchor  a  = a random real vector
    partner b  = one of a's 20 nearest real neighbours (c, a second one, for a third of rows)
    x = w_a·a + w_b·b (+ w_c·c), weights ~ Dirichlet(3, 1[, 1]) so the anchor dominates
    x += N(0, (noise · sigma_j)^2) per dimension j, sigma_j = the real vectors' std of dim j
    x /= |x|

Each synthetic row copies its anchor's metadata and gets a year in 1300..1950 (so that
`--where year=1600..1650` keeps ~8%). Rows are generated in chunks and written both as
catalog Parquet parts (items, vectors/global) and to a float32 memory-mapped file used for
the index build and the exact ground truth, so peak memory stays near the index's size.

Measured (medians; one query at a time, k=10, faiss on 1 thread as a server thread would):
  build: the index chosen by artsim.search.ann within --max-index-memory / --max-query-ms
  query p50 / p95 and recall@10 against exact search on held-out queries (fresh synthetic
  vectors not in the catalog, ground truth by streaming exact search over all rows)
  index RAM: the serialised index size, and the process RSS growth when loading it
  open: Catalog.open of the 1M catalog, then loading the saved index
  filter + search: --where year=1600..1650 as a mask (today's filter over Python dicts, and
  the same mask from pyarrow compute on the items' Parquet), then the masked k-NN search

    python benchmarks/bench_million.py --real /tmp/real-catalog --n 1000000 --out /tmp/million
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from artsim.catalog import MANIFEST, Catalog, store
from artsim.search.ann import (
    build_within_budget,
    exact_top,
    format_bytes,
    index_bytes,
    recall_at,
)
from artsim.search.filters import filter_mask, parse_where
from artsim.search.index import load_index, save_index

CHUNK = 50_000


def real_vectors(catalog: Path) -> tuple[np.ndarray, list[str], list[dict]]:
    cat = Catalog.open(catalog)
    data = cat.aspect("global")
    vecs = data.vectors["global"].astype(np.float32)
    metas = [cat.metadata(i) for i in data.item_ids]
    return vecs, list(data.item_ids), metas


def neighbours(real: np.ndarray, k: int = 20) -> np.ndarray:
    nn = exact_top(real, real, k + 1)
    return nn[:, 1:]


def synth_chunk(
    real: np.ndarray, nn: np.ndarray, sigma: np.ndarray, m: int, noise: float, rng
) -> tuple[np.ndarray, np.ndarray]:
    """m synthetic vectors (and their anchor rows): convex mixes of a real vector and one or
    two of its real neighbours, plus per-dimension Gaussian noise, re-normalised."""
    a = rng.integers(0, real.shape[0], m)
    b = nn[a, rng.integers(0, nn.shape[1], m)]
    c = nn[a, rng.integers(0, nn.shape[1], m)]
    three = rng.random(m) < 1 / 3
    w = rng.dirichlet((3.0, 1.0, 1.0), m).astype(np.float32)
    w[~three, 1] += w[~three, 2]
    w[~three, 2] = 0
    x = w[:, :1] * real[a] + w[:, 1:2] * real[b] + w[:, 2:3] * real[c]
    x += noise * sigma * rng.standard_normal(x.shape, dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), a


def write_catalog(args, real, real_ids, real_meta, nn, sigma, rng) -> np.memmap:
    """Catalog folder (manifest copied from the real catalog, items and vector parts) plus
    the float32 memmap of all rows."""
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "items").mkdir(parents=True)
    manifest = store.read_json(Path(args.real) / MANIFEST)
    model_key = manifest["aspects"]["global"]["model"]
    vec_dir = out / "vectors" / "global" / model_key.replace("/", "_")
    d = real.shape[1]
    mm = np.lib.format.open_memmap(out / "vectors.f32.npy", "w+", np.float32, (args.n, d))
    for start in range(0, args.n, CHUNK):
        m = min(CHUNK, args.n - start)
        if start == 0:  # the real rows first
            r = min(m, real.shape[0])
            sx, sa = synth_chunk(real, nn, sigma, m - r, args.noise, rng)
            x, anchors = np.concatenate([real[:r], sx]), np.concatenate([np.arange(r), sa])
        else:
            x, anchors = synth_chunk(real, nn, sigma, m, args.noise, rng)
        mm[start : start + m] = x
        ids = [
            real_ids[start + i] if start + i < real.shape[0] else f"synthetic-{start + i:07d}"
            for i in range(m)
        ]
        years = rng.integers(1300, 1951, m)
        metas = [
            json.dumps({**real_meta[a], "year": int(y), "anchor": real_ids[a]})
            for a, y in zip(anchors, years, strict=True)
        ]
        items = pa.table(
            {
                "id": ids,
                "image": [f"/synthetic/{i}.jpg" for i in ids],
                "width": pa.array(np.full(m, 640), pa.int32()),
                "height": pa.array(np.full(m, 480), pa.int32()),
                "metadata": metas,
                "added": ["2026-12-01T00:00:00Z"] * m,
            }
        )
        store.atomic_write_table(store.next_part_path(out / "items"), items)
        if not args.vector_parts:
            print(f"  wrote {start + m:,} rows", flush=True)
            continue
        vecs = pa.table(
            {
                "item_id": ids,
                "row_id": ids,
                "info": [""] * m,
                "vec_global": store.vector_column(x),
            }
        )
        store.atomic_write_table(store.next_part_path(vec_dir), vecs)
        print(f"  wrote {start + m:,} rows", flush=True)
    mm.flush()
    manifest["aspects"] = {"global": {**manifest["aspects"]["global"], "count": args.n}}
    manifest["counts"] = {"items": args.n, "failures": 0}
    store.atomic_write_json(out / MANIFEST, manifest)
    return mm


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--real", required=True, help="catalog of the sample data (real vectors)")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--out", required=True, help="folder for the generated catalog")
    ap.add_argument("--noise", type=float, default=0.25, help="noise, in real per-dim stds")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--max-index-memory", default="2GB")
    ap.add_argument("--max-query-ms", type=float, default=5.0)
    ap.add_argument(
        "--no-vector-parts",
        dest="vector_parts",
        action="store_false",
        help="skip writing vectors/global Parquet parts (5.6 GB of zstd at 1M; the index is "
        "built from the memmap either way)",
    )
    ap.add_argument(
        "--train", type=int, default=100_000, help="IVF training sample (sets nlist ~ train/39)"
    )
    ap.add_argument("--reuse", action="store_true", help="reuse a catalog written before")
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    out = Path(args.out)
    real, real_ids, real_meta = real_vectors(Path(args.real))
    sigma = real.std(axis=0)
    nn = neighbours(real)
    d = real.shape[1]
    print(f"faiss {faiss.__version__}; {real.shape[0]:,} real vectors, dim {d}; n={args.n:,}")
    t = time.perf_counter()
    if args.reuse and (out / "vectors.f32.npy").is_file():
        mm = np.load(out / "vectors.f32.npy", mmap_mode="r")
    else:
        mm = write_catalog(args, real, real_ids, real_meta, nn, sigma, rng)
    print(f"generated in {time.perf_counter() - t:.0f} s")
    # held-out queries: fresh synthetic vectors (not in the catalog), exact ground truth
    queries, _ = synth_chunk(real, nn, sigma, args.queries, args.noise, np.random.default_rng(1))
    t = time.perf_counter()
    truth = exact_top(mm, queries, 10)
    print(f"exact ground truth for {len(queries)} queries in {time.perf_counter() - t:.0f} s")

    t = time.perf_counter()
    vi, report = build_within_budget(
        mm,
        max_index_memory=args.max_index_memory,
        max_query_ms=args.max_query_ms,
        keep_vectors=False,
        train_max=args.train,
        log=print,
    )
    build_s = time.perf_counter() - t
    index_path = out / "index" / "global-global.faiss"
    save_index(vi, index_path)
    del vi

    # reopen as a user would: the catalog, then the saved index
    t = time.perf_counter()
    cat = Catalog.open(out)
    open_s = time.perf_counter() - t
    rss0 = current_rss_mb()
    t = time.perf_counter()
    vi = load_index(None, index_path)
    load_s = time.perf_counter() - t
    rss_index = current_rss_mb() - rss0

    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        _, idx = vi.search(q[None], 10)
        times.append((time.perf_counter() - t0) * 1000)
        found.append(idx[0])
    rec = recall_at(np.array(found), truth)

    where = "year=1600..1650"
    t = time.perf_counter()
    mask_py = filter_mask(cat._metadata, parse_where(where))
    filter_py_ms = (time.perf_counter() - t) * 1000
    # the same mask from the items' Parquet (metadata JSON never parsed into dicts)
    items = pa.concat_tables(
        [pq.read_table(p, columns=["metadata"]) for p in store.list_parts(out / "items")]
    )
    t = time.perf_counter()
    meta_col = items.column("metadata").combine_chunks()
    year = pc.cast(pc.extract_regex(meta_col, r'"year": (?P<y>-?\d+)').field("y"), pa.int32())
    mask_pa = pc.and_(pc.greater_equal(year, 1600), pc.less_equal(year, 1650))
    mask_pa = mask_pa.to_numpy(zero_copy_only=False).astype(bool)
    filter_pa_ms = (time.perf_counter() - t) * 1000
    assert (mask_pa == mask_py).all(), "pyarrow mask differs from the Python filter"
    ftimes, frec = [], []
    for q in queries[:50]:
        t0 = time.perf_counter()
        _, idx = vi.search(q[None], 10, mask_py)
        ftimes.append((time.perf_counter() - t0) * 1000)
        allowed = np.flatnonzero(mask_py)
        ex = allowed[np.argsort(-(mm[allowed] @ q))[:10]] if len(frec) < 20 else None
        if ex is not None:
            frec.append(len(set(idx[0]) & set(ex)) / 10)
        assert mask_py[idx[0][idx[0] >= 0]].all()
    res = {
        "n": args.n,
        "dim": d,
        "real_vectors": int(real.shape[0]),
        "chosen": report.chosen.describe(),
        "trials": [tr.describe() for tr in report.trials],
        "build_s": round(build_s, 1),
        "query_p50_ms": round(float(np.median(times)), 3),
        "query_p95_ms": round(float(np.percentile(times, 95)), 3),
        "recall_at_10_heldout": round(rec, 4),
        "index_bytes": index_bytes(vi.index),
        "index_rss_mb": round(rss_index, 1),
        "open_catalog_s": round(open_s, 2),
        "load_index_s": round(load_s, 2),
        "filter": where,
        "filter_kept": int(mask_py.sum()),
        "filter_python_dicts_ms": round(filter_py_ms, 1),
        "filter_pyarrow_ms": round(filter_pa_ms, 1),
        "filtered_search_p50_ms": round(float(np.median(ftimes)), 3),
        "filtered_recall_at_10": round(float(np.mean(frec)), 4),
        "max_rss_mb": round(rss_mb(), 0),
    }
    print(json.dumps(res, indent=2))
    print(f"index {format_bytes(res['index_bytes'])}")
    (out / "bench_million.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
