"""Face and pose indexing through the catalog, as `artsim index --aspects face|pose` runs it.

For each aspect, a catalog of the NGA sample first gets its global rows (untimed); then the
aspect is added and timed end to end (an aspect list naming `global` is timed from an empty
catalog instead, as a first `artsim index --aspects global,face,pose` runs): decoding,
detection in the detector worker processes (their start and model loading included),
embeddings, chip thumbnails and Parquet writes.
Each setting runs in a fresh process; the baseline (detectors in the main process,
--detector-workers 1) runs in the same session:

    .venv/bin/python benchmarks/bench_aspects.py --aspect face --runs 3
    .venv/bin/python benchmarks/bench_aspects.py --aspect pose --runs 1 --limit 120
    .venv/bin/python benchmarks/bench_aspects.py --aspect face,pose --workers 2 --runs 1 --limit 120
    .venv/bin/python benchmarks/bench_aspects.py --aspect global,face --workers 2 --runs 3

Prints images/s per run and the medians, and writes JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def default_data() -> Path:
    return Path(os.environ.get("ARTSIM_DATA", REPO.parent / "shared" / "data"))


def one_run(folder: Path, aspect: str, workers: int, limit: int | None) -> dict:
    """Runs in its own process (see main): global rows first, then the timed aspect."""
    from artsim.catalog import Catalog

    with tempfile.TemporaryDirectory(prefix="artsim-bench-") as tmp:
        cat = Catalog.create(Path(tmp) / "cat")
        if "global" not in aspect.split(","):
            cat.add(folder, aspects=["global"], limit=limit)
        start = time.perf_counter()
        cpu = time.process_time()
        summary = cat.add(folder, aspects=aspect.split(","), limit=limit, detector_workers=workers)
        wall = time.perf_counter() - start
        return {
            "aspect": aspect,
            "detector_workers": workers,
            "images": summary.added,
            "rows": sum(summary.aspects.get(a, 0) for a in aspect.split(",")),
            "seconds": wall,
            "images_per_second": summary.added / wall,
            "main_process_cpu_seconds": time.process_time() - cpu,
            "load_average_1min_after": os.getloadavg()[0],
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, default=default_data())
    p.add_argument(
        "--aspect",
        choices=("face", "pose", "face,pose", "global,face", "global,face,pose"),
        default="face",
        help="face,pose: both; with global: timed from an empty catalog",
    )
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="settings to compare")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--one", nargs=2, metavar=("ASPECT", "WORKERS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    folder = args.data / "nga" / "images"
    if args.one:
        print(json.dumps(one_run(folder, args.one[0], int(args.one[1]), args.limit)))
        return 0
    if not any(folder.glob("*.jpg")):
        print(f"no images in {folder}", file=sys.stderr)
        return 2
    results: dict[int, list[dict]] = {w: [] for w in args.workers}
    for run in range(args.runs):
        for w in args.workers:  # interleaved, so that drifting load hits both settings
            cmd = [sys.executable, __file__, "--data", str(args.data), "--one", args.aspect, str(w)]
            if args.limit:
                cmd += ["--limit", str(args.limit)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            results[w].append(r)
            print(
                f"run {run + 1}: {args.aspect}, {w} detector worker(s): {r['images']} images, "
                f"{r['rows']} rows, {r['images_per_second']:.2f} images/s",
                flush=True,
            )
    medians = {
        w: statistics.median(r["images_per_second"] for r in rs) for w, rs in results.items()
    }
    base = medians[args.workers[0]]
    for w, m in medians.items():
        print(f"median, {w} detector worker(s): {m:.2f} images/s ({m / base:.2f}x)")
    report = {
        "aspect": args.aspect,
        "cpus": len(os.sched_getaffinity(0)),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "medians_images_per_second": medians,
        "runs": results,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
