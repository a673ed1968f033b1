"""The keypoint-vote index of photo queries (catalog/local_votes.py): building it against
adding a later run's paintings to it, and what an extended index costs a vote search.

    python benchmarks/bench_vote_index.py --catalog eval-catalog [--new 70,340,680] [--out F]

Works on the catalog's stored local features, in memory (nothing is written to the catalog):
- for each N of ``--new``: an index built without the store's last N paintings, then
  extended with them (`extend_vote_index`) and written to a temporary file, against building
  the index on every painting;
- the worst case for queries: an index sized and trained for half the store (its lists as
  a build of that half makes them), extended to all of it, against one built on all of it:
  vote-search time of ``--queries`` stored paintings used as queries, and whether each
  finds its own painting first.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _without_last(store: Any, n: int, *, size_lists: bool = False) -> Any:
    """An index built as if the store lacked its last ``n`` paintings (size_lists: its list
    count sized for that smaller store too, as a build at that time would have)."""
    import artsim.catalog.local_votes as lv

    every, count = store.ids, store.keypoint_count
    kept = every()[: len(every()) - n]
    store.ids = lambda: kept
    if size_lists:
        share = len(kept) / len(every())
        store.keypoint_count = lambda per=None: int(count(per) * share)
    try:
        return lv.build_vote_index(store)
    finally:
        del store.ids
        if size_lists:
            del store.keypoint_count


def main() -> None:
    import faiss

    import artsim.catalog.local_votes as lv
    from artsim.catalog import Catalog
    from artsim.catalog.local import local_store

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalog", type=Path, required=True)
    ap.add_argument("--new", default="70,340,680", help="paintings added by a later run")
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    store = local_store(Catalog.open(args.catalog))
    ids = store.ids()
    out: dict[str, Any] = {
        "catalog": str(args.catalog),
        "paintings": len(ids),
        "machine": platform.processor() or platform.machine(),
        "extend": [],
    }
    for n in (int(x) for x in args.new.split(",")):
        older = _without_last(store, n)
        t0 = time.perf_counter()
        grown = lv.extend_vote_index(older, store)
        extend_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            faiss.write_index(grown.index, str(Path(tmp) / "votes.faiss"))
            write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        built = lv.build_vote_index(store)
        build_s = time.perf_counter() - t0
        row = {
            "new": n,
            "extend_s": round(extend_s, 3),
            "write_s": round(write_s, 3),
            "build_s": round(build_s, 3),
            "keypoints": [int(grown.index.ntotal), int(built.index.ntotal)],
        }
        out["extend"].append(row)
        print(json.dumps(row), flush=True)

    half = _without_last(store, len(ids) // 2, size_lists=True)
    extended = lv.extend_vote_index(half, store)
    full = lv.build_vote_index(store)
    queries = [(i, store.get(i)) for i in ids[:: max(1, len(ids) // args.queries)]][: args.queries]
    searches: dict[str, Any] = {}
    for name, vi in (("built on all", full), ("built on half, extended", extended)):
        per_pass, first = [], 0
        for _ in range(args.passes):
            times = []
            first = 0
            for item_id, q in queries:
                t0 = time.perf_counter()
                top = vi.top(q, 20)
                times.append(time.perf_counter() - t0)
                first += bool(top) and top[0][0] == item_id
            per_pass.append(round(1000 * statistics.median(times), 2))
        searches[name] = {
            "lists": int(faiss.extract_index_ivf(vi.index).nlist),
            "median_ms_per_pass": per_pass,
            "own_painting_first": f"{first}/{len(queries)}",
        }
        print(name, json.dumps(searches[name]), flush=True)
    out["vote_search"] = searches
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
