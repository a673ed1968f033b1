"""What the `local` aspect (RootSIFT for photo queries, issue 13) adds to indexing time.

    python benchmarks/bench_local_aspect.py --data ../shared/data [--baseline-src /tmp/head]

For each image set, fresh catalogs index the same paintings with ``--aspects global`` and
``global,local`` (``Catalog.add``), each run in its own process after a warm-up, rounds
interleaved; with ``--baseline-src DIR`` an older artsim (``DIR/src``) runs beside this one
in the same rounds (who goes first rotates). Sets:
- ``sample``: every ``--stride``th (100th) painting of the sample data folder (mostly 224 px WikiArt);
- ``nga``: the NGA images of at least 1,000 px (what a museum's own files look like).

Prints per painting wall and CPU ms (medians) and the added share, and writes JSON with
``--out``.
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


def image_sets(data: Path, n: int, stride: int = 100) -> dict[str, list[str]]:
    from PIL import Image

    exts = {".jpg", ".jpeg", ".png"}
    sample = sorted(
        str(p)
        for sub in ("wikiart", "peopleart", "nga/images")
        for p in (data / sub).rglob("*")
        if p.suffix.lower() in exts
    )[::stride][:n]
    nga = []
    for p in sorted((data / "nga" / "images").glob("*.jpg")):
        with Image.open(p) as im:
            if max(im.size) >= 1000:
                nga.append(str(p))
    return {"sample": sample, "nga": nga[:n]}


def worker(files: list[str], aspects: list[str]) -> dict[str, float]:
    """Index ``files`` into a fresh catalog (after a warm-up one); ms per painting."""
    from artsim.catalog import Catalog
    from artsim.records import SourceItem

    items = [SourceItem(Path(f).name, f, {}) for f in files]
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        Catalog.create(Path(tmp) / "warm").add(items[:4], aspects=aspects)
        cat = Catalog.create(Path(tmp) / "cat")
        t0, c0 = time.perf_counter(), time.process_time()
        summary = cat.add(items, aspects=aspects)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert summary.added == len(items), summary
    return {"wall": 1000 * wall / len(items), "cpu": 1000 * cpu / len(items)}


def run(src: Path, files: list[str], aspects: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"files": files, "aspects": aspects}, f)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", f.name],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=64, help="paintings per set")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stride", type=int, default=100, help="take every Nth sample painting")
    ap.add_argument("--sets", default="sample,nga")
    ap.add_argument("--baseline-src", type=Path, help="an older artsim's folder holding src/")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        job = json.loads(Path(args.worker).read_text())
        print(json.dumps(worker(job["files"], job["aspects"])))
        return
    codes = {"this": REPO / "src"}
    if args.baseline_src:
        codes["baseline"] = args.baseline_src / "src"
    if args.stride < 1:
        ap.error("--stride must be 1 or more")
    sets = image_sets(args.data, args.n, args.stride)
    results: dict = {"uptime_start": os.getloadavg(), "sets": {}}
    for name in args.sets.split(","):
        files = sets[name]
        per: dict[tuple[str, str], list[dict[str, float]]] = {}
        for r in range(args.rounds):
            order = list(codes.items())
            order = order[r % len(order) :] + order[: r % len(order)]  # who goes first rotates
            for code, src in order:
                for aspects in ("global", "global,local"):
                    got = run(src, files, aspects.split(","))
                    per.setdefault((code, aspects), []).append(got)
                    print(
                        f"{name} round {r} {code:8} {aspects:13} wall {got['wall']:6.1f} "
                        f"cpu {got['cpu']:6.1f} ms a painting",
                        flush=True,
                    )
        med = {
            k: {m: statistics.median(x[m] for x in v) for m in ("wall", "cpu")}
            for k, v in per.items()
        }
        out = {}
        for code in codes:
            g, gl = med[(code, "global")], med[(code, "global,local")]
            out[code] = {
                "global_ms": g,
                "global_local_ms": gl,
                "added": {m: gl[m] / g[m] - 1 for m in ("wall", "cpu")},
            }
            print(
                f"{name} ({len(files)} paintings) {code}: global {g['wall']:.1f} / "
                f"{g['cpu']:.1f} ms, global+local {gl['wall']:.1f} / {gl['cpu']:.1f} ms wall / "
                f"CPU: added {100 * out[code]['added']['wall']:+.0f} % wall, "
                f"{100 * out[code]['added']['cpu']:+.0f} % CPU"
            )
        results["sets"][name] = {
            "paintings": len(files),
            "rounds": args.rounds,
            "stride": args.stride if name == "sample" else None,
            **out,
        }
    results["uptime_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
