"""Ray (2 workers on this machine) against the in-process pipeline, in the same run.

Both index the same images (global aspect, default offline model) into fresh catalogs, in
alternating order, `--rounds` times. Reported: images/s of each (median over rounds), the
ratio ray/local, and Ray's start-up time (ray.init, actors loading models) separately:
a cluster pays it once per job, not per image.

    python benchmarks/bench_ray.py --images /work/shared/data/nga/images --n 96 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

from artsim.catalog import Catalog
from artsim.catalog.distributed import add_with_ray
from artsim.sources import scan_source

GLOBAL = ["global"]  # both engines index the same aspect as every earlier run (scale.md)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", required=True)
    ap.add_argument("--n", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    items = scan_source(args.images).items[: args.n]
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    t = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    init_s = time.perf_counter() - t
    # warm-up: actors start and load the model once; the timed runs reuse nothing of it,
    # but the OS page cache then holds the images for both engines alike
    warm = Catalog.create(tmp / "warm")
    t = time.perf_counter()
    add_with_ray(
        warm,
        items[: args.batch_size],
        aspects=GLOBAL,
        batch_size=args.batch_size,
        num_workers=args.workers,
    )
    warm_s = time.perf_counter() - t
    Catalog.create(tmp / "warm-local").add(items[: args.batch_size], aspects=GLOBAL)
    rates: dict[str, list[float]] = {"local": [], "ray": []}
    for r in range(args.rounds):
        for engine in ("local", "ray") if r % 2 == 0 else ("ray", "local"):
            cat = Catalog.create(tmp / f"{engine}-{r}")
            if engine == "local":
                s = cat.add(items, aspects=GLOBAL, batch_size=args.batch_size)
            else:
                s = add_with_ray(
                    cat,
                    items,
                    aspects=GLOBAL,
                    batch_size=args.batch_size,
                    num_workers=args.workers,
                )
            rates[engine].append(s.added / s.seconds)
            print(f"round {r} {engine}: {s.added} images in {s.seconds:.1f} s", flush=True)
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    local, dist = float(np.median(rates["local"])), float(np.median(rates["ray"]))
    res = {
        "images": len(items),
        "workers": args.workers,
        "local_img_s": round(local, 2),
        "ray_img_s": round(dist, 2),
        "ratio_ray_over_local": round(dist / local, 3),
        "ray_init_s": round(init_s, 1),
        "ray_first_batch_s (actors start, models load)": round(warm_s, 1),
        "rates": rates,
    }
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
