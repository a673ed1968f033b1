"""Evaluate figure-pose detection and pose search on the sample paintings.

1. Person recall on People-Art: share of annotated person boxes (not 'difficult', >= 80 px high)
   matched one-to-one by a detected pose (more than half of its confident keypoints inside the
   box, or IoU >= 0.5 between the boxes), for the stock whole-image run and for the multi-figure
   strategy at several score thresholds; with precision (strict: the pose matched a counted box;
   lenient: it overlaps any annotated person) and false figures per People-Art painting without
   people.
2. Invariance: every painting with a pose (People-Art, plus WikiArt genre/religious/portrait
   paintings if fewer than --min-paintings) is indexed (all its poses, FAISS IndexFlatIP over
   `pose_descriptors`); its best figure is the query. The image is transformed (horizontal flip,
   half size, grayscale, sepia, crop to the figure with a margin), detection runs again on the
   transformed image, the pose at the figure's (transformed) place is the query, and the search
   (best figure per painting) must rank the source painting first. Flipped queries are searched
   with mirror=True. Queries whose figure is not found again count as misses.
3. A contact sheet of 6 query figures and their top-5 pose matches (docs/img/pose_matches.png).

    nice -n 10 .venv/bin/python benchmarks/eval_poses.py               # full run
    .venv/bin/python benchmarks/eval_poses.py --limit 40 --out /tmp/p.md  # smoke test

Writes a Markdown fragment to --out and the raw numbers beside it (.json). Hand-written notes
between the `<!-- notes -->` and `<!-- /notes -->` markers of an existing --out are kept.
Detections are cached (--cache) so a rerun only computes what is missing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from artsim.detectors.poses import (  # noqa: E402
    DEFAULT_MIN_SCORE,
    DETECTOR_FLOOR,
    VISIBLE,
    box_iou,
    detect_poses,
    keypoint_similarity,
)
from artsim.encoders.poses import (  # noqa: E402
    POSE_DIM,
    mirror_pose,
    pose_descriptors,
    query_descriptors,
)
from artsim.images import load_rgb  # noqa: E402
from artsim.records import Pose  # noqa: E402
from artsim.visualize.overlays import draw_poses  # noqa: E402

MIN_PERSON_HEIGHT = 80
SCORE_SWEEP = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6)
WIKIART_GENRES = ("genre_painting", "religious_painting", "portrait")
TRANSFORMS = ("flip", "half", "gray", "sepia", "crop")
CONFIDENT = 0.5  # query figures at least this sure are also reported apart
CROP_MARGIN = 0.25  # crop = figure box grown by this share of its size on every side
NOTES_START, NOTES_END = "<!-- notes -->", "<!-- /notes -->"

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def default_data() -> Path:
    return Path(os.environ.get("ARTSIM_DATA", REPO.parent / "shared" / "data")).resolve()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, default=default_data(), help="data root (../shared/data)")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "evaluation_poses.md")
    p.add_argument("--sheet", type=Path, default=REPO / "docs" / "img" / "pose_matches.png")
    p.add_argument("--limit", type=int, default=None, help="cap every image list (quick runs)")
    p.add_argument("--min-paintings", type=int, default=500, help="paintings with poses to index")
    p.add_argument(
        "--cache",
        type=Path,
        default=Path(f"/tmp/artsim_eval_poses_cache-{detector_version()}.json"),
        help="detection cache; the default name carries a hash of the detector's source, so a "
        "changed detector never reuses stale detections",
    )
    p.add_argument("--skip-invariance", action="store_true")
    p.add_argument(
        "--flip-average",
        action="store_true",
        help="detect_poses(flip_average=True): landmarks averaged with the mirrored image's",
    )
    p.add_argument(
        "--ablate",
        default="",
        help="comma-separated switches for ablations: no-gray (no grey-copy proposals), "
        "no-refine (no second landmark pass), no-faces (no face proposals)",
    )
    return p.parse_args(argv)


# --------------------------------------------------------------------------- data


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def person_boxes(xml_path: Path) -> tuple[list[Box], list[Box]]:
    """(counted, all) person boxes of a People-Art annotation, x0, y0, x1, y1 in pixels.

    Counted: not 'difficult' and at least MIN_PERSON_HEIGHT high; all: every person box."""
    counted: list[Box] = []
    every: list[Box] = []
    for obj in ET.parse(xml_path).getroot().iter("object"):
        if (obj.findtext("name") or "").strip() != "person":
            continue
        bb = obj.find("bndbox")
        if bb is None:
            continue
        box = tuple(float(bb.findtext(k) or 0) for k in ("xmin", "ymin", "xmax", "ymax"))
        every.append(box)  # type: ignore[arg-type]
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        if not difficult and box[3] - box[1] >= MIN_PERSON_HEIGHT:
            counted.append(box)  # type: ignore[arg-type]
    return counted, every


def peopleart_items(data: Path) -> list[dict[str, Any]]:
    root = data / "peopleart"
    items = []
    for row in read_csv(root / "labels.csv"):
        counted: list[Box] = []
        every: list[Box] = []
        if row["has_annotation"] == "1" and row["annotation_path"]:
            counted, every = person_boxes(root / row["annotation_path"])
        items.append(
            {
                "key": f"peopleart/{row['path']}",
                "path": str(root / row["path"]),
                "counted": counted,
                "all": every,
                "negative": row["person_label"] == "-1",
            }
        )
    return items


def wikiart_items(data: Path) -> list[dict[str, Any]]:
    root = data / "wikiart"
    rows = [r for r in read_csv(root / "labels.csv") if r["genre"] in WIKIART_GENRES]
    rows.sort(key=lambda r: r["path"])
    return [
        {"key": f"wikiart/images/{r['path']}", "path": str(root / "images" / r["path"])}
        for r in rows
    ]


def same_painting_groups(data: Path) -> dict[str, set[str]]:
    """Files the ground truth says show the same painting (pairs, exact and near duplicates)."""
    groups: dict[str, set[str]] = defaultdict(set)
    gt = data / "groundtruth"
    for name, a, b in (
        ("instance_pairs.csv", "query_path", "target_path"),
        ("exact_duplicates.csv", "path_a", "path_b"),
        ("near_duplicates.csv", "path_a", "path_b"),
    ):
        if (gt / name).is_file():
            for row in read_csv(gt / name):
                groups[row[a]].add(row[b])
                groups[row[b]].add(row[a])
    return groups


# --------------------------------------------------------------------------- caching


def pose_to_json(p: Pose) -> dict[str, Any]:
    return {"k": p.keypoints, "v": p.visibility, "b": p.box, "s": p.score}


def pose_from_json(d: dict[str, Any]) -> Pose:
    return Pose(
        keypoints=tuple(tuple(k) for k in d["k"]),
        visibility=tuple(d["v"]),
        box=tuple(d["b"]),
        score=d["s"],
    )  # type: ignore[arg-type]


def detector_version() -> str:
    import hashlib

    import artsim.detectors.faces as face_module  # face proposals feed the pose detector
    import artsim.detectors.poses as pose_module

    h = hashlib.sha256()
    for module in (pose_module, face_module):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()[:10]


class Cache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path.is_file():
            try:
                self.data = json.loads(path.read_text())
            except (OSError, ValueError):
                self.data = {}
        self.dirty = 0

    def get(self, key: str, compute: Callable[[], tuple[list[Pose], float]]) -> list[Pose]:
        if key not in self.data:
            poses, seconds = compute()
            self.data[key] = {"poses": [pose_to_json(p) for p in poses], "t": seconds}
            self.dirty += 1
            if self.dirty >= 50:
                self.save()
        return [pose_from_json(d) for d in self.data[key]["poses"]]

    def seconds(self, key: str) -> float:
        return float(self.data[key]["t"])

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.path)
        self.dirty = 0


FLIP_AVERAGE = False  # set from --flip-average in main()
ABLATE: tuple[str, ...] = ()  # set from --ablate in main()


def detect_cached(
    cache: Cache, key: str, image: Callable[[], Image.Image], strategy: str
) -> list[Pose]:
    def compute() -> tuple[list[Pose], float]:
        im = image()
        t = time.perf_counter()
        # floor threshold: higher thresholds are applied afterwards (same result, see docs)
        min_score = DETECTOR_FLOOR if strategy == "multi" else DEFAULT_MIN_SCORE
        faces = () if "no-faces" in ABLATE else None
        poses = detect_poses(
            im, strategy=strategy, min_score=min_score, flip_average=FLIP_AVERAGE, faces=faces
        )
        return poses, time.perf_counter() - t

    tag = strategy
    if strategy == "multi":
        tag += "+flip" * FLIP_AVERAGE + "".join(f"-{a}" for a in ABLATE)
    return cache.get(f"{tag}|{key}", compute)


# --------------------------------------------------------------------------- recall


def pose_box_xyxy(p: Pose) -> Box:
    x, y, w, h = p.box
    return x, y, x + w, y + h


def match_quality(box: Box, pose: Pose) -> float:
    """max(share of confident keypoints inside the box if > 0.5, IoU if >= 0.5), else 0."""
    kp = np.asarray(pose.keypoints)
    vis = np.asarray(pose.visibility)
    conf = kp[vis >= VISIBLE]
    inside = 0.0
    if len(conf):
        x0, y0, x1, y1 = box
        inside = float(
            np.mean(
                (conf[:, 0] >= x0) & (conf[:, 0] <= x1) & (conf[:, 1] >= y0) & (conf[:, 1] <= y1)
            )
        )
    iou = box_iou((box[0], box[1], box[2] - box[0], box[3] - box[1]), pose.box)
    q = 0.0
    if inside > 0.5:
        q = inside
    if iou >= 0.5:
        q = max(q, iou)
    return q


def match(boxes: list[Box], poses: list[Pose]) -> int:
    """Greedy one-to-one matching by match quality; returns the number of matched boxes."""
    pairs = sorted(
        ((match_quality(b, p), i, j) for i, b in enumerate(boxes) for j, p in enumerate(poses)),
        reverse=True,
    )
    used_b: set[int] = set()
    used_p: set[int] = set()
    for q, i, j in pairs:
        if q <= 0:
            break
        if i in used_b or j in used_p:
            continue
        used_b.add(i)
        used_p.add(j)
    return len(used_b)


def recall_metrics(items: list[dict[str, Any]], results: dict[str, list[Pose]], t: float) -> dict:
    n_boxes = hit = n_poses = strict_tp = lenient_tp = 0
    neg_images = neg_poses = 0
    for it in items:
        poses = [p for p in results[it["key"]] if p.score >= t]
        if it["negative"]:
            neg_images += 1
            neg_poses += len(poses)
            continue
        if not it["all"]:
            continue
        n_boxes += len(it["counted"])
        matched = match(it["counted"], poses)
        hit += matched
        n_poses += len(poses)
        strict_tp += matched
        lenient_tp += sum(
            1
            for p in poses
            if any(
                match_quality(b, p) > 0
                or box_iou((b[0], b[1], b[2] - b[0], b[3] - b[1]), p.box) >= 0.3
                for b in it["all"]
            )
        )
    return {
        "threshold": t,
        "person_boxes": n_boxes,
        "recall": round(hit / max(1, n_boxes), 4),
        "precision_strict": round(strict_tp / max(1, n_poses), 4),
        "precision_lenient": round(lenient_tp / max(1, n_poses), 4),
        "poses_per_image_with_people": round(
            n_poses / max(1, sum(1 for i in items if i["all"])), 3
        ),
        "false_figures_per_image_without_people": round(neg_poses / max(1, neg_images), 3),
        "images_without_people": neg_images,
    }


# --------------------------------------------------------------------------- invariance


def sepia(im: Image.Image) -> Image.Image:
    gray = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    tone = np.array([1.07, 0.74, 0.43], dtype=np.float32)  # classic sepia ramp
    arr = np.clip(gray[..., None] * tone * 255.0, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def crop_box(pose: Pose, width: int, height: int) -> tuple[int, int, int, int]:
    """The figure's box grown by CROP_MARGIN of its size, clipped to the image (never empty)."""
    x, y, w, h = pose.box
    m = CROP_MARGIN * max(w, h)
    x0 = min(max(0, int(x - m)), width - 1)
    y0 = min(max(0, int(y - m)), height - 1)
    x1 = max(x0 + 1, min(width, int(np.ceil(x + w + m))))
    y1 = max(y0 + 1, min(height, int(np.ceil(y + h + m))))
    return x0, y0, x1, y1


