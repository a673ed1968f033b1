"""`make eval`: build (or resume) a catalog of the whole sample data root, score it against the
ground truth, choose the fusion weights, and regenerate docs/evaluation.md.

    python benchmarks/make_evaluation.py --data ../shared/data

Steps (each resumable; a re-run only does what is missing):
1. catalog `eval-catalog/` of every image under the data root, global and local aspects (the
   local one for the photo settings of `artsim eval --distort`);
2. faces for the same-sitter images and 560 other WikiArt portraits (the sitter task's
   gallery), poses for the same-sitter images, so face, pose and fused search can be scored;
3. `artsim eval` over every aspect, with distorted queries and the refinements (query
   expansion, whitening; test-time flip averaging by re-embedding the catalog with the
   encoder's flip_average=True);
4. a small grid over fusion weights, scored on all three tasks;
5. the SSIM pixel baseline next to the model's results;
6. docs/evaluation.md with the tables, the chart and the per-model pooling study.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from artsim.catalog import Catalog
from artsim.evaluation.groundtruth import (
    duplicate_ignore_map,
    eval_instance,
    eval_same_artist,
    eval_same_sitter,
    load_exact_duplicates,
    load_instance_pairs,
    load_near_duplicates,
    load_same_artist,
    load_same_sitter,
    restrict_search,
)
from artsim.evaluation.pixel import ssim_topk_vs_random
from artsim.evaluation.report import bar_chart, markdown_tables
from artsim.evaluation.run import _row, distorted_queries, evaluate, gt_index, make_search
from artsim.records import SourceItem

REPO = Path(__file__).resolve().parents[1]
WEIGHT_GRID = [
    {"global": 1.0, "face": 0.0, "pose": 0.0},
    {"global": 1.0, "face": 0.5, "pose": 0.0},
    {"global": 1.0, "face": 1.0, "pose": 0.0},
    {"global": 1.0, "face": 2.0, "pose": 0.0},
    {"global": 1.0, "face": 1.0, "pose": 0.25},
    {"global": 1.0, "face": 1.0, "pose": 0.5},
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build_catalog(data: Path, cat_dir: Path, *, regions: bool) -> Catalog:
    cat = Catalog.create(cat_dir)
    log(f"global and local aspects over {data}")
    cat.add(data, aspects=["global", "local"], batch_size=32, progress=True)
    cat = Catalog.open(cat_dir)
    if regions:
        sitters = set(load_same_sitter(data / "groundtruth"))
        portraits = set()
        with open(data / "wikiart" / "labels.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                if row["genre"] == "portrait":
                    portraits.add(f"wikiart/images/{row['path']}")
        # the sitter task's gallery: every same-sitter image plus 560 other portraits as
        # distractors (all 1,260 would take ~25 min of face analysis on 2 cores)
        wanted = sorted(sitters | set(sorted(portraits)[:560]))
        path_to_id, _ = gt_index(cat, data)
        items = [
            SourceItem(path_to_id[p], cat.image_of(path_to_id[p]), cat.metadata(path_to_id[p]))
            for p in wanted
            if p in path_to_id
        ]
        log(f"face aspect over {len(items)} portraits and same-sitter images")
        cat.add(items, aspects=["global", "face"], batch_size=16, progress=True)
        # figures are slower to find: the same-sitter images only (enough to score fused search)
        few = [it for it in items if id_to_path_of(cat, it.id, data) in sitters]
        log(f"pose aspect over {len(few)} same-sitter images")
        cat.add(few, aspects=["global", "pose"], batch_size=16, progress=True)
    return Catalog.open(cat_dir)


def id_to_path_of(cat: Catalog, item_id: str, data: Path) -> str:
    return Path(cat.image_of(item_id)).resolve().relative_to(data.resolve()).as_posix()


def weight_grid(cat: Catalog, gt: Path) -> list[dict]:
    path_to_id, id_to_path = gt_index(cat, gt.parent)
    available = set(path_to_id)
    ignore = duplicate_ignore_map(load_exact_duplicates(gt), load_near_duplicates(gt))
    pairs, sitters = load_instance_pairs(gt), load_same_sitter(gt)
    rows = []
    for w in WEIGHT_GRID:
        if w["pose"] and "pose" not in cat.aspect_names():
            continue
        search = make_search(cat, path_to_id, id_to_path, "fused", 100, weights=w)
        # the same-artist task is left out of the grid: its queries mostly have no face or
        # pose analysis, so fused equals global for them (it is scored once, in the main run)
        sitter = eval_same_sitter(sitters, search, available, ignore=ignore).summary["means"]
        r = {
            "weights": w,
            "instance_recall@1": eval_instance(pairs, search, available, ignore=ignore).summary[
                "means"
            ]["recall@1"],
            "sitter_hit@1": sitter["hit@1"],
            "sitter_hit@5": sitter["hit@5"],
            "sitter_map": sitter["ap"],
        }
        log(f"fusion {w}: {json.dumps({k: round(v, 4) for k, v in r.items() if k != 'weights'})}")
        rows.append(r)
    return rows


def flip_study(cat: Catalog, gt: Path, seed: int = 0) -> list[dict]:
    """Global-aspect rows for test-time flip averaging: every catalog image re-embedded as the
    mean of the image and its mirror image, scored on the same tasks and distorted queries."""
    from artsim.encoders import load_encoder
    from artsim.images import open_image
    from artsim.search.index import build_index

    m = cat.manifest["model"]  # the catalog's own encoder settings, plus the flip
    enc = load_encoder(
        m["name"],
        model_path=cat.model_path,
        bf16=m.get("bf16"),
        pooling=m.get("pooling"),
        flip_average=True,
    )
    ids = cat.ids
    log(f"flip averaging: re-embedding {len(ids)} images")
    vecs = np.zeros((len(ids), enc.dim), dtype=np.float32)
    for start in range(0, len(ids), 64):
        chunk = ids[start : start + 64]
        ims = [open_image(cat.image_of(i), max_side=enc.preprocess.resize).image for i in chunk]
        vecs[start : start + len(chunk)] = enc.embed_images(ims)
    index = build_index(vecs, kind="flat")
    path_to_id, id_to_path = gt_index(cat, gt.parent)
    row_of = {item_id: r for r, item_id in enumerate(ids)}
    available = set(path_to_id)

    def hits(q: np.ndarray, exclude: str | None, k: int = 100) -> list[tuple[str, float]]:
        scores, rows = index.search(q[None], k + 1)
        out = [
            (ids[r], float(sc))
            for sc, r in zip(scores[0], rows[0], strict=True)
            if r >= 0 and ids[r] != exclude
        ]
        return [(id_to_path[i], sc) for i, sc in out[:k] if i in id_to_path]

    def search(path: str) -> list[tuple[str, float]]:
        item_id = path_to_id[path]
        return hits(vecs[row_of[item_id]], item_id)

    ignore = duplicate_ignore_map(load_exact_duplicates(gt), load_near_duplicates(gt))
    pairs, artists, sitters = load_instance_pairs(gt), load_same_artist(gt), load_same_sitter(gt)
    rows = [
        _row(
            "instance",
            "global",
            "flip-average",
            eval_instance(pairs, search, available, ignore=ignore),
        ),
        _row(
            "artist",
            "global",
            "flip-average",
            eval_same_artist(
                artists, restrict_search(search, set(artists)), available, ignore=ignore
            ),
        ),
        _row(
            "sitter",
            "global",
            "flip-average",
            eval_same_sitter(sitters, search, available, ignore=ignore),
        ),
    ]
    queries = distorted_queries(pairs, available, gt.parent, seed)  # those evaluate() scores
    qvecs = dict(zip(queries, enc.embed_images(list(queries.values())), strict=True))

    def image_search(path: str) -> list[tuple[str, float]]:
        return [(p, sc) for p, sc in hits(qvecs[path], None) if p != path]

    rows.append(
        _row(
            "instance-distorted",
            "global",
            "flip-average",
            eval_instance(pairs, image_search, available, ignore=ignore),
        )
    )
    for r in rows:
        log(
            f"flip-average {r['task']}: {json.dumps({k: v for k, v in r.items() if isinstance(v, float)})}"
        )
    return rows


def ssim_baseline(cat: Catalog, gt: Path, n: int = 60) -> dict:
    path_to_id, id_to_path = gt_index(cat, gt.parent)
    artists = sorted(p for p in load_same_artist(gt) if p in path_to_id)
    rng = np.random.default_rng(0)
    queries = [artists[i] for i in rng.choice(len(artists), n, replace=False)]
    search = make_search(cat, path_to_id, id_to_path, "global", 5)
    results = [[p for p, _ in search(q)] for q in queries]
    return ssim_topk_vs_random(queries, results, artists, rng, k=5, root=gt.parent)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--catalog", type=Path, default=REPO / "eval-catalog")
    ap.add_argument("--no-regions", action="store_true", help="skip faces and poses (global only)")
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    args = ap.parse_args()
    gt = args.data / "groundtruth"
    started = time.perf_counter()
    cat = build_catalog(args.data, args.catalog, regions=not args.no_regions)
    log("scoring every aspect")
    run = evaluate(cat, gt, distort=True, refinements=True, progress=log)
    run.rows += flip_study(cat, gt)
    grid = weight_grid(cat, gt) if "face" in cat.aspect_names() else []
    log("SSIM baseline")
    ssim = ssim_baseline(cat, gt)
    results_dir = args.out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "evaluation.json").write_text(
        json.dumps({**run.to_dict(), "fusion_grid": grid, "ssim": ssim}, indent=2) + "\n"
    )
    bar_chart(run.rows, args.out / "img" / "evaluation.png")
    variants_path = results_dir / "global_variants.json"
    variants = json.loads(variants_path.read_text()) if variants_path.is_file() else None
    write_markdown(
        args.out / "evaluation.md", run, grid, ssim, variants, time.perf_counter() - started, cat
    )
    log(f"wrote {args.out / 'evaluation.md'}")


def write_markdown(path: Path, run, grid, ssim, variants, seconds: float, cat: Catalog) -> None:
    intro = (
        (path.parent / "evaluation_intro.md").read_text()
        if (path.parent / "evaluation_intro.md").is_file()
        else ""
    )
    m = cat.manifest["model"]
    # the backend and precision that made the vectors: bf16 ones differ from fp32 by ~0.001
    ran = f"{m.get('backend', 'torch')}, {'bf16' if m.get('bf16') else 'fp32'}"
    lines = [
        "# Evaluation",
        "",
        f"Generated by `make eval` on {time.strftime('%Y-%m-%d')} ({seconds / 60:.0f} min). Catalog: every image of "
        f"`../shared/data` ({len(cat)} paintings), model `{cat.model_name}` ({ran}); faces for the same-sitter images and "
        "560 other WikiArt portraits, poses for the same-sitter images. Raw numbers: `docs/results/evaluation.json`.",
        "",
        intro,
        "## Retrieval, per aspect and refinement",
        "",
        "![metrics](img/evaluation.png)",
        "",
        markdown_tables(run.rows),
        "Missing ground-truth rows (files not in the catalog): "
        + (", ".join(f"{k} {v}" for k, v in run.missing.items()) or "none")
        + ".",
        "",
    ]
    lines += [f"- {n}" for n in run.notes]
    if grid:
        lines += [
            "",
            "## Fusion weights",
            "",
            "| global | face | pose | instance R@1 | sitter hit@1 | sitter hit@5 | sitter mAP |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for g in grid:
            w = g["weights"]
            lines.append(
                f"| {w['global']} | {w['face']} | {w['pose']} | {g['instance_recall@1']:.3f} | {g['sitter_hit@1']:.3f} | {g['sitter_hit@5']:.3f} | {g['sitter_map']:.3f} |"
            )
    if variants:
        lines += [
            "",
            "## Pooling and input view of the default encoder",
            "",
            f"EfficientNet-Lite2 on a seeded subset ({variants['gallery']} images: all instance pairs, {variants['artist_subset']} same-artist images), "
            "from `benchmarks/eval_global.py`.",
            "",
            "| view + pooling | instance R@1 | instance mAP | distorted R@1 | artist P@10 | artist mAP@10 |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for key, r in variants["results"].items():
            lines.append(
                f"| {key} | {r['instance_recall@1']:.3f} | {r['instance_map']:.3f} | {r['distorted_recall@1']:.3f} | {r['artist_precision@10']:.3f} | {r['artist_map@10']:.3f} |"
            )
    lines += photo_lines(sorted((REPO / "docs" / "results").glob("photos_*.json")))
    lines += [
        "",
        "## The pixel baseline (SSIM)",
        "",
        f"Mean SSIM between 60 same-artist queries and their top-5 global results: **{ssim['topk']:.3f}**; "
        f"between the same queries and random paintings: **{ssim['random']:.3f}**.",
        "",
    ]
    path.write_text("\n".join(lines) + "\n")


def photo_lines(paths: list[Path]) -> list[str]:
    """The photo-query study (benchmarks/eval_photos.py, one JSON per setting), when run."""
    data: dict = {"settings": {}}
    for path in paths:
        run = json.loads(path.read_text())
        if "settings" in run:  # not the timing benchmark's file
            data["paintings"] = run["paintings"]
            data["settings"].update(run["settings"])
    if not data["settings"]:
        return []
    lines = [
        "",
        "## Photos of paintings: localisation and verification",
        "",
        f"From `benchmarks/eval_photos.py` ({data['paintings']} paintings; see "
        "[photos.md](photos.md)). `off`: global search of the whole photo with the full "
        "vector (before issue 13); `auto`: the whole photo and each rectified painting "
        "searched with the GeM part, the union of their top 50 verified by RootSIFT + RANSAC. "
        "The inlier threshold is chosen on the *tune* half of the paintings; *held-out* is "
        "the other half.",
        "",
        "| setting | half | queries | off R@1 | shortlist holds it | auto, unverified R@1 "
        "| verified queries | off R@1 on them | auto R@1 on them | two paintings: both in top 2 (off → auto) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, res in data["settings"].items():
        for half in ("tune", "held-out", "all"):
            r = res[half]
            two, two_off = r["two_paintings"], r["two_paintings_off"]
            both = (
                f"{two_off['both@2']:.3f} → {two['both@2']:.3f} ({two['queries']})"
                if two["queries"]
                else ""
            )
            lines.append(
                f"| {name} | {half} | {r['queries']} | {r['photo_off_recall@1']:.3f} | "
                f"{r['shortlist_recall']:.3f} | {r['no_verification_recall@1']:.3f} | "
                f"{r['verified_queries']} | {r['photo_off_recall@1_same_queries']:.3f} | "
                f"{r['photo_auto_recall@1']:.3f} | {both} |"
            )
    chosen = {n: r["chosen_min_inliers"] for n, r in data["settings"].items()}
    lines += ["", f"Inlier thresholds chosen on the tune half: {chosen}."]
    return lines


if __name__ == "__main__":
    main()
