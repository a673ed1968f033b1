"""Photo queries under conditions the evaluation settings do not vary: the framed setting's
photos turned sideways without EXIF, sent through a messenger (480 px), underexposed, or
"enhanced" by a phone (saturation, contrast, sharpening). A quick probe on a seeded sample
of the ground-truth pairs, recall@1 per condition, the photo path as `Catalog.search` runs it.

    python benchmarks/probe_photo_conditions.py --catalog eval-catalog --data ../shared/data \
        --n 60 --conditions none,rot90,rot180,small480,dark,vivid
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from artsim.catalog import Catalog
from artsim.evaluation.groundtruth import load_instance_pairs
from artsim.evaluation.run import framed_queries, gt_index, usable_pairs

REPO = Path(__file__).resolve().parents[1]
CONDITIONS = ("none", "rot90", "rot180", "small480", "dark", "vivid")


def condition(kind: str, im: Image.Image, rng: np.random.Generator) -> Image.Image:
    if kind == "none":
        return im
    if kind == "rot90":  # a phone held sideways, its EXIF orientation lost
        return im.transpose(Image.Transpose.ROTATE_90)
    if kind == "rot180":
        return im.transpose(Image.Transpose.ROTATE_180)
    if kind == "small480":  # a messenger's copy
        s = 480 / max(im.size)
        return im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BILINEAR)
    if kind == "dark":  # underexposed, darks crushed, high-ISO noise, JPEG 35
        a = np.asarray(im, np.float32) / 255
        a = (a**1.6) * 0.45 * 255 + rng.normal(0, 10, a.shape) + rng.normal(0, 6, (*a.shape[:2], 1))
        buf = io.BytesIO()
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=35)
        return Image.open(buf).convert("RGB")
    if kind == "vivid":  # a phone's "enhanced" look
        im = ImageEnhance.Contrast(ImageEnhance.Color(im).enhance(1.6)).enhance(1.4)
        return im.filter(ImageFilter.UnsharpMask(3, 150, 2))
    raise ValueError(f"unknown condition {kind!r}; choose from {', '.join(CONDITIONS)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalog", type=Path, default=REPO / "eval-catalog")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=60, help="ground-truth pairs (a seeded sample)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cat = Catalog.open(args.catalog)
    path_to_id, id_to_path = gt_index(cat, args.data)
    pairs = usable_pairs(load_instance_pairs(args.data / "groundtruth"), set(path_to_id))
    pick = np.random.default_rng(5).choice(len(pairs), size=min(args.n, len(pairs)), replace=False)
    sample = [pairs[i] for i in sorted(pick)]
    photos = framed_queries(sample, set(path_to_id), args.data, seed=3, p_two=0.0)
    out: dict[str, float] = {}
    for kind in args.conditions.split(","):
        rng = np.random.default_rng(11)  # the same noise for every run of a condition
        hits, started = 0, time.perf_counter()
        for p in sample:
            found = cat.search(condition(kind, photos[p.query_path].image, rng), k=5)
            # the query file is itself in the catalog: the other rendering is the answer
            ranked = [id_to_path.get(h.id) for h in found if id_to_path.get(h.id) != p.query_path]
            hits += bool(ranked) and ranked[0] == p.target_path
        out[kind] = hits / len(sample)
        per_query = (time.perf_counter() - started) / len(sample)
        print(
            f"{kind}: {hits}/{len(sample)} = {out[kind]:.3f} ({per_query:.2f} s a query)",
            flush=True,
        )
    if args.out:
        args.out.write_text(
            json.dumps({"catalog": str(args.catalog), "n": len(sample), "recall@1": out}, indent=2)
            + "\n"
        )


if __name__ == "__main__":
    main()
