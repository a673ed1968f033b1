"""Cost of photo queries (issue 13): indexing time and size of the local features, and the
query time of a photo search at 10,000 paintings.

    python benchmarks/bench_photos.py --catalog eval-catalog --data ../shared/data

1. Indexing: on the same images, in one process, alternately: decode + embed (what
   `artsim index` does per painting), and decode + RootSIFT (`catalog/local.py`); the ratio is
   the added indexing time of a stored `local` aspect. Bytes per painting from the parts.
2. Query: the catalog's real vectors and real local features, repeated (with new ids) until
   the catalog holds 10,000 paintings; framed-photo queries (seeded) searched with photo
   auto (localisation, GeM-part shortlist, verification) and photo off; median and p90 ms.
   Every local feature is computed beforehand (`build_local`), as after indexing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from artsim.catalog import Catalog
from artsim.catalog.local import build_local, extract_local, local_store
from artsim.evaluation.groundtruth import load_instance_pairs
from artsim.evaluation.run import framed_queries, gt_index, usable_pairs
from artsim.images import open_image
from artsim.search.index import build_index

REPO = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def indexing_cost(cat: Catalog, n: int) -> dict:
    enc = cat.encoder
    ids = cat.ids[:: max(1, len(cat) // n)][:n]
    t_embed, t_local = [], []
    for i in range(0, len(ids), 16):  # CPU time: the machine is shared (see query timing)
        chunk = ids[i : i + 16]
        t0 = time.process_time()
        ims = [open_image(cat.image_of(x), max_side=enc.preprocess.resize).image for x in chunk]
        enc.embed_images(ims)
        t_embed.append((time.process_time() - t0) / len(chunk))
        t0 = time.process_time()
        for x in chunk:
            extract_local(open_image(cat.image_of(x), max_side=512).image)
        t_local.append((time.process_time() - t0) / len(chunk))
    store = local_store(cat)
    folder = store.folder
    size = sum(f.stat().st_size for f in folder.glob("part-*"))
    return {
        "images": len(ids),
        "embed_ms_per_painting": round(1000 * statistics.median(t_embed), 1),
        "local_ms_per_painting": round(1000 * statistics.median(t_local), 1),
        "added_indexing_time": round(statistics.median(t_local) / statistics.median(t_embed), 3),
        "stored_bytes_per_painting": round(size / max(1, len(store))),
    }


def tile_to(cat: Catalog, n: int) -> None:
    """Repeat the catalog's paintings that have local features (vectors and features) under
    new ids up to n paintings."""
    data = cat.aspect("global")
    store = local_store(cat)
    all_ids = list(cat.ids)
    orig = [i for i in all_ids if i in store]
    base = len(orig)
    reps = int(np.ceil(n / base))
    new_ids = [f"{c}~{i}" if c else i for c in range(reps) for i in orig][:n]
    pos = {x: j for j, x in enumerate(all_ids)}
    src = [pos[orig[i % base]] for i in range(len(new_ids))]
    orig = all_ids
    cat._ids = new_ids
    cat._images = [cat._images[s] for s in src]
    cat._metadata = [cat._metadata[s] for s in src]
    cat._sizes = [cat._sizes[s] for s in src]
    cat._pos = {x: j for j, x in enumerate(new_ids)}
    row_of = {it: r for r, it in enumerate(data.item_ids)}
    rows = [row_of[orig[s]] for s in src]
    data.item_ids = list(new_ids)
    data.row_ids = list(new_ids)
    data.info = [data.info[r] for r in rows]
    data.vectors = {k: v[rows] for k, v in data.vectors.items()}
    data.row_pos = np.arange(len(new_ids))
    data._by_item = None
    data.indexes = {"global": build_index(data.vectors["global"], kind="flat")}
    for j, x in enumerate(new_ids):
        store._where.setdefault(x, store._where[orig[src[j]]])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalog", type=Path, default=REPO / "eval-catalog")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--paintings", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--index-images", type=int, default=64)
    ap.add_argument(
        "--no-build",
        action="store_true",
        help="tile only the paintings that already have local features instead of computing all",
    )
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "photos_bench.json")
    args = ap.parse_args()
    import torch

    out: dict = {"cpu": os.popen("lscpu | grep 'Model name'").read().split(":")[-1].strip(),
                 "torch_threads": torch.get_num_threads()}  # fmt: skip
    cat = Catalog.open(args.catalog)
    if not args.no_build:
        log("local features for every painting (as after indexing)")
        t0 = time.perf_counter()
        n_new = build_local(cat)
        out["build_local"] = {"computed": n_new, "seconds": round(time.perf_counter() - t0, 1)}
    out["indexing"] = indexing_cost(cat, args.index_images)
    log(json.dumps(out["indexing"]))
    path_to_id, _ = gt_index(cat, args.data)
    pairs = usable_pairs(load_instance_pairs(args.data / "groundtruth"), set(path_to_id))
    pairs = pairs[:: max(1, len(pairs) // args.queries)][: args.queries]
    queries = framed_queries(pairs, set(path_to_id), args.data, seed=0)
    out["tiled_from"] = len(local_store(cat))
    tile_to(cat, args.paintings)
    log(f"{len(cat)} paintings; {len(queries)} framed-photo queries")
    import io

    files = []
    for q in queries.values():  # as a user would send them: JPEG bytes
        buf = io.BytesIO()
        q.image.save(buf, "JPEG", quality=90)
        files.append(buf.getvalue())
    cat.search(files[0], k=10)  # warm-up: model, norms
    times: dict[str, list[float]] = {"auto": [], "off": [], "auto_cpu": [], "off_cpu": []}
    for data in files:
        for mode in ("off", "auto"):
            # CPU time as well as wall time: on a shared, overloaded machine the wall time
            # mostly measures waiting; CPU time (all threads) bounds an idle machine's wall time
            t0, c0 = time.perf_counter(), time.process_time()
            cat.search(data, k=10, photo=mode)
            times[mode].append(1000 * (time.perf_counter() - t0))
            times[f"{mode}_cpu"].append(1000 * (time.process_time() - c0))
    out["query"] = {
        "paintings": len(cat),
        "queries": len(files),
        **{
            f"{m}_ms": {
                "p50": round(statistics.median(v), 1),
                "p90": round(float(np.percentile(v, 90)), 1),
            }
            for m, v in times.items()
        },
    }
    log(json.dumps(out["query"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
