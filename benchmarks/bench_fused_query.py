"""Query latency by image file, end to end (decode, analysis, search), of two artsim trees in
the same run: a baseline checkout (e.g. `git worktree add /tmp/artsim-base fea25e1`) and this
tree. Each tree runs in its own worker process with the catalog open and the models loaded;
the queries alternate between the two workers, so machine noise hits both alike.

    python benchmarks/bench_fused_query.py --catalog CAT --base /tmp/artsim-base \\
        --queries 'data/wikiart/images/Baroque/*.jpg' --n 40 --aspects fused global

Prints per tree and aspect the median (p50) and p90 wall seconds per query, the median CPU
seconds (less sensitive to a busy machine), and the ratio. With --profile the worker of this
tree prints where its fused queries' time goes after the warm-up ones (cProfile, by cumulative
and by own time). A global query by image file is a photo query in this tree (issue 13:
localisation, shortlist, verification), which the baseline lacks; --photo off searches the whole
image as the baseline does, so that the two trees do the same work.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def worker(catalog: str, profile: bool, warmup: int = 0, photo: str | None = None) -> None:
    """Read 'aspect<TAB>path' lines, answer the seconds one search took (JSON)."""
    from artsim.catalog import Catalog

    cat = Catalog.open(catalog)
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    print(json.dumps({"ready": True, "artsim": __import__("artsim").__file__}), flush=True)
    fused_seen = 0
    options = {"photo": photo} if photo else {}
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line == "profile":
            import pstats

            if prof is not None:
                stats = pstats.Stats(prof, stream=sys.stderr)
                stats.sort_stats("cumulative").print_stats(45)
                stats.sort_stats("tottime").print_stats(25)
            print(json.dumps({"done": True}), flush=True)
            continue
        aspect, path = line.split("\t", 1)
        fused_seen += aspect == "fused"
        record = prof is not None and aspect == "fused" and fused_seen > warmup
        if record:
            prof.enable()
        t, c = time.perf_counter(), time.process_time()
        try:
            hits = cat.search(path, k=10, aspect=aspect, **(options if aspect == "global" else {}))
            ids = [h.id for h in hits]
        except Exception as exc:  # a query without a face in face-only search etc.
            ids = [f"error: {exc}"]
        dt, dc = time.perf_counter() - t, time.process_time() - c
        if record:
            prof.disable()
        print(json.dumps({"seconds": dt, "cpu_seconds": dc, "ids": ids}), flush=True)


class Worker:
    def __init__(
        self,
        name: str,
        src: Path,
        catalog: str,
        profile: bool,
        warmup: int = 0,
        photo: str | None = None,
    ) -> None:
        env = {**os.environ, "PYTHONPATH": str(src)}
        cmd = [sys.executable, __file__, "--worker", "--catalog", catalog, "--warmup", str(warmup)]
        if profile:
            cmd.append("--profile")
        if photo:
            cmd += ["--photo", photo]
        self.name = name
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.where = self._read()["artsim"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name} worker died")
        return json.loads(line)

    def ask(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--base", type=Path, help="baseline checkout (its src/ goes on PYTHONPATH)")
    ap.add_argument("--queries", nargs="+", help="image files or glob patterns")
    ap.add_argument("--n", type=int, default=40, help="queries per aspect (spread over the list)")
    ap.add_argument("--aspects", nargs="+", default=["fused", "global"])
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile this tree's fused queries")
    ap.add_argument(
        "--photo",
        choices=("auto", "off"),
        help="this tree's global queries: photo=auto (the default: photo search) or off "
        "(the whole image, as the baseline searches)",
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.catalog, args.profile, args.warmup, args.photo)
        return

    files = sorted({f for q in args.queries for f in (glob.glob(q) or [q])})
    step = max(1, len(files) // (args.n + args.warmup))
    files = files[::step][: args.n + args.warmup]
    trees = {"new": HERE / "src"}
    if args.base:
        trees = {"base": args.base / "src", **trees}
    workers = {
        name: Worker(
            name,
            src,
            args.catalog,
            args.profile and name == "new",
            args.warmup,
            args.photo if name == "new" else None,
        )
        for name, src in trees.items()
    }
    for w in workers.values():
        print(f"{w.name}: {w.where}", file=sys.stderr)
    times: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}  # CPU seconds of the worker (all its threads)
    same = {a: 0 for a in args.aspects}
    for i, path in enumerate(files):
        for aspect in args.aspects:
            answers = {}
            # alternate which tree goes first, so neither always runs on a warmer cache
            order = list(workers.values())[:: 1 if i % 2 == 0 else -1]
            for w in order:
                answers[w.name] = w.ask(f"{aspect}\t{path}")
                if i >= args.warmup:
                    times.setdefault((w.name, aspect), []).append(answers[w.name]["seconds"])
                    cpu.setdefault((w.name, aspect), []).append(answers[w.name]["cpu_seconds"])
            if i >= args.warmup and len({json.dumps(a["ids"]) for a in answers.values()}) == 1:
                same[aspect] += 1
    if args.profile:
        workers["new"].ask("profile")
    for w in workers.values():
        w.close()
    n = len(files) - args.warmup
    rows = []
    for aspect in args.aspects:
        row = {"aspect": aspect, "queries": n}
        for name in workers:
            t = sorted(times[(name, aspect)])
            row[f"{name}_p50_s"] = round(statistics.median(t), 4)
            row[f"{name}_p90_s"] = round(t[int(0.9 * (len(t) - 1))], 4)
            row[f"{name}_cpu_p50_s"] = round(statistics.median(cpu[(name, aspect)]), 4)
        if "base" in workers:
            row["speedup_p50"] = round(row["base_p50_s"] / row["new_p50_s"], 2)
            row["same_top10_ids"] = f"{same[aspect]}/{n}"
        rows.append(row)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