def transform(name: str, im: Image.Image, pose: Pose) -> tuple[Image.Image, Callable[[Pose], Pose]]:
    """Transformed image and the map of a pose in the original into its pixels."""
    w, h = im.size
    if name == "flip":
        return ImageOps.mirror(im), lambda p: mirror_pose(p, w)
    if name == "half":
        small = im.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS)
        sx, sy = small.width / w, small.height / h
        return small, lambda p: scale_pose(p, sx, sy, 0, 0)
    if name == "gray":
        return im.convert("L").convert("RGB"), lambda p: p
    if name == "sepia":
        return sepia(im), lambda p: p
    if name == "crop":
        x0, y0, x1, y1 = crop_box(pose, w, h)
        return im.crop((x0, y0, x1, y1)), lambda p: scale_pose(p, 1, 1, -x0, -y0)
    raise ValueError(name)


def scale_pose(p: Pose, sx: float, sy: float, dx: float, dy: float) -> Pose:
    x, y, w, h = p.box
    return Pose(
        keypoints=tuple((kx * sx + dx, ky * sy + dy) for kx, ky in p.keypoints),
        visibility=p.visibility,
        box=(x * sx + dx, y * sy + dy, w * sx, h * sy),
        score=p.score,
    )


def refind(expected: Pose, found: list[Pose]) -> Pose | None:
    """The detected pose at the place of `expected` (same figure), if any."""
    best, best_q = None, 0.0
    for p in found:
        q = max(keypoint_similarity(expected, p), box_iou(expected.box, p.box))
        if q > best_q:
            best, best_q = p, q
    return best if best_q >= 0.3 else None


