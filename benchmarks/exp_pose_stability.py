"""Experiment: how stable are BlazePose's keypoints under the invariance transformations, and
do input canonicalisation or averaging make them more stable?

For a sample of the invariance benchmark's query figures (every --step-th of the paintings
`eval_poses.py` indexes; run it first, its detection cache lists them), each variant re-runs
detection on the painting and on its flipped, halved, grey, sepia and cropped copies, re-finds
the query figure (`eval_poses.refind`) and records its keypoint similarity to the expected
(transformed) keypoints. In the full benchmark, queries re-found with similarity >= 0.8 rank
their source painting first far more often than the rest (docs/poses.md), so the share of
queries at >= 0.8 is the figure of merit; person recall on the sample's People-Art boxes says
what a variant costs.

Variants (detector internals patched here, for this experiment only):
  base       the detector as shipped
  gray_auto  the landmark model sees an autocontrast grey copy (proposals unchanged)
  canon      everything sees an autocontrast grey copy (no colour proposals), 3 refinement passes
  canon_flip the same with flip-averaged landmarks
  jit        landmarks averaged over 5 jittered regions (shifts of 5 %, scales 0.9 / 1.1)

    .venv/bin/python benchmarks/exp_pose_stability.py base --step 10     # one variant per run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import eval_poses as ev  # noqa: E402

import artsim.detectors.poses as pm  # noqa: E402
from artsim.images import load_rgb  # noqa: E402

VARIANTS = ("base", "gray_auto", "canon", "canon_flip", "jit")
JITTER = ((0, 0, 1.0), (0.05, 0, 1.0), (-0.05, 0, 1.0), (0, 0.05, 1.1), (0, -0.05, 0.9))


def autocontrast_gray(arr: np.ndarray) -> np.ndarray:
    g = pm._gray(arr)[..., 0].astype(np.float32)
    lo, hi = np.percentile(g, [1, 99])
    g = np.clip((g - lo) * 255.0 / max(hi - lo, 1.0), 0, 255)
    return np.ascontiguousarray(np.repeat(np.rint(g).astype(np.uint8)[..., None], 3, axis=2))


def configure(variant: str) -> dict[str, Any]:
    """Patch the detector for `variant`; returns the detect_poses keyword arguments."""
    original = pm._landmarks
    if variant == "gray_auto":
        memo: dict[tuple, np.ndarray] = {}

        def grey_landmarks(arr: np.ndarray, roi: Any) -> Any:
            key = (arr.__array_interface__["data"][0], arr.shape)
            if key not in memo:
                memo.clear()
                memo[key] = autocontrast_gray(arr)
            return original(memo[key], roi)

        pm._landmarks = grey_landmarks
    elif variant.startswith("canon"):
        pm.GRAY_VIEWS = False
        pm.REFINE_PASSES = 3
    elif variant == "jit":

        def jittered(arr: np.ndarray, roi: Any) -> Any:
            cx, cy, side, rot, score = roi
            outs = [
                r
                for dx, dy, f in JITTER
                if (r := original(arr, (cx + dx * side, cy + dy * side, side * f, rot, score)))
            ]
            if not outs:
                return None
            kp, vis, presence, aux = zip(*outs, strict=True)
            return np.mean(kp, 0), np.mean(vis, 0), float(np.mean(presence)), np.mean(aux, 0)

        pm._landmarks = jittered
    return {"flip_average": variant == "canon_flip"}


def detect(variant: str, kwargs: dict[str, Any], im: Image.Image) -> list:
    if variant.startswith("canon"):
        im = Image.fromarray(autocontrast_gray(np.asarray(im.convert("RGB"))))
    return pm.detect_poses(im, min_score=ev.DEFAULT_MIN_SCORE, **kwargs)


def query_paintings(data: Path, cache_path: Path, step: int) -> tuple[list[str], dict, dict]:
    cache = ev.Cache(cache_path)
    items = ev.peopleart_items(data)
    missing = [it["key"] for it in items if f"multi|{it['key']}" not in cache.data]
    if missing:
        raise SystemExit(f"{cache_path} lacks {len(missing)} paintings: run eval_poses.py first")
    keys = [
        it["key"]
        for it in items
        if ev.kept([ev.pose_from_json(d) for d in cache.data[f"multi|{it['key']}"]["poses"]])
    ]
    return keys[::step], {it["key"]: it for it in items}, {it["key"]: it["path"] for it in items}


def run(variant: str, keys: list[str], paths: dict[str, str]) -> dict[str, Any]:
    kwargs = configure(variant)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    for n, key in enumerate(keys):
        im = load_rgb(paths[key])
        base = detect(variant, kwargs, im)
        rec: dict[str, Any] = {"base": [ev.pose_to_json(p) for p in base]}
        if base:
            q = base[0]
            for name in ev.TRANSFORMS:
                transformed, place = ev.transform(name, im, q)
                found = ev.refind(place(q), detect(variant, kwargs, transformed))
                rec[name] = None if found is None else pm.keypoint_similarity(place(q), found)
        out[key] = rec
        if n % 10 == 0:
            print(f"{variant} {n}/{len(keys)} {time.perf_counter() - t0:.0f}s", flush=True)
    return {"seconds": time.perf_counter() - t0, "queries": out}


def summary(result: dict[str, Any], items: dict[str, Any], people_only: bool) -> dict[str, Any]:
    queries = result["queries"]
    chosen = [
        k
        for k, r in queries.items()
        if r["base"]
        and (
            not people_only
            or any(
                ev.match_quality(b, ev.pose_from_json(r["base"][0])) > 0 for b in items[k]["all"]
            )
        )
    ]
    row: dict[str, Any] = {"queries": len(chosen), "seconds": round(result["seconds"])}
    for name in ev.TRANSFORMS:
        ks = np.array([queries[k][name] or 0.0 for k in chosen])
        row[name] = {
            "refound": round(float(np.mean(ks > 0)), 3),
            "similarity>=0.8": round(float(np.mean(ks >= 0.8)), 3),
        }
    boxes = hit = 0
    for k, r in queries.items():
        if items[k]["all"]:
            boxes += len(items[k]["counted"])
            hit += ev.match(items[k]["counted"], [ev.pose_from_json(p) for p in r["base"]])
    row["person_recall"] = round(hit / max(1, boxes), 3)
    row["person_boxes"] = boxes
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("variant", choices=VARIANTS, help="one per run: its patches are not undone")
    p.add_argument("--data", type=Path, default=ev.default_data())
    p.add_argument("--cache", type=Path, default=None, help="eval_poses.py's detection cache")
    p.add_argument("--step", type=int, default=10, help="every step-th query painting")
    p.add_argument("--out", type=Path, default=None, help="JSON (default /tmp/...-VARIANT.json)")
    args = p.parse_args(argv)
    cache = args.cache or Path(f"/tmp/artsim_eval_poses_cache-{ev.detector_version()}.json")
    keys, items, paths = query_paintings(args.data, cache, args.step)
    result = run(args.variant, keys, paths)
    report = {
        "variant": args.variant,
        "step": args.step,
        "all": summary(result, items, people_only=False),
        "annotated_people": summary(result, items, people_only=True),
    }
    print(json.dumps(report, indent=1))
    out = args.out or Path(f"/tmp/artsim_pose_stability-{args.variant}.json")
    out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
