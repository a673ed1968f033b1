"""Pose indexing throughput: load + detect (multi-figure) + describe, in images per second.

Runs over the NGA sample images (images loaded with artsim.images.open_image(path,
max_side=--max-side)), in --workers processes (one MediaPipe graph set per process: graphs are
not thread-safe). Reports wall-clock throughput and, because the machine is shared, also the
CPU seconds the workers spent per image (1 / that = what one free core would do).

    .venv/bin/python benchmarks/bench_poses.py                 # all images, 2 workers
    .venv/bin/python benchmarks/bench_poses.py --limit 40 --workers 1 --faces none

--faces: "detect" runs artsim.detectors.faces.detect_faces inside (the default of detect_poses),
"none" skips face proposals (what an indexer that already ran face detection and passes
`faces=` pays for poses alone, minus those proposals' detector calls).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def default_data() -> Path:
    return Path(os.environ.get("ARTSIM_DATA", REPO.parent / "shared" / "data")).resolve()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, default=default_data())
    p.add_argument("--limit", type=int, default=None)
    p.add_argument(
        "--max-side",
        type=int,
        default=1024,
        help="open_image(max_side=...); 1024 = the catalog's POSE_MAX_SIDE",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--strategy", default="multi", choices=("multi", "whole"))
    p.add_argument("--faces", default="detect", choices=("detect", "none"))
    p.add_argument("--min-score", type=float, default=None, help="detect_poses(min_score=...)")
    p.add_argument("--flip-average", action="store_true", help="detect_poses(flip_average=True)")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    return p.parse_args(argv)


def _work(
    args: tuple[list[str], int, str, str, float | None, bool],
) -> tuple[int, int, float, float]:
    """Index a chunk of images; returns (images, poses, wall seconds, CPU seconds)."""
    paths, max_side, strategy, faces, min_score, flip_average = args
    from artsim.detectors.poses import DEFAULT_MIN_SCORE, detect_poses
    from artsim.encoders.poses import pose_descriptors
    from artsim.images import open_image

    options = {
        "strategy": strategy,
        "faces": None if faces == "detect" else (),
        "min_score": DEFAULT_MIN_SCORE if min_score is None else min_score,
        "flip_average": flip_average,
    }
    # warm-up (model loading) is not part of the measurement
    warm = open_image(paths[0], max_side=max_side).image
    detect_poses(warm, **options)
    n_poses = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for path in paths:
        image = open_image(path, max_side=max_side).image
        poses = detect_poses(image, **options)
        pose_descriptors(poses)
        n_poses += len(poses)
    return len(paths), n_poses, time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = args.data / "nga" / "images"
    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    if args.limit:
        paths = paths[: args.limit]
    if not paths:
        print(f"no images under {folder}", file=sys.stderr)
        return 2
    workers = max(1, min(args.workers, len(paths)))
    chunks = [paths[i::workers] for i in range(workers)]
    jobs = [
        (c, args.max_side, args.strategy, args.faces, args.min_score, args.flip_average)
        for c in chunks
    ]
    t0 = time.perf_counter()
    if workers == 1:
        parts = [_work(jobs[0])]
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_work, jobs)
    elapsed_incl_startup = time.perf_counter() - t0
    n = sum(p[0] for p in parts)
    n_poses = sum(p[1] for p in parts)
    wall = max(p[2] for p in parts)  # workers run side by side: the slowest one ends the run
    cpu = sum(p[3] for p in parts)
    result = {
        "images": n,
        "poses": n_poses,
        "workers": workers,
        "strategy": args.strategy,
        "faces": args.faces,
        "max_side": args.max_side,
        "min_score": args.min_score,
        "flip_average": args.flip_average,
        "images_per_s": round(n / wall, 2),
        "cpu_s_per_image": round(cpu / n, 4),
        "images_per_cpu_s": round(n / cpu, 2),
        "wall_s_including_model_loading": round(elapsed_incl_startup, 1),
        "load_average": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
