"""CPU and wall seconds of each stage of a fused query's analysis, each stage run alone in one
thread of this process (the query itself runs the encoder beside the face path):

    python benchmarks/bench_query_stages.py --catalog CAT \\
        --queries '../shared/data/wikiart/images/Baroque/*.jpg' --n 24

Stages: decode, global encoder, BlazeFace, BlazeFace + O-Net, the MTCNN fallback (where
BlazeFace finds no face), alignment, identity vectors of every face and of the largest alone.
CPU seconds are the whole process's (runtimes work in their own threads).
"""

from __future__ import annotations

import argparse
import glob
import statistics
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - w


def main() -> None:
    from artsim.analysis import decode, decode_side
    from artsim.catalog import Catalog
    from artsim.detectors import faces as fd
    from artsim.encoders.faces import align_faces, embed_chips

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--queries", required=True, help="a glob pattern of image files")
    ap.add_argument("--n", type=int, default=24)
    args = ap.parse_args()
    enc = Catalog.open(args.catalog).encoder
    files = sorted(glob.glob(args.queries))
    files = files[:: max(1, len(files) // args.n)][: args.n]
    side = decode_side({"global", "face"}, enc)
    warm = decode(files[0], side).image  # models loaded before timing
    enc.embed_images([warm], 1)
    fd.detect_faces(warm)
    rows: list[dict[str, Any]] = []
    threshold = fd.MIN_SCORES["ensemble"]
    for f in files:
        r: dict[str, Any] = {}
        li, r["decode"], _ = timed(lambda f=f: decode(f, side))
        im = li.image
        _, r["global"], r["global_wall"] = timed(lambda im=im: enc.embed_images([im], 1))
        _, r["blazeface"], _ = timed(lambda im=im: fd._detect_blazeface(im))
        run, r["blazeface+onet"], _ = timed(lambda im=im: fd._run_detector(im, "ensemble"))
        faces, r["fallback"], _ = timed(lambda run=run: fd._faces_of(run, threshold, True))
        r["fell_back"] = not any(s >= threshold for _, s, _ in run.dets)
        r["faces"] = len(faces)
        if faces:
            aligned, r["align"], _ = timed(lambda im=im, faces=faces: align_faces(im, faces))
            chips = [a.chip for a in aligned]
            _, r["identity_all"], _ = timed(lambda chips=chips: embed_chips(chips))
            _, r["identity_one"], _ = timed(lambda chips=chips: embed_chips(chips[:1]))
        rows.append(r)
    for key in ("decode", "global", "global_wall", "blazeface", "blazeface+onet", "fallback",
                "align", "identity_all", "identity_one"):  # fmt: skip
        v = [r[key] for r in rows if key in r]
        print(
            f"{key:15s} n={len(v):3d} median={statistics.median(v):.4f} s  mean={statistics.mean(v):.4f} s"
        )
    print(f"fell back to MTCNN: {sum(r['fell_back'] for r in rows)} of {len(rows)}; "
          f"faces per query: {[r['faces'] for r in rows]}")  # fmt: skip


if __name__ == "__main__":
    main()
