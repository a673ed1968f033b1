"""Feeding the model: decode and resize time against model time, per image, in one process.

For WikiArt (224 px files) and NGA (up to 1,024 px): reduced-size decode as artsim does it
(`open_image(max_side=260)`: JPEG draft mode, then at most 2x the side), a full-size decode
(`Image.open(...).convert("RGB")`), the resize to the model's 260 x 260 input, and the model
on the default backend (batch 32), all in milliseconds per image on one thread for decoding
(the model uses every core). Medians of `--runs` passes.

    python benchmarks/bench_decode.py --data ../shared/data --n 64
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from artsim.encoders import load_encoder
from artsim.images import open_image

REPO = Path(__file__).resolve().parents[1]


def per_image_ms(fn, items, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        for it in items:
            fn(it)
        times.append((time.perf_counter() - t) * 1000 / len(items))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    enc = load_encoder("efficientnet-lite2", backend=args.backend)
    sets = {
        "WikiArt 224 px": sorted((args.data / "wikiart" / "images").rglob("*.jpg"))[: args.n],
        "NGA <= 1024 px": sorted((args.data / "nga" / "images").glob("*.jpg"))[-args.n :],
    }
    print(f"backend {enc.backend}; decode on one thread; ms per image, median of {args.runs}")
    print("| set | reduced decode | full decode | resize to 260 | model (batch 32) |")
    print("|---|---:|---:|---:|---:|")
    for name, files in sets.items():
        reduced = per_image_ms(lambda f: open_image(f, max_side=260), files, args.runs)
        full = per_image_ms(lambda f: Image.open(f).convert("RGB"), files, args.runs)
        images = [open_image(f, max_side=260).image for f in files]
        resize = per_image_ms(enc.preprocess.to_uint8, images, args.runs)
        batch = torch.stack([enc.preprocess.to_uint8(im) for im in images[:32]])
        enc.embed_batch(batch[:2])
        model = per_image_ms(enc.embed_batch, [batch], args.runs) / len(batch)
        print(f"| {name} | {reduced:.2f} | {full:.2f} | {resize:.2f} | {model:.2f} |")


if __name__ == "__main__":
    main()
