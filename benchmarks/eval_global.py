"""Choose the whole-image encoder's pooling and input view from measurements on the ground truth.

Variants of EfficientNet-Lite2 (one forward pass per input view, every pooling from the same
feature maps): pooling avg / GeM(p=3) / max / GeM + mean of the stride-16 stage (gem+mid);
input view centre-crop (the model's eval transform) or the whole painting resized to a square. Reports instance recall@1 / mAP (clean and distorted
queries) and same-artist precision@10 / mAP@10 on a fixed, seeded subset of the WikiArt images.

    python benchmarks/eval_global.py --data ../shared/data --artist-per 12 --out docs/results/global_variants.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from artsim.encoders import load_encoder
from artsim.encoders.base import gem
from artsim.evaluation import eval_instance, eval_same_artist, load_instance_pairs, load_same_artist
from artsim.evaluation.distort import distort
from artsim.evaluation.groundtruth import sample_per_label
from artsim.images import load_rgb

REPO = Path(__file__).resolve().parents[1]


def views(enc, image, mode):
    pre = enc.preprocess
    if mode == "crop":
        return pre.to_uint8(image)
    sq = image.resize((pre.crop, pre.crop), resample=3)
    return torch.from_numpy(np.asarray(sq).copy()).permute(2, 0, 1)


def embed(enc, images, mode, batch=32):
    out = {"avg": [], "gem": [], "max": [], "gem+mid": []}
    m, mid_block = enc.model, enc.extra["mid_block"]
    for i in range(0, len(images), batch):
        x = torch.stack([views(enc, im, mode) for im in images[i : i + batch]])
        x = enc.preprocess.normalise(x).contiguous(memory_format=torch.channels_last)
        if enc.bf16:
            x = x.to(torch.bfloat16)
        with torch.inference_mode():
            h = m._swish(m._bn0(m._conv_stem(x)))
            for j, block in enumerate(m._blocks):
                h = block(h)
                if j == mid_block:
                    mid = h.float().mean((2, 3))
            fmap = m._swish(m._bn1(m._conv_head(h))).float()
        g = gem(fmap, 3.0)
        pooled = {
            "avg": fmap.mean((2, 3)),
            "gem": g,
            "max": fmap.amax((2, 3)),
            "gem+mid": torch.cat(
                [
                    torch.nn.functional.normalize(g, dim=1),
                    torch.nn.functional.normalize(mid, dim=1),
                ],
                1,
            ),
        }
        for k, v in pooled.items():
            out[k].append(torch.nn.functional.normalize(v, dim=1).numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument(
        "--artist-per", type=int, default=12, help="images per artist in the same-artist subset"
    )
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "global_variants.json")
    ap.add_argument("--bf16", action="store_true")
    args = ap.parse_args()
    gt = args.data / "groundtruth"
    pairs = load_instance_pairs(gt)
    artists = load_same_artist(gt)
    rng = random.Random(0)
    subset = sample_per_label(artists, args.artist_per, rng)
    gallery = sorted(set(subset) | {p.query_path for p in pairs} | {p.target_path for p in pairs})
    print(
        f"gallery {len(gallery)} images; {len(pairs)} instance pairs; {len(subset)} same-artist images"
    )
    images = [load_rgb(args.data / p, max_side=520) for p in gallery]
    nprng = np.random.default_rng(0)
    distorted = {
        p.query_path: distort(load_rgb(args.data / p.query_path, max_side=520), nprng)
        for p in pairs
    }
    pos = {p: i for i, p in enumerate(gallery)}
    enc = load_encoder("efficientnet-lite2", bf16=args.bf16, pooling="gem+mid")
    results = {}
    for mode in ("crop", "square"):
        t = time.perf_counter()
        vecs = embed(enc, images, mode)
        dvecs = embed(enc, list(distorted.values()), mode)
        dpos = {p: i for i, p in enumerate(distorted)}
        print(f"{mode}: embedded in {time.perf_counter() - t:.0f}s")
        for pool, v in vecs.items():

            def search(path, v=v, dv=dvecs[pool], dpos=dpos, use_distorted=False):
                q = dv[dpos[path]] if use_distorted else v[pos[path]]
                s = v @ q
                order = np.argsort(-s, kind="stable")
                return [(gallery[i], float(s[i])) for i in order[:100] if gallery[i] != path]

            inst = eval_instance(pairs, search, set(gallery)).summary
            inst_d = eval_instance(
                pairs, lambda p, s=search: s(p, use_distorted=True), set(gallery)
            ).summary
            art = eval_same_artist(
                subset, lambda p, s=search: [r for r in s(p) if r[0] in subset], set(subset)
            ).summary
            key = f"{mode}+{pool}"
            results[key] = {
                "instance_recall@1": inst["means"]["recall@1"],
                "instance_map": inst["means"]["ap"],
                "distorted_recall@1": inst_d["means"]["recall@1"],
                "artist_precision@10": art["means"]["precision@10"],
                "artist_map@10": art["means"]["ap@10"],
            }
            print(key, json.dumps({k: round(x, 4) for k, x in results[key].items()}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "gallery": len(gallery),
                "artist_subset": len(subset),
                "bf16": args.bf16,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
