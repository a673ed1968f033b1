"""Retrieval quality and model speed of each inference backend, side by side, on the ground truth.

Variants of the default encoder (EfficientNet-Lite2, gem+mid, whole view):
- torch-bf16: PyTorch in bf16, what artsim ran on CPUs with AVX512-BF16 before the backends;
- torch-fp32: PyTorch fp32, the reference;
- onnx: ONNX Runtime fp32, the new default on CPUs without AMX;
- openvino: OpenVINO fp32;
- openvino-bf16: OpenVINO in bf16 (CPUs with native bf16 only; session 22);
- openvino-int8: `--backend openvino-int8` (artsim.encoders.int8: static int8 by NNCF, run by
  OpenVINO), calibrated as an index run calibrates it, on 64 real paintings: here WikiArt
  paintings that are not in the evaluation gallery (never random data).

A variant may name the network's input size after an @ (``onnx@224``, ``torch-fp32@260``):
without one it runs at artsim's default (224 px since 2026-12-03; 260 px before).

Metrics: instance recall@1 and mAP with clean and distorted queries (distorted also on each
half of the seeded split by painting, `artsim.evaluation.run.split_by_painting`), same-artist
precision@10 / mAP@10, same-sitter hit@1 and mAP with the global vectors; plus the cosine of each
variant's vectors to PyTorch fp32's and the model-only speed (batch 32, median of 3, in turn).

    python benchmarks/eval_backends.py --data ../shared/data --out docs/results/backends.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from artsim.encoders import int8, load_encoder
from artsim.encoders.base import default_threads
from artsim.evaluation import eval_instance, eval_same_artist, load_instance_pairs, load_same_artist
from artsim.evaluation.distort import distort
from artsim.evaluation.groundtruth import eval_same_sitter, load_same_sitter, sample_per_label
from artsim.evaluation.run import split_by_painting
from artsim.images import load_rgb

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--artist-per", type=int, default=8)
    ap.add_argument("--calibration-n", type=int, default=int8.CALIBRATION_IMAGES)
    ap.add_argument(
        "--distort-seed",
        type=int,
        default=0,
        help="seed of the distorted queries (another seed: other distortions of the same pairs)",
    )
    ap.add_argument(
        "--variants",
        default="torch-bf16,torch-fp32,onnx,openvino,openvino-int8",
        help="comma-separated subset of the variants above",
    )
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "backends.json")
    args = ap.parse_args()
    gt = args.data / "groundtruth"
    pairs = load_instance_pairs(gt)
    split = split_by_painting(pairs)
    artists = load_same_artist(gt)
    sitters = load_same_sitter(gt)
    rng = random.Random(0)
    subset = sample_per_label(artists, args.artist_per, rng)
    gallery = sorted(
        set(subset) | set(sitters) | {p.query_path for p in pairs} | {p.target_path for p in pairs}
    )
    used = set(gallery)
    wikiart = sorted(
        str(f.relative_to(args.data)) for f in (args.data / "wikiart" / "images").rglob("*.jpg")
    )
    calib_paths = rng.sample([p for p in wikiart if p not in used], args.calibration_n)
    print(f"gallery {len(gallery)}; {len(pairs)} pairs; calibration {len(calib_paths)} paintings")
    images = [load_rgb(args.data / p, max_side=520) for p in gallery]
    nprng = np.random.default_rng(args.distort_seed)
    distorted = [distort(load_rgb(args.data / p.query_path, max_side=520), nprng) for p in pairs]
    dpos = {p.query_path: i for i, p in enumerate(pairs)}
    pos = {p: i for i, p in enumerate(gallery)}

    ref = load_encoder.__wrapped__("efficientnet-lite2", backend="torch", bf16=False)
    pre = ref.preprocess
    calibration = torch.stack(
        [pre.to_uint8(load_rgb(args.data / p, max_side=2 * pre.crop)) for p in calib_paths]
    )
    bench_images = images[:32]  # resized by each variant to its own input size
    wanted = args.variants.split(",")
    variants = {"torch-fp32": ref} if "torch-fp32" in wanted else {}
    if "torch-bf16" in wanted:
        variants["torch-bf16"] = load_encoder.__wrapped__(
            "efficientnet-lite2", backend="torch", bf16=True
        )
    for name in ("onnx", "openvino", "openvino-bf16"):
        if name in wanted or (name == "onnx" and not variants):
            variants[name] = load_encoder.__wrapped__("efficientnet-lite2", backend=name)
    for name in (w for w in wanted if "@" in w):
        backend, size = name.split("@")
        precision = {"torch-fp32": {"backend": "torch", "bf16": False}}.get(
            backend, {"backend": backend}
        )
        variants[name] = load_encoder.__wrapped__("efficientnet-lite2", size=int(size), **precision)
    if "openvino-int8" in wanted:
        t = time.perf_counter()
        folder = Path(tempfile.mkdtemp(prefix="eval-int8-"))
        record = int8.calibrate(ref, folder, calibration, default_threads())
        variants["openvino-int8"] = dataclasses.replace(
            ref,
            runner=int8.load_runner(folder, record, default_threads()),
            backend=int8.INT8_BACKEND,
        )
        print(f"int8 quantisation {time.perf_counter() - t:.0f}s: {json.dumps(record)}")
    # cosines against PyTorch fp32, or ONNX Runtime fp32 which equals it to 0.99999
    reference = "torch-fp32" if "torch-fp32" in variants else next(iter(variants))
    variants = {reference: variants[reference], **variants}

    speeds: dict[str, list[float]] = {k: [] for k in variants}
    batches = {
        name: torch.stack([enc.preprocess.to_uint8(im) for im in bench_images])
        for name, enc in variants.items()
    }
    for _ in range(3):
        for name, enc in variants.items():
            enc.embed_batch(batches[name][:4])  # warm
            t = time.perf_counter()
            enc.embed_batch(batches[name])
            speeds[name].append(len(bench_images) / (time.perf_counter() - t))

    results = {}
    fp32 = None
    for name, enc in variants.items():
        vecs = enc.embed_images(images)
        if name == reference:
            fp32 = vecs
        dvecs = enc.embed_images(distorted)

        def search(path, v=vecs, dv=dvecs, use_distorted=False):
            q = dv[dpos[path]] if use_distorted else v[pos[path]]
            s = v @ q
            order = np.argsort(-s, kind="stable")
            return [(gallery[i], float(s[i])) for i in order[:100] if gallery[i] != path]

        inst = eval_instance(pairs, search, used).summary
        inst_d = eval_instance(pairs, lambda p, s=search: s(p, use_distorted=True), used).summary
        halves = {
            half: eval_instance(
                [p for p in pairs if split[p.query_path] == half],
                lambda p, s=search: s(p, use_distorted=True),
                used,
            ).summary["means"]["recall@1"]
            for half in ("tune", "held-out")
        }
        art = eval_same_artist(
            subset, lambda p, s=search: [r for r in s(p) if r[0] in subset], set(subset)
        ).summary
        sit = eval_same_sitter(
            sitters, lambda p, s=search: [r for r in s(p) if r[0] in sitters], set(sitters)
        ).summary
        results[name] = {
            "instance_recall@1": inst["means"]["recall@1"],
            "instance_map": inst["means"]["ap"],
            "distorted_recall@1": inst_d["means"]["recall@1"],
            "distorted_map": inst_d["means"]["ap"],
            "distorted_recall@1_tune": halves["tune"],
            "distorted_recall@1_held_out": halves["held-out"],
            "artist_precision@10": art["means"]["precision@10"],
            "artist_map@10": art["means"]["ap@10"],
            "sitter_hit@1": sit["means"]["hit@1"],
            "sitter_map": sit["means"]["ap"],
            "model_img_s": statistics.median(speeds[name]) if speeds[name] else None,
            "vectors": vecs,
        }
    for name, r in results.items():
        cos = (r.pop("vectors") * fp32).sum(axis=1)
        r["cosine_to_fp32_min"] = float(cos.min())
        r["cosine_to_fp32_median"] = float(np.median(cos))
        print(name, json.dumps({k: v if v is None else round(v, 4) for k, v in r.items()}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "gallery": len(gallery),
                "calibration": len(calib_paths),
                "speed_batch": len(bench_images),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
