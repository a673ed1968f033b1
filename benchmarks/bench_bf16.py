"""Does bf16 change rankings? Embed the same real paintings in fp32 and bf16 and compare:
per-image cosine between the two vectors, top-1 / top-10 agreement of the rankings, and
instance recall@1 on the ground-truth pairs with each precision.

    python benchmarks/bench_bf16.py --data ../shared/data --n 600
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from artsim.encoders import load_encoder
from artsim.encoders.base import cpu_supports_bf16
from artsim.evaluation import load_instance_pairs
from artsim.images import load_rgb

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument(
        "--n", type=int, default=600, help="distractor paintings besides the instance pairs"
    )
    args = ap.parse_args()
    pairs = load_instance_pairs(args.data / "groundtruth")
    paths = sorted({p.query_path for p in pairs} | {p.target_path for p in pairs})
    extra = sorted((args.data / "wikiart" / "images").rglob("*.jpg"))[:: max(1, 5407 // args.n)][
        : args.n
    ]
    paths += [
        p.relative_to(args.data).as_posix()
        for p in extra
        if p.relative_to(args.data).as_posix() not in paths
    ]
    images = [load_rgb(args.data / p, max_side=260) for p in paths]
    out = {"cpu_bf16": cpu_supports_bf16(), "images": len(paths)}
    vecs = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        enc = load_encoder("efficientnet-lite2", bf16=bf16)
        enc.embed_images(images[:32])
        t = time.perf_counter()
        vecs[name] = enc.embed_images(images, batch_size=32)
        out[f"{name}_img_s"] = len(images) / (time.perf_counter() - t)
    a, b = vecs["fp32"], vecs["bf16"]
    cos = (a * b).sum(1)
    sa, sb = a @ a.T, b @ b.T
    np.fill_diagonal(sa, -9)
    np.fill_diagonal(sb, -9)
    top10a, top10b = np.argsort(-sa, 1)[:, :10], np.argsort(-sb, 1)[:, :10]
    out.update(
        cos_min=float(cos.min()),
        cos_median=float(np.median(cos)),
        top1_agreement=float((sa.argmax(1) == sb.argmax(1)).mean()),
        top10_overlap=float(
            np.mean([len(set(x) & set(y)) / 10 for x, y in zip(top10a, top10b, strict=True)])
        ),
    )
    pos = {p: i for i, p in enumerate(paths)}
    for name, s in (("fp32", sa), ("bf16", sb)):
        hits = [s[pos[p.query_path]].argmax() == pos[p.target_path] for p in pairs]
        out[f"{name}_instance_recall@1"] = float(np.mean(hits))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
