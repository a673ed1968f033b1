"""Opening a large catalog: `Catalog.open` and the first `aspect("global")`, each in a fresh
process (what a CLI search or a server start pays), medians over runs.

    python benchmarks/bench_open.py CATALOG [--runs 3] [--base OLD_CHECKOUT]

With --base, that checkout's src/ is timed in turn with this tree's (runs interleaved), so the
two are compared under the same load. The 1M catalog comes from benchmarks/bench_million.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, time
t0 = time.perf_counter()
from artsim.catalog import Catalog
t1 = time.perf_counter()
cat = Catalog.open(sys.argv[1])
t2 = time.perf_counter()
cat.aspect("global")
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "aspect": t3 - t2, "rows": len(cat.ids)}))
"""


def run_once(src: Path, catalog: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(catalog)], env=env, check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("catalog", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--base", type=Path, help="baseline checkout, timed in turn with this tree")
    args = ap.parse_args()
    trees = {"this tree": REPO / "src"}
    if args.base:
        trees["baseline"] = args.base / "src"
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(args.runs):
        for name, src in trees.items():
            runs[name].append(run_once(src, args.catalog))
    print(f"load average {os.getloadavg()[0]:.1f}; {runs['this tree'][0]['rows']:,} paintings")
    print("| tree | open s (median) | aspect s (median) | runs open / aspect |")
    print("|---|---:|---:|---|")
    for name, rs in runs.items():
        o = [r["open"] for r in rs]
        a = [r["aspect"] for r in rs]
        each = ", ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(o, a, strict=True))
        print(f"| {name} | {statistics.median(o):.2f} | {statistics.median(a):.2f} | {each} |")


if __name__ == "__main__":
    main()
