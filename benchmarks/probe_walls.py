"""Photos of a wall with several paintings: is each of them found?

A visitor photographs a wall: two, three or four framed paintings side by side, of different
sizes (each hung at the first one's height, so a narrow one is small), turned, in
perspective, with the harshness of a photo setting (`distort.PHOTO_SETTINGS`). Each photo
shows N ground-truth paintings (their query renderings, drawn at random without repeats);
the answer for each is its other rendering in the catalog. The other renderings of the
paintings shown (the query files themselves and their known duplicates) are left out of
the ranking, as `eval_photos.py` leaves out the query file.

Reports, over the photos: the share of the paintings shown that are in the top N
(`each_in_top_n`) and in the top 10, the share of photos with all N in the top N, and the
share whose first result is one of them. The photos are seeded (``--seed`` + N), so two
versions of the code see the same photos:

    python benchmarks/probe_walls.py --catalog CAT --paintings 3 --photos 60 --setting gallery
    python benchmarks/probe_walls.py ... --max-paintings 3 --min-area 0.04   # before session 31
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np

import artsim.search.photo as photo
from artsim.catalog import Catalog
from artsim.evaluation.distort import PHOTO_SETTINGS, framed_photo
from artsim.evaluation.groundtruth import (
    duplicate_ignore_map,
    load_exact_duplicates,
    load_instance_pairs,
    load_near_duplicates,
)
from artsim.evaluation.run import gt_index, usable_pairs
from artsim.images import load_rgb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--catalog", type=Path, required=True, help="a catalog of ../shared/data")
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    ap.add_argument("--paintings", type=int, default=3, help="paintings in each photo")
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--setting", default="gallery", choices=sorted(PHOTO_SETTINGS))
    ap.add_argument(
        "--cover",
        default=None,
        help="share of the photo the hung group covers, 'lo,hi' (default: the setting's)",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--max-paintings", type=int, default=photo.MAX_PAINTINGS)
    ap.add_argument("--min-area", type=float, default=photo.MIN_AREA)
    ap.add_argument("--out", type=Path, default=None, help="append the result as a JSON line")
    args = ap.parse_args()
    photo.MAX_PAINTINGS, photo.MIN_AREA = args.max_paintings, args.min_area

    cat = Catalog.open(args.catalog)
    n = args.paintings
    path_to_id, _ = gt_index(cat, args.data)
    pairs = usable_pairs(load_instance_pairs(args.data / "groundtruth"), set(path_to_id))
    gt = args.data / "groundtruth"
    ignore = duplicate_ignore_map(load_exact_duplicates(gt), load_near_duplicates(gt))
    params = dict(PHOTO_SETTINGS[args.setting])
    if args.cover:
        params["cover"] = tuple(float(x) for x in args.cover.split(","))
    else:
        params.setdefault("cover", (0.3, 0.8))
    rng = np.random.default_rng(args.seed + n)
    ranks, times = [], []
    for _ in range(args.photos):
        shown = [pairs[j] for j in rng.choice(len(pairs), n, replace=False)]
        targets = {path_to_id[p.target_path] for p in shown}
        if len(targets) < n:  # two renderings of one painting: not a wall
            continue
        images = [load_rgb(args.data / p.query_path, max_side=1024) for p in shown]
        shot = framed_photo(images, rng, **params)
        buf = io.BytesIO()
        shot.image.save(buf, "JPEG", quality=90)
        t0 = time.perf_counter()
        hits = cat.search(buf.getvalue(), k=10 + 3 * n)
        times.append(time.perf_counter() - t0)
        drop = set()
        for p in shown:
            renderings = ignore.get(p.query_path, set()) | {p.query_path}
            drop |= {path_to_id[x] for x in renderings if x in path_to_id}
        drop -= targets
        ids = [h.id for h in hits if h.id not in drop][:10]
        ranks.append(
            [
                ids.index(t) + 1 if t in ids else 99
                for t in (path_to_id[p.target_path] for p in shown)
            ]
        )
    r = np.array(ranks)
    out = {
        "setting": args.setting,
        "paintings": n,
        "photos": len(r),
        "cover": params["cover"],
        "seed": args.seed,
        "max_paintings": args.max_paintings,
        "min_area": args.min_area,
        "each_in_top_n": round(float(np.mean(r <= n)), 4),
        "each_in_top10": round(float(np.mean(r <= 10)), 4),
        "all_in_top_n": round(float(np.mean((r <= n).all(1))), 4),
        "first_is_one_of_them": round(float(np.mean(r.min(1) == 1)), 4),
        "p50_ms": round(1000 * statistics.median(times), 1),
    }
    print(json.dumps(out))
    if args.out:
        with args.out.open("a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
