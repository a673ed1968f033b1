"""Photos of a detail of a painting: a visitor photographs a face, a hand or a corner of a
painting, not all of it. How often is the painting found first, and how often does a photo
of a painting the catalog lacks come back with a wrong painting verified?

The catalog's NGA paintings of at least ``--min-side`` px are photographed with
`artsim.evaluation.distort.detail_photo` (seeded per painting and setting) and searched as
`Catalog.search` searches an image: the photo path, shipped thresholds. A hit is any
rendering of the photographed painting (the ground truth's instance pairs join them).
"Absent": the same photo with every rendering of the painting masked out, every candidate
verified and none thresholded, so each painting's inliers are counted: how many wrong
paintings reach t inliers says what a threshold t would let through. Each search starts
with an empty `DenseCache` (cold: as a photo of a painting seen for the first time). Halves
by painting (seeded), for thresholds chosen on "tune" and reported on "held-out".

    python benchmarks/eval_details.py --catalog eval-catalog --data ../shared/data \\
        --n 120 --detail-retry off,on --out docs/results/photos_details.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

import numpy as np
from eval_photos import log, renderings  # a sibling script
from PIL import Image

import artsim.search.photo as photo
from artsim.catalog import Catalog
from artsim.evaluation.distort import detail_photo
from artsim.evaluation.run import gt_index
from artsim.images import open_image

REPO = Path(__file__).resolve().parents[1]
# setting -> the drawn side of the detail as a fraction of the painting's sides
SETTINGS = {"detail": (0.3, 0.55), "small-detail": (0.2, 0.35)}
COUNTED_AT = (8, 10, 12, 15, 20)  # inlier counts a wrong answer is counted at
WRONG = "absent: a wrong painting with >= t inliers"


def seed_of(*parts: str) -> int:
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:12], 16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalog", type=Path, default=REPO / "eval-catalog")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=120, help="paintings (a seeded sample)")
    ap.add_argument("--min-side", type=int, default=800, help="the paintings' least long side")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument(
        "--detail-retry",
        default="on",
        help="off, on or off,on (both, query by query in the same run)",
    )
    ap.add_argument(
        "--seed", type=int, default=0, help="draws the paintings and every photo's distortions"
    )
    ap.add_argument(
        "--coarse-retry",
        choices=("on", "off"),
        default="on" if photo.COARSE_RETRY else "off",
        help="the coarse retry after the detail retry (off: as in session 17's runs)",
    )
    ap.add_argument(
        "--detail-voted",
        default=str(photo.DETAIL_VOTED),
        help="how many candidates the retry verifies on denser keypoints; several (4,8) run "
        "the retry once with each, named on@4, on@8",
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    photo.COARSE_RETRY = args.coarse_retry == "on"

    cat = Catalog.open(args.catalog)
    path_to_id, _ = gt_index(cat, args.data)
    same = renderings(args.data, path_to_id)
    files = []
    for f in sorted((args.data / "nga" / "images").glob("*.jpg")):
        rel = str(f.relative_to(args.data))
        if rel in path_to_id:
            with Image.open(f) as im:
                if max(im.size) >= args.min_side:
                    files.append(rel)
    rng = np.random.default_rng(args.seed)
    files = [files[i] for i in sorted(rng.choice(len(files), min(args.n, len(files)), False))]
    order = np.random.default_rng(args.seed).permutation(len(files))
    tune = {files[i] for i in order[: len(files) // 2]}
    voted = [int(v) for v in args.detail_voted.split(",")]
    modes = []
    for mode in args.detail_retry.split(","):
        if mode == "on" and len(voted) > 1:
            modes += [f"on@{v}" for v in voted]
        else:
            modes.append(mode)
    log(f"{len(files)} paintings of >= {args.min_side} px, modes {modes}")

    records: list[dict] = []
    for setting in args.settings.split(","):
        for rel in files:
            tid = path_to_id[rel]
            group = same.get(tid, {tid})
            image = open_image(args.data / rel).image
            shot = detail_photo(
                image,
                np.random.default_rng(
                    seed_of(setting, rel, *([str(args.seed)] if args.seed else []))
                ),
                fraction=SETTINGS[setting],
            ).image
            rec: dict = {
                "setting": setting,
                "file": rel,
                "half": "tune" if rel in tune else "held-out",
            }
            mask = np.array([i not in group for i in cat.ids])
            for mode in modes:
                photo.DETAIL_RETRY = mode.startswith("on")
                photo.DETAIL_VOTED = int(mode[3:]) if mode.startswith("on@") else voted[0]
                cat._dense_cache = None  # cold, as for a painting seen the first time
                t0 = time.perf_counter()
                found = photo.search_photo(cat, shot, k=5)
                rec[f"{mode}_ms"] = round(1e3 * (time.perf_counter() - t0), 1)
                rec[f"{mode}_hit"] = bool(found) and found[0].id in group
                rec[f"{mode}_inliers"] = found[0].inliers if found else 0
                rec[f"{mode}_detail"] = found[0].detail if found else None
                cat._dense_cache = None
                t0 = time.perf_counter()
                absent = photo.search_photo(
                    cat, shot, k=50, mask=mask, min_inliers=0, retry_below=photo.MIN_INLIERS
                )
                rec[f"{mode}_absent_ms"] = round(1e3 * (time.perf_counter() - t0), 1)
                # the most inliers any (wrong) painting got, before any threshold
                rec[f"{mode}_absent_wrong_inliers"] = max(
                    (int(h.scores.get("inliers", 0)) for h in absent), default=0
                )
            records.append(rec)
        log(f"{setting}: done")

    summary: dict = {}
    for setting in args.settings.split(","):
        for half in ("tune", "held-out"):
            rows = [r for r in records if r["setting"] == setting and r["half"] == half]
            for mode in modes:
                summary[f"{setting}/{half}/{mode}"] = {
                    "queries": len(rows),
                    "recall@1": round(float(np.mean([r[f"{mode}_hit"] for r in rows])), 4),
                    WRONG: {
                        t: round(
                            float(np.mean([r[f"{mode}_absent_wrong_inliers"] >= t for r in rows])),
                            4,
                        )
                        for t in COUNTED_AT
                    },
                    "p50 ms": statistics.median(r[f"{mode}_ms"] for r in rows),
                    "p90 ms": float(np.percentile([r[f"{mode}_ms"] for r in rows], 90)),
                    "absent p50 ms": statistics.median(r[f"{mode}_absent_ms"] for r in rows),
                }
                s = summary[f"{setting}/{half}/{mode}"]
                log(
                    f"{setting:13s} {half:8s} retry {mode:3s}: R@1 {s['recall@1']:.3f}, absent "
                    f"wrong verified (>= {photo.MIN_INLIERS}) "
                    f"{s[WRONG][photo.MIN_INLIERS]:.3f}, "
                    f"p50 {s['p50 ms']:.0f} ms, p90 {s['p90 ms']:.0f} ms, absent p50 "
                    f"{s['absent p50 ms']:.0f} ms"
                )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "catalog": str(args.catalog),
                    "paintings": len(files),
                    "min_side": args.min_side,
                    "settings": {k: SETTINGS[k] for k in args.settings.split(",")},
                    "min_inliers": photo.MIN_INLIERS,
                    "coarse_retry": photo.COARSE_RETRY,
                    "detail_voted": voted,
                    "summary": summary,
                    "records": records,
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
