"""The long fuzzing run: the targets of tests/test_fuzz.py for many seeded cases each.

Every case is random.Random(f"{target}-{seed}-{i}"), so a failure is replayed by its number.
Reports, per target: cases, accepted, refused with the project's own error, and failures (an
unhandled exception, an HTTP 5xx or a changed catalog), with the first tracebacks.

    python benchmarks/fuzz.py --cases 10000                 # split evenly over the targets
    python benchmarks/fuzz.py --cases 2000 --targets image,csv --seed 7
    python benchmarks/fuzz.py --replay http:123             # one case, with its traceback
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import test_fuzz as fz


class _LastError(logging.Handler):
    """Keeps the server's last logged traceback, to show with a 5xx, off the console."""

    def __init__(self) -> None:
        super().__init__()
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            lines = traceback.format_exception(*record.exc_info, limit=-4)
            self.text = "".join(lines)


def run_case(name: str, rnd: random.Random, ctx: dict) -> str:
    target = fz.TARGETS[name]
    if name in ("image", "where"):
        return target(rnd)
    if name in ("csv", "mapping"):
        return target(rnd, ctx["tmp"])
    return target(rnd, ctx["client"], ctx["catalog"], ctx["snapshot"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000, help="total, split over the targets")
    ap.add_argument("--targets", default=",".join(fz.TARGETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=3, help="tracebacks shown per target")
    ap.add_argument("--replay", default=None, help="TARGET:CASE, run one case verbosely")
    args = ap.parse_args()
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    if args.replay:
        names = [args.replay.split(":")[0]]
    unknown = [n for n in names if n not in fz.TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; choose from {', '.join(fz.TARGETS)}")
    warnings.simplefilter("ignore")
    server_log = _LastError()
    logging.getLogger("artsim.server").addHandler(server_log)
    logging.getLogger("artsim.server").propagate = False
    with tempfile.TemporaryDirectory() as tmp:
        ctx: dict = {"tmp": Path(tmp)}
        if "http" in names:
            ctx["catalog"] = fz.make_fuzz_catalog(Path(tmp) / "http")
            ctx["snapshot"] = fz.catalog_snapshot(ctx["catalog"])
            ctx["client"] = fz.http_client(ctx["catalog"]).__enter__()
        if args.replay:
            name, case = args.replay.split(":")
            rnd = random.Random(f"{name}-{args.seed}-{case}")
            print(run_case(name, rnd, ctx))
            return 0
        per = max(1, args.cases // len(names))
        total_bad = 0
        print(f"{per} cases per target, seed {args.seed}")
        print(f"{'target':8s} {'cases':>6s} {'ok':>6s} {'refused':>8s} {'failed':>7s} {'s':>7s}")
        for name in names:
            counts: Counter[str] = Counter()
            shown = 0
            started = time.perf_counter()
            for i in range(per):
                rnd = random.Random(f"{name}-{args.seed}-{i}")
                try:
                    counts[run_case(name, rnd, ctx)] += 1
                except Exception:
                    counts["failed"] += 1
                    if shown < args.show:
                        shown += 1
                        print(f"--- {name}:{i} ---\n{traceback.format_exc(limit=-6)}")
                        if name == "http" and server_log.text:
                            print(f"server log:\n{server_log.text}")
                server_log.text = ""
            seconds = time.perf_counter() - started
            total_bad += counts["failed"]
            print(
                f"{name:8s} {per:6d} {counts['ok']:6d} {counts['refused']:8d} "
                f"{counts['failed']:7d} {seconds:7.1f}",
                flush=True,
            )
        if "client" in ctx:
            ctx["client"].__exit__(None, None, None)
    print(f"total failures: {total_bad}")
    return 1 if total_bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
