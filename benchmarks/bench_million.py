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

  search end to end (`--search-only`, run after the above in a fresh process when vector
  parts are written): Catalog.search(id, where=...) cold and warm, a new filter per query,
  masks alone, memory (anonymous / mapped), then today's dict filter (and with
  --baseline-vectors the vectors decoded from the parts, ~12 GB at 1M)

    python benchmarks/bench_million.py --real /tmp/real-catalog --n 1000000 --out /tmp/million
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from artsim.catalog import MANIFEST, Catalog, store
from artsim.catalog.metadata import typed_columns
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
                **typed_columns(metas),  # as Catalog._write_items writes them
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
    if args.vector_parts:
        # the memmap is the aspect's vector file (store.write_vector_file), as the end of an
        # `artsim index` run writes it: hard-linked under the name of the parts it holds
        listed = [(p, pq.ParquetFile(p).metadata.num_rows) for p in store.list_parts(vec_dir)]
        target = store.vector_file(vec_dir, "global", store.parts_fingerprint(listed))
        os.link(out / "vectors.f32.npy", target)
    manifest["aspects"] = {"global": {**manifest["aspects"]["global"], "count": args.n}}
    manifest["counts"] = {"items": args.n, "failures": 0}
    store.atomic_write_json(out / MANIFEST, manifest)
    return mm


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 1e6


def memory() -> dict[str, float]:
    """This process's memory in MB: resident (anonymous: what it allocated; file: pages of
    mapped files, which the kernel may drop) and the peak resident size."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def measure_search(args) -> dict:
    """`Catalog.search(id, where=...)` end to end on the catalog in --out, in a fresh process
    (so its memory is the search's own): opening, the first search (aspect ids and mapped
    vectors, the saved index, the filter's columns), then p50s with a repeated filter, a new
    filter per query and no filter; the filter masks alone; then today's baselines."""
    from artsim.search import item_mask
    from artsim.search.filters import fields_mask

    faiss.omp_set_num_threads(1)
    out = Path(args.out)
    res: dict = {"memory_start": memory()}
    t = time.perf_counter()
    cat = Catalog.open(out)
    res["open_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    data = cat.aspect("global")
    res["aspect_load_s"] = round(time.perf_counter() - t, 2)
    res["vectors_memory_mapped"] = isinstance(data.vectors["global"], np.memmap)
    t = time.perf_counter()
    cat.vector_index("global")
    res["index_load_s"] = round(time.perf_counter() - t, 2)
    res["memory_opened"] = memory()
    rng = np.random.default_rng(2)
    qids = [cat.ids[i] for i in rng.integers(0, len(cat), args.search_queries)]
    cat.search(qids[-1], k=10)  # the id -> rows map and the first query's pages, untimed

    def timed(query, where) -> tuple[float, list]:
        t0 = time.perf_counter()
        r = cat.search(query, k=10, where=where)
        return (time.perf_counter() - t0) * 1000, r

    where = "year=1600..1650"
    res["filter"] = where
    first_ms, first = timed(qids[0], where)  # reads the year columns
    res["first_filtered_search_ms"] = round(first_ms, 1)
    assert len(first) == 10 and all(1600 <= int(r.metadata["year"]) <= 1650 for r in first)
    warm = [timed(q, where)[0] for q in qids]
    res["filtered_search_repeated_filter_p50_ms"] = round(float(np.median(warm)), 2)
    res["filtered_search_repeated_filter_p95_ms"] = round(float(np.percentile(warm, 95)), 2)
    lows = rng.integers(1300, 1900, len(qids))
    new = [timed(q, f"year={lo}..{lo + 50}")[0] for q, lo in zip(qids, lows, strict=True)]
    res["filtered_search_new_filter_p50_ms"] = round(float(np.median(new)), 2)
    plain = [timed(q, None)[0] for q in qids]
    res["search_no_filter_p50_ms"] = round(float(np.median(plain)), 2)
    res["filter_kept"] = int(item_mask(cat, where).sum())
    # the masks alone: a new year range (columns already read), a text filter cold and warm
    masks = []
    for lo in lows[:20]:
        t = time.perf_counter()
        fields_mask(cat.fields, parse_where(f"year={lo + 1}..{lo + 40}"))
        masks.append((time.perf_counter() - t) * 1000)
    res["mask_new_year_range_p50_ms"] = round(float(np.median(masks)), 2)
    t = time.perf_counter()
    kept = fields_mask(cat.fields, parse_where(args.text_where))
    res["text_filter"] = args.text_where
    res["mask_text_first_ms"] = round((time.perf_counter() - t) * 1000, 1)
    t = time.perf_counter()
    fields_mask(cat.fields, parse_where(args.text_where + "x"))
    res["mask_text_new_value_ms"] = round((time.perf_counter() - t) * 1000, 1)
    res["text_filter_kept"] = int(kept.sum()) if kept is not None else None
    res["memory_after_searches"] = memory()
    (out / "bench_million_search.json").write_text(json.dumps(res, indent=2))  # before baselines
    # today's code, same process: the filter over parsed dicts, and the vectors decoded
    t = time.perf_counter()
    ref = filter_mask(cat._metadata, parse_where(where))
    res["baseline_filter_python_dicts_ms"] = round((time.perf_counter() - t) * 1000, 1)
    assert ref is not None and (ref == item_mask(cat, where)).all()
    if args.baseline_vectors:
        model_key = cat.manifest["aspects"]["global"]["model"]
        folder = out / "vectors" / "global" / model_key.replace("/", "_")
        t = time.perf_counter()
        table = store.read_parts(folder)
        assert table is not None
        full = store.column_to_vectors(table.column("vec_global"), data.vectors["global"].shape[1])
        res["baseline_vectors_decoded_s"] = round(time.perf_counter() - t, 1)
        assert np.array_equal(full[:1000], data.vectors["global"][:1000])
        del table
        res["memory_baseline_vectors_decoded"] = memory()
    res["memory_end"] = memory()
    return res


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
    ap.add_argument(
        "--search-only",
        action="store_true",
        help="only measure Catalog.search end to end on the catalog in --out (its vector parts, "
        "vector file and saved index written by an earlier run)",
    )
    ap.add_argument("--search-queries", type=int, default=60, help="queries per end-to-end p50")
    ap.add_argument("--text-where", default="school=dutch", help="a text filter to time")
    ap.add_argument(
        "--baseline-vectors",
        action="store_true",
        help="also decode every vector from the parts as before (5.6 GB of RAM at 1M)",
    )
    args = ap.parse_args()
    if args.search_only:
        res = measure_search(args)
        print(json.dumps(res, indent=2))
        (Path(args.out) / "bench_million_search.json").write_text(json.dumps(res, indent=2))
        return
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
    if args.vector_parts:  # end to end through Catalog.search, in a fresh process
        del cat, vi, mm
        cmd = [sys.executable, __file__, "--search-only", "--real", args.real, "--out", str(out)]
        cmd += ["--search-queries", str(args.search_queries), "--text-where", args.text_where]
        subprocess.run(cmd + (["--baseline-vectors"] if args.baseline_vectors else []), check=True)


if __name__ == "__main__":
    main()
