"""Time of painting localisation (`find_paintings`) per photo, with the line quadrilaterals
on and off in turn, on the probe's framed photos (as made, and shaken) and on NGA
reproductions (textured images with no frame: the worst case for lines).

    python benchmarks/bench_localisation.py --data ../shared/data [--n 60] [--rounds 3]

Prints medians and maxima in ms, the machine (lscpu model name) and the load; with --out,
writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image
from probe_photo_conditions import condition  # a sibling script: benchmarks/ is on sys.path

import artsim.detectors.paintings as paintings
from artsim.detectors.paintings import find_paintings
from artsim.evaluation.groundtruth import load_instance_pairs
from artsim.evaluation.run import framed_queries, usable_pairs

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=60, help="framed photos (a seeded sample of pairs)")
    ap.add_argument("--nga", type=int, default=40, help="NGA reproductions")
    ap.add_argument("--rounds", type=int, default=3, help="off/on alternations")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    pairs = load_instance_pairs(args.data / "groundtruth")
    paths = {p.query_path for p in pairs} | {p.target_path for p in pairs}
    pairs = usable_pairs(pairs, paths)
    pick = np.random.default_rng(5).choice(len(pairs), size=min(args.n, len(pairs)), replace=False)
    sample = [pairs[i] for i in sorted(pick)]
    photos = framed_queries(sample, paths, args.data, seed=3, p_two=0.0)
    groups: dict[str, list[Image.Image]] = {}
    for kind in ("none", "shake"):
        rng = np.random.default_rng(11)
        groups[kind] = [
            condition(kind, photos[p.query_path].image, photos[p.query_path].quads[0], rng)
            for p in sample
        ]
    nga = sorted((args.data / "nga" / "images").glob("*.jpg"))
    groups["nga"] = [
        im
        for f in nga[:: max(1, len(nga) // args.nga)]
        if min((im := Image.open(f).convert("RGB")).size) >= paintings.MIN_SIDE
    ]
    times: dict[str, dict[str, list[float]]] = {
        mode: {g: [] for g in groups} for mode in ("off", "on")
    }
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            paintings.LINES = mode == "on"
            for g, ims in groups.items():
                for im in ims:
                    t0 = time.perf_counter()
                    find_paintings(im)
                    times[mode][g].append(1000 * (time.perf_counter() - t0))
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": next(
            (x.split(":", 1)[1].strip() for x in lscpu.splitlines() if x.startswith("Model name")),
            "?",
        ),
        "cores": len(os.sched_getaffinity(0)),
        "load": os.getloadavg()[0],
        "photos": {g: len(ims) for g, ims in groups.items()},
        "ms": {
            mode: {
                g: {"p50": round(statistics.median(v), 1), "max": round(max(v), 1)}
                for g, v in per.items()
            }
            for mode, per in times.items()
        },
    }
    print(json.dumps(out, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
