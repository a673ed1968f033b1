"""Face indexing throughput: decode + detect + align + identity embedding, in images per second.

Runs over the NGA sample images (330 files up to 1024 px) with the default face detector:

    nice -n 10 .venv/bin/python benchmarks/bench_faces.py                 # one process
    nice -n 10 .venv/bin/python benchmarks/bench_faces.py --workers 2     # one process per core

Images are decoded with artsim.images.open_image(path, max_side=...) (reduced-size JPEG decoding);
the default --max-side is the catalog's own (FACE_MAX_SIDE, 1024), so this measures what
`artsim index --aspects global,face` does; --max-side 512 halves the decode and tiling cost at
the price of the smallest faces. Prints a table and writes JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from artsim.catalog.faces import FACE_MAX_SIDE  # noqa: E402
from artsim.detectors.faces import DEFAULT_DETECTOR, detect_faces  # noqa: E402
from artsim.encoders.faces import align_faces, embed_chips  # noqa: E402
from artsim.images import open_image  # noqa: E402


def default_data() -> Path:
    return Path(os.environ.get("ARTSIM_DATA", REPO.parent / "shared" / "data")).resolve()


def _warm(detector: str) -> None:
    from PIL import Image

    im = Image.new("RGB", (128, 128), (120, 110, 100))
    faces = detect_faces(im, detector)
    embed_chips([c.chip for c in align_faces(im, faces)] or [Image.new("RGB", (150, 150))])


def index_images(
    paths: list[str], max_side: int, detector: str, threads: int | None = None
) -> dict[str, Any]:
    """Index `paths`; returns per-stage seconds and face counts (models warmed up first)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    _warm(detector)
    t = {"decode": 0.0, "detect": 0.0, "align_embed": 0.0}
    faces_total = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    for path in paths:
        t0 = time.perf_counter()
        im = open_image(path, max_side=max_side).image
        t1 = time.perf_counter()
        faces = detect_faces(im, detector)
        t2 = time.perf_counter()
        vecs = embed_chips([a.chip for a in align_faces(im, faces)])
        t3 = time.perf_counter()
        assert vecs.shape == (len(faces), 128)
        t["decode"] += t1 - t0
        t["detect"] += t2 - t1
        t["align_embed"] += t3 - t2
        faces_total += len(faces)
    return {
        "images": len(paths),
        "faces": faces_total,
        "wall": time.perf_counter() - start,
        "cpu": time.process_time() - cpu_start,  # all threads of this process
        **t,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, default=default_data())
    p.add_argument("--max-side", type=int, default=FACE_MAX_SIDE)
    p.add_argument("--detector", default=DEFAULT_DETECTOR)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument(
        "--workers", type=int, default=1, help="processes (each with 1 torch thread if > 1)"
    )
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    folder = args.data / "nga" / "images"
    paths = sorted(str(x) for x in folder.glob("*.jpg"))[: args.limit]
    if not paths:
        print(f"no images in {folder}", file=sys.stderr)
        return 2
    if args.workers <= 1:
        result = index_images(paths, args.max_side, args.detector)
        wall = result["wall"]
    else:
        chunks = [paths[i :: args.workers] for i in range(args.workers)]
        start = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as pool:
            parts = list(
                pool.map(
                    index_images,
                    chunks,
                    [args.max_side] * args.workers,
                    [args.detector] * args.workers,
                    [1] * args.workers,
                )
            )
        # model loading happens inside the workers before their timers start; count their timers
        wall = max(r["wall"] for r in parts)
        result = {
            k: sum(r[k] for r in parts)
            for k in ("images", "faces", "cpu", "decode", "detect", "align_embed")
        }
        result["wall_including_startup"] = time.perf_counter() - start
        result["wall"] = wall
    n = result["images"]
    summary = {
        "detector": args.detector,
        "max_side": args.max_side,
        "workers": args.workers,
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_1min": os.getloadavg()[0],
        "images_per_second": n / wall,
        # what the CPU work alone allows on an otherwise idle machine with one worker per core
        "cpu_seconds_per_image": result["cpu"] / n,
        "images_per_second_idle_estimate": len(os.sched_getaffinity(0)) * n / result["cpu"],
        "ms_per_image": {k: 1000 * result[k] / n for k in ("decode", "detect", "align_embed")},
        **result,
    }
    print(
        f"{n} images, {result['faces']} faces, {args.workers} worker(s), max_side {args.max_side}: "
        f"{n / wall:.2f} images/s"
    )
    for k, v in summary["ms_per_image"].items():
        print(f"  {k:12s} {v:7.1f} ms/image (summed over workers)")
    print(
        f"  CPU time {1000 * result['cpu'] / n:.1f} ms/image -> on an idle machine with one worker "
        f"per core about {summary['images_per_second_idle_estimate']:.1f} images/s"
    )
    print(
        f"  load average during run: {summary['load_average_1min']:.2f} on {summary['cpus']} CPUs"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