class PoseIndex:
    def __init__(self, keys: list[str], poses: dict[str, list[Pose]]) -> None:
        import faiss

        self.owner: list[int] = []
        rows = []
        self.keys = keys
        for i, key in enumerate(keys):
            for p in poses[key]:
                self.owner.append(i)
                rows.append(p)
        self.poses = rows
        self.owner_arr = np.asarray(self.owner)
        self.index = faiss.IndexFlatIP(POSE_DIM)
        self.index.add(pose_descriptors(rows))

    def search(
        self, pose: Pose, mirror: bool, k_paintings: int = 10
    ) -> list[tuple[int, float, int]]:
        """Best (painting, score, pose row) per painting, best first."""
        q = query_descriptors(pose, mirror)
        scores, ids = self.index.search(q, self.index.ntotal)
        best: dict[int, tuple[float, int]] = {}
        for row_scores, row_ids in zip(scores, ids, strict=True):
            for s, j in zip(row_scores, row_ids, strict=True):
                if j < 0:
                    continue
                owner = self.owner[j]
                if owner not in best or s > best[owner][0]:
                    best[owner] = (float(s), int(j))
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return [(o, s, j) for o, (s, j) in ranked[:k_paintings]]


# --------------------------------------------------------------------------- contact sheet


CELL = 240  # contact sheet cell size (px)


