"""Photo queries under conditions the evaluation settings do not vary: the framed setting's
photos turned sideways without EXIF, sent through a messenger (480 px), underexposed,
"enhanced" by a phone (saturation, contrast, sharpening), cut by the photo's edge, partly
hidden by a visitor, taken from far to the side, shaken, with a lamp's reflection, or from
across the room. A quick probe on a seeded sample of the ground-truth pairs, recall@1 per
condition, the photo path as `Catalog.search` runs it. Not run unless named (session 17):
a detail of the painting (45 % or 30 % of its sides), black and white, a window's
reflection on the glass, the camera turned by 15-25 degrees, a catalogue page; and (session
18) a harder shake, 3 % of the long side; (session 22) a steeper view from the side, the far
edge 55 % shorter (``oblique``'s is 35 %); (session 32) ``cutr``, the photo's edge
cutting 15-45 % off the painting (``cut``: 30 %); (session 33) ``cutc``, the photo's corner
cutting 15-35 % off two adjacent sides; (session 34) what a phone and its apps do: an
uncorrected wide-angle lens (``barrel``), noise reduction then sharpening (``smear``), a
messenger's 800 px JPEG 20 (``chat``), overexposure (``bright``), a tungsten lamp's
cast (``warm``), the room behind reflected in the glass (``mirror``). Conditions join with
"+" and apply in turn: "dark+shake" is a dim room's long exposure. Recall@1 is reported on
the evaluation's two halves too (by painting, `split_by_painting`), so a lever chosen on one
is reported on the other.

    python benchmarks/probe_photo_conditions.py --catalog eval-catalog --data ../shared/data \
        --n 60 --conditions none,rot90,rot180,small480,dark,vivid,cut,visitor,oblique,shake,\
lamp,far
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
from eval_photos import add_module_levers, set_module_levers  # a sibling script
from PIL import Image, ImageEnhance, ImageFilter

import artsim.detectors.paintings as paintings
import artsim.search.photo as photo
from artsim.catalog import Catalog
from artsim.detectors.paintings import Quad, find_paintings
from artsim.evaluation.groundtruth import load_instance_pairs
from artsim.evaluation.metrics import localisation_hits
from artsim.evaluation.run import framed_queries, gt_index, split_by_painting, usable_pairs

REPO = Path(__file__).resolve().parents[1]
# conditions that leave the painting where it was in the photo: its localisation is scored
SAME_PLACE = (
    *("none", "dark", "vivid", "visitor", "shake", "shake3", "lamp"),
    *("smear", "bright", "warm", "mirror"),  # session 34's (localisation not in its results)
)
CONDITIONS = (
    "none",
    "rot90",
    "rot180",
    "small480",
    "dark",
    "vivid",
    "cut",
    "visitor",
    "oblique",
    "shake",
    "lamp",
    "far",
)
MORE_CONDITIONS = (
    "detail45",
    "detail30",
    "gray",
    "glass",
    "tilt20",
    "print",
    "shake3",
    "steep",
    "cutr",
    "cutc",
    "barrel",
    "smear",
    "chat",
    "bright",
    "warm",
    "mirror",
)


def _box(quad: Quad) -> tuple[float, float, float, float]:
    xs, ys = [x for x, _ in quad], [y for _, y in quad]
    return min(xs), min(ys), max(xs), max(ys)


def harsh(kind: str, im: Image.Image, quad: Quad, rng: np.random.Generator) -> Image.Image:
    """The conditions that need the painting's place in the photo (its corners, ``quad``)."""
    import cv2

    x0, y0, x1, y1 = _box(quad)
    w, h = x1 - x0, y1 - y0
    if kind in ("cut", "cutr"):  # the photo's edge cuts 30 % (15-45 %) off the painting
        side = int(rng.integers(4))
        f = 0.3 if kind == "cut" else float(rng.uniform(0.15, 0.45))
        box = [0.0, 0.0, float(im.width), float(im.height)]
        box[side] = (x0 + f * w, y0 + f * h, x1 - f * w, y1 - f * h)[side]
        return im.crop(tuple(round(v) for v in box))
    if kind == "cutc":  # a corner of the photo cuts 15-35 % off two adjacent sides
        sx, sy = int(rng.integers(2)), int(rng.integers(2))
        fx, fy = rng.uniform(0.15, 0.35, 2)
        box = [0.0, 0.0, float(im.width), float(im.height)]
        box[0 if sx == 0 else 2] = x0 + fx * w if sx == 0 else x1 - fx * w
        box[1 if sy == 0 else 3] = y0 + fy * h if sy == 0 else y1 - fy * h
        return im.crop(tuple(round(v) for v in box))
    if kind == "visitor":  # a dark head and shoulders over the lower third of the painting
        a = np.asarray(im).copy()
        cx = round(x0 + w * rng.uniform(0.3, 0.7))
        colour = tuple(int(c) for c in rng.integers(10, 70, 3))
        r = 0.3 * min(w, h)
        head = (round(0.75 * r), round(0.95 * r))
        cv2.ellipse(a, (cx, round(y1 - 1.5 * r)), head, 0, 0, 360, colour, -1)
        cv2.ellipse(
            a, (cx, round(y1 + 0.4 * r)), (round(2 * r), round(1.2 * r)), 0, 0, 360, colour, -1
        )
        return Image.fromarray(a)
    if kind in ("oblique", "steep"):  # standing far to the side: the far edge 35 % (55 %) shorter
        wd, ht = im.size
        wall = tuple(float(v) for v in np.median(np.asarray(im).reshape(-1, 3), axis=0))
        s = (0.35 if kind == "oblique" else 0.55) * ht / 2
        src = np.float32([[0, 0], [wd, 0], [wd, ht], [0, ht]])
        dst = np.float32([[0, 0], [wd * 0.8, s], [wd * 0.8, ht - s], [0, ht]])
        if rng.random() < 0.5:  # the near side on the right instead
            dst = np.float32([[wd * 0.2, s], [wd, 0], [wd, ht], [wd * 0.2, ht - s]])
        m = cv2.getPerspectiveTransform(src, dst)
        return Image.fromarray(cv2.warpPerspective(np.asarray(im), m, (wd, ht), borderValue=wall))
    if kind in ("shake", "shake3"):  # motion blur over 1.5 % (3 %) of the long side
        n = max(3, round((0.015 if kind == "shake" else 0.03) * max(im.size)) | 1)
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1 / n
        rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), float(rng.uniform(0, 180)), 1)
        k = cv2.warpAffine(k, rot, (n, n))
        return Image.fromarray(cv2.filter2D(np.asarray(im), -1, k / max(k.sum(), 1e-6)))
    if kind == "lamp":  # a lamp's reflection: a saturated blob on ~12 % of the painting
        a = np.asarray(im, np.float32)
        yy, xx = np.mgrid[: im.height, : im.width]
        cx, cy = x0 + w * rng.uniform(0.2, 0.8), y0 + h * rng.uniform(0.2, 0.8)
        sx, sy = 0.2 * w, 0.12 * h
        g = np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))[..., None]
        return Image.fromarray(np.clip(a + 255 * 1.6 * g, 0, 255).astype(np.uint8))
    if kind == "far":  # from across the room: the photo at half size on a wider wall
        a = np.asarray(im)
        wall = np.median(a.reshape(-1, 3), axis=0)
        canvas = np.clip(wall + rng.normal(0, 6, (im.height, im.width, 3)), 0, 255).astype(np.uint8)
        small = cv2.resize(a, (im.width // 2, im.height // 2), interpolation=cv2.INTER_AREA)
        ox, oy = int(rng.integers(im.width // 2)), int(rng.integers(im.height // 2))
        canvas[oy : oy + small.shape[0], ox : ox + small.shape[1]] = small
        return Image.fromarray(canvas)
    return more(kind, im, quad, rng)


def more(kind: str, im: Image.Image, quad: Quad, rng: np.random.Generator) -> Image.Image:
    """`MORE_CONDITIONS` (session 17)."""
    import cv2

    x0, y0, x1, y1 = _box(quad)
    w, h = x1 - x0, y1 - y0
    if kind in ("detail45", "detail30"):  # a detail of the painting, filling a 1,000 px photo
        f = 0.45 if kind == "detail45" else 0.3
        cx, cy = x0 + w * rng.uniform(f / 2, 1 - f / 2), y0 + h * rng.uniform(f / 2, 1 - f / 2)
        part = im.crop(
            tuple(
                round(v) for v in (cx - f * w / 2, cy - f * h / 2, cx + f * w / 2, cy + f * h / 2)
            )
        )
        s = 1000 / max(part.size)
        return part.resize(
            (round(part.width * s), round(part.height * s)), Image.Resampling.BICUBIC
        )
    if kind == "gray":  # a black-and-white photo
        return im.convert("L").convert("RGB")
    if kind == "glass":  # a window's reflection on the glass: soft bright bands at an angle
        yy, xx = np.mgrid[: im.height, : im.width].astype(np.float32)
        angle, period = rng.uniform(0, np.pi), 0.08 * max(im.size)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, 6)
        bands = cv2.GaussianBlur(
            (np.sin(phase) > 0).astype(np.float32), (0, 0), 0.02 * max(im.size)
        )
        a = np.asarray(im, np.float32) * 0.75 + 255 * 0.35 * bands[..., None]
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if kind == "tilt20":  # the camera turned by 15-25 degrees
        wall = tuple(int(v) for v in np.median(np.asarray(im).reshape(-1, 3), axis=0))
        turn = float(rng.choice([-1, 1]) * rng.uniform(15, 25))
        return im.rotate(turn, resample=Image.Resampling.BILINEAR, fillcolor=wall)
    if kind == "print":  # a catalogue page: inks on warm paper, a dot screen, a curled page
        a = 0.12 + 0.8 * np.asarray(im, np.float32) / 255
        a = a * np.array([1.0, 0.97, 0.9], np.float32)
        grey = a.mean(2, keepdims=True)
        a = grey + 0.7 * (a - grey)
        yy, xx = np.mgrid[: im.height, : im.width].astype(np.float32)
        u, v = (
            2 * np.pi * (xx * 0.966 + yy * 0.259) / 3.2,
            2 * np.pi * (yy * 0.966 - xx * 0.259) / 3.2,
        )
        a = a * (0.85 + 0.15 * (0.5 + 0.5 * np.cos(u) * np.cos(v)))[..., None]
        bend = (
            0.03 * im.width * ((yy / im.height - 0.5) ** 2 * 4 - 1) * np.sin(np.pi * xx / im.width)
        )
        page = (np.clip(a, 0, 1) * 255).astype(np.uint8)
        page = cv2.remap(page, xx + bend, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        buf = io.BytesIO()
        Image.fromarray(page).save(buf, "JPEG", quality=70)
        return Image.open(buf).convert("RGB")
    return phone(kind, im, rng)


def _jpeg(a: np.ndarray, quality: int) -> Image.Image:
    buf = io.BytesIO()
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return Image.open(buf).convert("RGB")


def phone(kind: str, im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """What a phone's camera and its apps do to any photo (session 34)."""
    import cv2

    a = np.asarray(im, np.float32)
    if kind == "barrel":  # a wide-angle lens left uncorrected: straight edges bow outwards
        ht, wd = a.shape[:2]
        yy, xx = np.mgrid[:ht, :wd].astype(np.float32)
        cx, cy, r = wd / 2, ht / 2, float(np.hypot(wd, ht)) / 2
        k = float(rng.uniform(0.12, 0.2))
        rr = ((xx - cx) ** 2 + (yy - cy) ** 2) / r**2
        # each output pixel samples the scene further out: the middle is magnified
        f = (1 + k * rr) / (1 + k)
        return Image.fromarray(
            cv2.remap(
                np.asarray(im),
                (cx + (xx - cx) * f).astype(np.float32),
                (cy + (yy - cy) * f).astype(np.float32),
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT,
            )
        )
    if kind == "smear":  # a phone's noise reduction then sharpening: fine texture wiped
        noisy = np.clip(a + rng.normal(0, 8, a.shape), 0, 255).astype(np.uint8)
        flat = cv2.bilateralFilter(noisy, 9, 40, 5)
        flat = cv2.bilateralFilter(flat, 9, 40, 5)
        sharp = Image.fromarray(flat).filter(ImageFilter.UnsharpMask(2, 120, 3))
        return _jpeg(np.asarray(sharp, np.float32), 80)
    if kind == "chat":  # sent through a messenger: 800 px, JPEG 20
        s = 800 / max(im.size)
        small = im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BILINEAR)
        return _jpeg(np.asarray(small, np.float32), 20)
    if kind == "bright":  # overexposed by a dark wall: the lightest third clipped to white
        return _jpeg(255 * np.clip((a / 255) ** 0.8 * 1.4, 0, 1), 70)
    if kind == "warm":  # a tungsten lamp and the wrong white balance
        return _jpeg(a * np.array([1.25, 1.0, 0.55], np.float32), 70)
    if kind == "mirror":  # the room behind the photographer reflected in the glass
        room = cv2.GaussianBlur(np.ascontiguousarray(a[:, ::-1]), (0, 0), 1.5)
        room = np.roll(room, (int(rng.integers(a.shape[0])), int(rng.integers(a.shape[1]))), (0, 1))
        return _jpeg(0.75 * a + 0.35 * room, 70)
    raise ValueError(
        f"unknown condition {kind!r}; choose from {', '.join(CONDITIONS + MORE_CONDITIONS)}"
    )


def condition(kind: str, im: Image.Image, quad: Quad, rng: np.random.Generator) -> Image.Image:
    """One condition, or several joined by "+" applied in turn (e.g. "dark+shake": a long
    exposure in a dim room). Conditions after one that moves the painting see its old place."""
    if "+" in kind:
        for part in kind.split("+"):
            im = condition(part, im, quad, rng)
        return im
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
    return harsh(kind, im, quad, rng)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalog", type=Path, default=REPO / "eval-catalog")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=60, help="ground-truth pairs (a seeded sample)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--out", type=Path)
    add_module_levers(ap)
    args = ap.parse_args()
    set_module_levers(args)
    cat = Catalog.open(args.catalog)
    path_to_id, id_to_path = gt_index(cat, args.data)
    pairs = usable_pairs(load_instance_pairs(args.data / "groundtruth"), set(path_to_id))
    pick = np.random.default_rng(5).choice(len(pairs), size=min(args.n, len(pairs)), replace=False)
    sample = [pairs[i] for i in sorted(pick)]
    photos = framed_queries(sample, set(path_to_id), args.data, seed=3, p_two=0.0)
    # the evaluation's halves (by painting): a lever chosen on "tune" is reported on the other
    half = split_by_painting(pairs)
    out: dict[str, float] = {}
    by_half: dict[str, dict[str, float]] = {}
    per_query_hits: dict[str, dict[str, bool]] = {}
    localised: dict[str, float] = {}
    for kind in args.conditions.split(","):
        rng = np.random.default_rng(11)  # the same noise for every run of a condition
        hits, located, started = 0, 0, time.perf_counter()
        per_query_hits[kind] = {}
        same_place = all(part in SAME_PLACE for part in kind.split("+"))
        for p in sample:
            q = photos[p.query_path]
            im = condition(kind, q.image, q.quads[0], rng)
            if same_place:
                regions = [r.quad for r in find_paintings(im)]
                located += localisation_hits(regions, q.quads, im.size)[0]
            # as a catalog without the photographed rendering would answer
            found = photo.search_photo(cat, im, k=5, exclude=path_to_id[p.query_path])
            # the query file is itself in the catalog: the other rendering is the answer
            ranked = [id_to_path.get(h.id) for h in found if id_to_path.get(h.id) != p.query_path]
            hit = bool(ranked) and ranked[0] == p.target_path
            hits += hit
            per_query_hits[kind][p.query_path] = hit
        out[kind] = hits / len(sample)
        by_half[kind] = {
            h: float(np.mean([v for q, v in per_query_hits[kind].items() if half[q] == h] or [0]))
            for h in ("tune", "held-out")
        }
        per_query = (time.perf_counter() - started) / len(sample)
        where = ""
        if same_place:
            localised[kind] = located / len(sample)
            where = f", painting localised (IoU >= 0.8) {located}/{len(sample)}"
        print(
            f"{kind}: {hits}/{len(sample)} = {out[kind]:.3f} (tune / held-out "
            f"{by_half[kind]['tune']:.3f} / {by_half[kind]['held-out']:.3f}){where} "
            f"({per_query:.2f} s a query)",
            flush=True,
        )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "catalog": str(args.catalog),
                    "n": len(sample),
                    "lines": paintings.LINES,
                    "lines_retry": photo.LINES_RETRY,
                    "detail_retry": photo.DETAIL_RETRY,
                    "coarse_retry": photo.COARSE_RETRY,
                    "coarse_side": photo.COARSE_SIDE,
                    "cut_quads": paintings.CUT_QUADS,
                    "cut_corners": paintings.CUT_CORNERS,
                    "hidden_quads": paintings.HIDDEN_QUADS,
                    "hidden_cut": paintings.HIDDEN_CUT,
                    "blurred_lines": photo.BLURRED_LINES,
                    "recall@1": out,
                    "recall@1_by_half": by_half,
                    "localised": localised,
                    "hits": per_query_hits,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
