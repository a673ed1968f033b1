"""Speed levers of photo queries against recall (issue 13, docs/photos.md "Cost").

    python benchmarks/eval_photo_levers.py --catalog eval-catalog --data ../shared/data \
        --limit 40 --levers 768/1000/50,640/1000/50,640/500/50,512/500/30

Each lever is SIFT_SIDE/SIFT_FEATURES/SHORTLIST[/LOCAL_SIDE]: the side the query photo's
RootSIFT keypoints are found at, how many, how many paintings are verified, and the side the
catalog's own keypoints are found at (the indexing cost of the `local` aspect; features at a
side other than the catalog's are computed on demand into their own store). Every framed-photo query of a
seeded sample of the ground-truth pairs (`--half`: the tune half by default, where thresholds
are chosen) is searched with each lever in turn. Localisation and the embeddings do not depend
on the lever: they are computed once per photo (memoised by pixels) so the levers compare
only what they change. Recall@1 with the shipped MIN_INLIERS and with the best threshold of
the sweep, and the median ms of the query's RootSIFT and of verification per lever.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from eval_photos import THRESHOLDS, recall1  # a sibling script: benchmarks/ is on sys.path

import artsim.catalog.local
import artsim.detectors.paintings
import artsim.search.photo as photo
import artsim.search.verify
from artsim.catalog import Catalog
from artsim.catalog.local import LocalStore, local_params
from artsim.evaluation.groundtruth import (
    duplicate_ignore_map,
    load_exact_duplicates,
    load_instance_pairs,
    load_near_duplicates,
)
from artsim.evaluation.run import (
    FramedQuery,
    distorted_queries,
    framed_queries,
    gt_index,
    split_by_painting,
    usable_pairs,
)

REPO = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def memoise_by_pixels(owner: Any, name: str) -> None:
    """Same pixels, same answer: compute once per photo (localisation, embeddings)."""
    fn = getattr(owner, name)
    cache: dict[str, Any] = {}

    def key(x: Any) -> str:
        if isinstance(x, list):
            return "|".join(key(i) for i in x)
        if hasattr(x, "tobytes"):
            return f"{x.size}" + hashlib.sha1(x.tobytes()).hexdigest()
        return repr(x)

    def cached(*a: Any, **kw: Any) -> Any:
        k = key(list(a)) + repr(sorted(kw.items()))
        if k not in cache:
            cache[k] = fn(*a, **kw)
        return cache[k]

    setattr(owner, name, cached)


def timed(
    owner: Any, name: str, into: dict[str, float], stage: str, when: Any = lambda kw: True
) -> None:
    fn = getattr(owner, name)

    def wrapper(*a: Any, **kw: Any) -> Any:
        if not when(kw):
            return fn(*a, **kw)
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            into[stage] += 1000 * (time.perf_counter() - t0)

    setattr(owner, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalog", type=Path, default=REPO / "eval-catalog")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--limit", type=int, default=40, help="queries (a seeded sample)")
    ap.add_argument("--half", default="tune", choices=("tune", "held-out", "all"))
    ap.add_argument("--setting", default="framed", choices=("framed", "mild"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--levers", default="768/1000/50,640/1000/50,768/500/50,640/500/50,512/500/30")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "photos_levers.json")
    args = ap.parse_args()
    gt = args.data / "groundtruth"
    cat = Catalog.open(args.catalog)
    side = local_params(cat)[0]  # the catalog's own features unless a lever names a side
    levers = [(*(int(v) for v in lv.split("/")), side)[:4] for lv in args.levers.split(",")]
    path_to_id, id_to_path = gt_index(cat, args.data)
    available = set(path_to_id)
    pairs = usable_pairs(load_instance_pairs(gt), available)
    split = split_by_painting(load_instance_pairs(gt), args.seed)
    if args.half != "all":
        pairs = [p for p in pairs if split.get(p.query_path) == args.half]
    keep = set(np.random.default_rng(args.seed + 7).permutation(len(pairs))[: args.limit])
    pairs = [p for i, p in enumerate(pairs) if i in keep]
    ignore = duplicate_ignore_map(load_exact_duplicates(gt), load_near_duplicates(gt))
    target_of = {p.query_path: p.target_path for p in pairs}
    log(f"{len(pairs)} {args.half} queries; making {args.setting} photos")
    if args.setting == "framed":
        framed = framed_queries(pairs, available, args.data, args.seed)
    else:  # the mild web-photo distortion: one painting a photo
        framed = {
            q: FramedQuery(im, (), None)
            for q, im in distorted_queries(pairs, available, args.data, args.seed).items()
        }
    memoise_by_pixels(artsim.detectors.paintings, "find_paintings")
    memoise_by_pixels(cat.encoder, "embed_images")
    stage: dict[str, float] = defaultdict(float)
    # the query's keypoints, not a candidate's computed on demand by the store
    timed(artsim.catalog.local, "extract_local", stage, "rootsift",
          lambda kw: kw.get("n_features") == photo.SIFT_FEATURES)  # fmt: skip
    timed(artsim.search.verify, "verify_candidates", stage, "verify")
    records: dict[tuple[int, ...], dict[str, dict]] = {lv: {} for lv in levers}
    times: dict[tuple[int, ...], dict[str, list[float]]] = {lv: defaultdict(list) for lv in levers}
    stores = {side: LocalStore(cat, max_side=side) for side in {lv[3] for lv in levers}}
    for n, (qpath, f) in enumerate(framed.items()):
        if n % 10 == 0:
            log(f"{n}/{len(framed)}")
        exclude = path_to_id[qpath]
        ign = set(ignore.get(qpath, set())) | {qpath}
        for lv in levers:
            photo.SIFT_SIDE, photo.SIFT_FEATURES = lv[0], lv[1]
            artsim.catalog.local.local_store = lambda c, side=lv[3]: stores[side]
            stage.clear()
            hits = photo.search_photo(cat, f.image, k=300, min_inliers=0, shortlist=lv[2])
            for k in ("rootsift", "verify"):
                times[lv][k].append(stage[k])
            records[lv][qpath] = {
                "target": target_of[qpath],
                "second_target": target_of.get(f.second) if f.second else None,
                "hits": [
                    {
                        "path": id_to_path.get(h.id),
                        "global": h.scores["global"],
                        "inliers": h.scores["inliers"],
                    }
                    for h in hits
                    if h.id != exclude and id_to_path.get(h.id) not in ign
                ],
            }
    out: dict[str, Any] = {
        "catalog": str(args.catalog),
        "paintings": len(cat),
        "half": args.half,
        "setting": args.setting,
        "queries": len(framed),
        "min_inliers_shipped": photo.MIN_INLIERS,
        "levers": {},
    }
    for lv in levers:
        recs = records[lv]
        ign_map = {
            q: ({r["second_target"]} if r["second_target"] else set()) for q, r in recs.items()
        }
        qs = list(recs)
        sweep = {t: recall1(recs, qs, t, ign_map) for t in THRESHOLDS}
        name = f"query {lv[0]} px {lv[1]} keypoints, shortlist {lv[2]}, catalog {lv[3]} px"
        out["levers"][name] = {
            "sift_side": lv[0],
            "sift_features": lv[1],
            "shortlist": lv[2],
            "local_side": lv[3],
            "recall@1_shipped_threshold": recall1(recs, qs, photo.MIN_INLIERS, ign_map),
            "recall@1_sweep": sweep,
            "rootsift_ms_p50": round(statistics.median(times[lv]["rootsift"]), 1),
            "verify_ms_p50": round(statistics.median(times[lv]["verify"]), 1),
        }
        log(f"{name}: {json.dumps(out['levers'][name])}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2).replace("NaN", "null") + "\n")


if __name__ == "__main__":
    main()