def tile(im: Image.Image, pose: Pose, caption: str, size: int = CELL) -> Image.Image:
    """The figure (its box grown by 30 %, clipped to the painting) with its skeleton drawn."""
    x, y, w, h = pose.box
    m = 0.3 * max(w, h)
    x0, y0 = max(0, int(x - m)), max(0, int(y - m))
    x1, y1 = min(im.width, int(x + w + m) + 1), min(im.height, int(y + h + m) + 1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        x0, y0, x1, y1 = 0, 0, im.width, im.height
    scale = min((size - 4) / (x1 - x0), (size - 20) / (y1 - y0))
    crop = im.crop((x0, y0, x1, y1)).resize(
        (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
        Image.Resampling.LANCZOS,
    )
    shown = scale_pose(pose, scale, scale, -x0 * scale, -y0 * scale)
    drawn = draw_poses(crop, [shown], color=(0, 230, 255))  # lines sized for the cell
    out = Image.new("RGB", (size, size), (245, 245, 245))
    out.paste(drawn, ((size - drawn.width) // 2, 2))
    ImageDraw.Draw(out).text((4, size - 15), caption[:40], fill=(0, 0, 0))
    return out


def contact_sheet(
    queries: list[tuple[str, Pose]],
    index: PoseIndex,
    paths: dict[str, str],
    out: Path,
) -> list[dict[str, Any]]:
    rows = []
    info = []
    for key, pose in queries:
        hits = [
            h for h in index.search(pose, mirror=True, k_paintings=6) if index.keys[h[0]] != key
        ][:5]
        cells = [tile(load_rgb(paths[key]), pose, "query: " + Path(key).stem)]
        for owner, score, j in hits:
            k2 = index.keys[owner]
            cells.append(tile(load_rgb(paths[k2]), index.poses[j], f"{score:.3f} {Path(k2).stem}"))
        info.append({"query": key, "matches": [(index.keys[o], round(s, 4)) for o, s, _ in hits]})
        row = Image.new("RGB", (CELL * 6 + 8, CELL), "white")
        for i, c in enumerate(cells):
            row.paste(c, (i * CELL + (8 if i else 0), 0))  # a gap after the query
        rows.append(row)
    sheet = Image.new("RGB", (CELL * 6 + 8, CELL * len(rows) + 4 * len(rows)), "white")
    for i, r in enumerate(rows):
        sheet.paste(r, (0, i * (CELL + 4)))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return info


# --------------------------------------------------------------------------- report


def markdown(results: dict[str, Any], old_notes: str) -> str:
    lines = ["## Poses: evaluation (generated by benchmarks/eval_poses.py)", ""]
    r = results["recall"]
    lines += [
        f"People-Art: {r['images']} annotated images, {r['whole']['person_boxes']} person boxes "
        f"(not 'difficult', >= {MIN_PERSON_HEIGHT} px high); {r['whole']['images_without_people']} "
        "paintings without people for false figures. Default multi-figure threshold: "
        f"min_score = {DEFAULT_MIN_SCORE}.",
        "",
        "| strategy | min score | person recall | precision (strict / lenient) | figures per image with people | false figures per image without people | s per image |",
        "|---|---|---|---|---|---|---|",
    ]

    def row(name: str, m: dict[str, Any], sec: float) -> str:
        return (
            f"| {name} | {m['threshold']} | **{m['recall']:.3f}** | {m['precision_strict']:.3f} / "
            f"{m['precision_lenient']:.3f} | {m['poses_per_image_with_people']:.2f} | "
            f"{m['false_figures_per_image_without_people']:.2f} | {sec:.3f} |"
        )

    lines.append(row("whole (stock BlazePose)", r["whole"], r["seconds_whole"]))
    for m in r["multi"]:
        name = "multi" + (" (default)" if abs(m["threshold"] - DEFAULT_MIN_SCORE) < 1e-9 else "")
        lines.append(row(name, m, r["seconds_multi"]))
    lines += [
        "",
        "Seconds per image: detection only (faces included for multi), this 2-core machine while "
        "other jobs ran; see benchmarks/bench_poses.py for throughput.",
        "",
    ]
    inv = results.get("invariance")
    if inv:
        lines += [
            f"Invariance: {inv['paintings']} paintings with poses indexed ({inv['sources']}), "
            f"{inv['indexed_poses']} poses; one query per painting (its best-scoring figure); "
            "detection re-run on the transformed image; recall@1 = source painting ranked first "
            "(best figure per painting). Misses include queries whose figure was not found again.",
            "",
            "| transformation | recall@1 | recall@1, query on an annotated person | recall@1, query score >= 0.5 | no pose at all | figure not re-found | queries |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in TRANSFORMS:
            m = inv["transforms"][name]
            lines.append(
                f"| {name} | **{m['recall_at_1']:.3f}** | {m['recall_at_1_people']:.3f} "
                f"({m['queries_people']}) | {m['recall_at_1_confident']:.3f} ({m['queries_confident']}) | "
                f"{m['no_pose']} | {m['not_refound']} | {m['queries']} |"
            )
        lines += [
            "",
            "![pose matches](img/pose_matches.png)",
            "",
            "Contact sheet: 6 query figures (left) and their top-5 pose matches in other paintings "
            "(mirror search), skeletons drawn.",
            "",
        ]
    lines += [
        NOTES_START,
        old_notes.strip() or "(observations: to be written after looking at the sheet)",
        NOTES_END,
        "",
    ]
    return "\n".join(lines)


def old_notes(path: Path) -> str:
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    if NOTES_START in text and NOTES_END in text:
        return text.split(NOTES_START, 1)[1].split(NOTES_END, 1)[0]
    return ""


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    global FLIP_AVERAGE, ABLATE
    FLIP_AVERAGE = args.flip_average
    ABLATE = tuple(sorted(a for a in args.ablate.split(",") if a))
    import artsim.detectors.poses as pose_module

    if "no-gray" in ABLATE:
        pose_module.GRAY_VIEWS = False
    if "no-refine" in ABLATE:
        pose_module.REFINE_PASSES = 0
    data = args.data
    if not (data / "peopleart" / "labels.csv").is_file():
        print(f"People-Art not found under {data} (set --data or ARTSIM_DATA)", file=sys.stderr)
        return 2
    cache = Cache(args.cache)
    items = peopleart_items(data)
    if args.limit:
        # keep the mix: the first `limit` annotated and `limit // 2` people-free paintings
        annotated = [i for i in items if i["all"]][: args.limit]
        negative = [i for i in items if i["negative"]][: max(1, args.limit // 2)]
        items = annotated + negative
    paths = {it["key"]: it["path"] for it in items}

    # ---- 1. recall
    results: dict[str, Any] = {}
    multi: dict[str, list[Pose]] = {}
    whole: dict[str, list[Pose]] = {}
    t0 = time.time()
    for n, it in enumerate(items):
        loader = lambda it=it: load_rgb(it["path"])  # noqa: E731
        whole[it["key"]] = detect_cached(cache, it["key"], loader, "whole")
        multi[it["key"]] = detect_cached(cache, it["key"], loader, "multi")
        if n % 100 == 0:
            print(f"detect {n}/{len(items)} {time.time() - t0:.0f}s", flush=True)
    cache.save()
    recall_items = [it for it in items if it["all"] or it["negative"]]
    sec = lambda strat: float(  # noqa: E731
        np.mean([cache.seconds(f"{strat}|{it['key']}") for it in recall_items])
    )
    multi_tag = "multi" + "+flip" * FLIP_AVERAGE + "".join(f"-{a}" for a in ABLATE)
    results["recall"] = {
        "images": sum(1 for it in recall_items if it["all"]),
        "whole": recall_metrics(recall_items, whole, 0.0),
        "multi": [recall_metrics(recall_items, multi, t) for t in SCORE_SWEEP],
        "seconds_whole": sec("whole"),
        "seconds_multi": sec(multi_tag),
        "flip_average": FLIP_AVERAGE,
        "ablate": list(ABLATE),
    }
    print(json.dumps(results["recall"], indent=1), flush=True)

    # ---- 2. invariance
    if not args.skip_invariance:
        results["invariance"] = invariance(args, data, items, multi, paths, cache)
    cache.save()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    notes = old_notes(args.out)
    args.out.write_text(markdown(results, notes), encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


def kept(poses: list[Pose]) -> list[Pose]:
    return [p for p in poses if p.score >= DEFAULT_MIN_SCORE]


def invariance(
    args: argparse.Namespace,
    data: Path,
    items: list[dict[str, Any]],
    multi: dict[str, list[Pose]],
    paths: dict[str, str],
    cache: Cache,
) -> dict[str, Any]:
    poses = {k: kept(v) for k, v in multi.items()}
    keys = [it["key"] for it in items if poses[it["key"]]]
    sources = "People-Art"
    target = args.min_paintings if not args.limit else min(args.min_paintings, args.limit)
    if len(keys) < target:
        sources = "People-Art + WikiArt genre/religious/portrait"
        for it in wikiart_items(data):
            if len(keys) >= target:
                break
            paths[it["key"]] = it["path"]
            found = kept(
                detect_cached(cache, it["key"], lambda it=it: load_rgb(it["path"]), "multi")
            )
            if found:
                poses[it["key"]] = found
                keys.append(it["key"])
    cache.save()
    index = PoseIndex(keys, poses)
    groups = same_painting_groups(data)
    people = {it["key"] for it in items if it.get("all")}
    annotated = {it["key"]: it["all"] for it in items if it.get("all")}
    print(f"invariance: {len(keys)} paintings, {index.index.ntotal} poses", flush=True)

    out: dict[str, Any] = {
        "paintings": len(keys),
        "indexed_poses": int(index.index.ntotal),
        "sources": sources,
        "transforms": {},
    }
    t0 = time.time()
    for name in TRANSFORMS:
        hits = hits_people = n_people = no_pose = not_refound = hits_conf = n_conf = 0
        failures = []
        for qi, key in enumerate(keys):
            query = poses[key][0]
            # is the query an annotated person? (for the breakdown only)
            is_person = key in people and any(
                match_quality(b, query) > 0 for b in annotated.get(key, [])
            )
            n_people += is_person
            confident = query.score >= CONFIDENT
            n_conf += confident

            def image(key: str = key, query: Pose = query, name: str = name) -> Image.Image:
                return transform(name, load_rgb(paths[key]), query)[0]

            ckey = f"{key}|{name}|{query.box}"
            # the query side keeps every figure down to the detector floor: a user picks the
            # figure in the query image, the index holds only figures above the default score
            found = detect_cached(cache, ckey, image, "multi")
            ok = False
            if not found:
                no_pose += 1
            else:
                im = load_rgb(paths[key])
                expected = transform(name, im, query)[1](query)
                q = refind(expected, found)
                if q is None:
                    not_refound += 1
                else:
                    ranked = index.search(q, mirror=name == "flip", k_paintings=1)
                    top = index.keys[ranked[0][0]] if ranked else None
                    ok = top == key or (top is not None and top in groups.get(key, set()))
            hits += ok
            hits_people += ok and is_person
            hits_conf += ok and confident
            if not ok and len(failures) < 20:
                failures.append(key)
            if qi % 100 == 0:
                print(f"  {name} {qi}/{len(keys)} {time.time() - t0:.0f}s", flush=True)
        cache.save()
        out["transforms"][name] = {
            "queries": len(keys),
            "recall_at_1": round(hits / max(1, len(keys)), 4),
            "queries_people": n_people,
            "recall_at_1_people": round(hits_people / max(1, n_people), 4),
            "queries_confident": n_conf,
            "recall_at_1_confident": round(hits_conf / max(1, n_conf), 4),
            "no_pose": no_pose,
            "not_refound": not_refound,
            "some_failures": failures,
        }
        print(name, out["transforms"][name], flush=True)

    # ---- 3. contact sheet: clear figures (score >= 0.8, >= 20 confident keypoints), spread out
    clear = [
        (k, poses[k][0])
        for k in keys
        if poses[k][0].score >= 0.8 and sum(v >= VISIBLE for v in poses[k][0].visibility) >= 20
    ]
    step = max(1, len(clear) // 6)
    chosen = clear[::step][:6]
    out["contact_sheet"] = contact_sheet(chosen, index, paths, args.sheet)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
