"""Find the paintings in a photograph and rectify each to a frontal view.

A visitor's photo shows a painting in its frame on a wall, turned and in perspective. This
module finds convex quadrilaterals among the photo's edges (OpenCV: Canny edges at a few
thresholds, contours, polygon approximation), keeps the large, roughly rectangular ones,
and, where quadrilaterals nest (the frame's outer edge, its inner edge, a mat, the picture),
keeps the innermost one that is still most of the outer one: the picture inside its frame.
A page (a screen's display, a catalogue page) shows its picture off-centre beside text, so
the largest quadrilateral inside a found one is searched too, after all the paintings.
Several paintings side by side are several top-level quadrilaterals; small ones (wall
labels) are dropped. When nothing is found the list is empty and the caller searches the
whole photo, so a failed localisation is never worse than no localisation.

Quadrilaterals are in pixels of the photo as given (after EXIF orientation), corners
clockwise from the top left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from artsim.errors import ArtsimError

MIN_SIDE = 64  # a photo smaller than this has no painting worth finding
WORK_SIDE = 640  # localisation runs on the photo downscaled to this longest side

Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


class PhotoTooSmallError(ArtsimError):
    """The query photo is too small to search."""


@dataclass(frozen=True, slots=True)
class PaintingRegion:
    """A painting found in a photo: its corners in photo pixels and its frontal view."""

    quad: Quad
    image: Image.Image
    score: float  # how well the outline follows straight edges (0..1)


def check_size(image: Image.Image, label: str = "query photo") -> None:
    if min(image.size) < MIN_SIDE:
        raise PhotoTooSmallError(
            f"{label} is {image.width}x{image.height} px; a photo needs at least "
            f"{MIN_SIDE} px on each side to be searched: use a larger image"
        )


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Four points -> clockwise from the top left (by angle around their centre)."""
    pts = np.asarray(pts, dtype=np.float64).reshape(4, 2)
    c = pts.mean(0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]  # clockwise in image coordinates (y down)
    start = int(np.argmin(pts.sum(1)))  # top left: smallest x + y
    return np.roll(pts, -start, axis=0)


def _poly_area(q: np.ndarray) -> float:
    x, y = q[:, 0], q[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _angles_ok(q: np.ndarray, lo: float = 55.0, hi: float = 125.0) -> bool:
    for i in range(4):
        a, b, c = q[i - 1], q[i], q[(i + 1) % 4]
        u, v = a - b, c - b
        cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-9)
        if not lo <= np.degrees(np.arccos(np.clip(cos, -1, 1))) <= hi:
            return False
    sides = np.linalg.norm(q - np.roll(q, -1, axis=0), axis=1)
    return sides.min() > 0 and sides.max() / sides.min() < 8


def _inside(inner: np.ndarray, outer: np.ndarray, tol: float) -> bool:
    import cv2

    poly = outer.astype(np.float32).reshape(-1, 1, 2)
    return all(cv2.pointPolygonTest(poly, (float(x), float(y)), True) >= -tol for x, y in inner)


def _quad_from_contour(contour: np.ndarray) -> np.ndarray | None:
    import cv2

    hull = cv2.convexHull(contour)
    peri = cv2.arcLength(hull, True)
    for eps in (0.01, 0.02, 0.03, 0.05):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            return order_corners(approx.reshape(4, 2))
        if len(approx) < 4:
            return None
    return None


def _side_support(gx: np.ndarray, gy: np.ndarray, mag_thr: float, q: np.ndarray) -> np.ndarray:
    """Per side: share of points along it where the image gradient is strong and at right
    angles to the side (within ~25 degrees), looking up to 2 px either side. A painting's
    own texture has gradients in every direction, so a chord across it scores low; the
    straight edge of a frame or picture scores high."""
    h, w = gx.shape
    out = np.zeros(4)
    for i in range(4):
        a, b = q[i], q[(i + 1) % 4]
        length = float(np.linalg.norm(b - a))
        if length < 1:
            return out
        d = (b - a) / length
        normal = np.array([-d[1], d[0]])
        n = max(4, int(length / 3))
        t = np.linspace(0.05, 0.95, n)[:, None]
        base = a + (b - a) * t
        hit = np.zeros(n, dtype=bool)
        for off in (-2, -1, 0, 1, 2):
            p = np.rint(base + off * normal).astype(int)
            ok = (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)
            px, py = np.clip(p[:, 0], 0, w - 1), np.clip(p[:, 1], 0, h - 1)
            vx, vy = gx[py, px], gy[py, px]
            mag = np.hypot(vx, vy)
            along = np.abs(vx * normal[0] + vy * normal[1]) / (mag + 1e-6)
            hit |= ok & (mag > mag_thr) & (along > 0.9)
        out[i] = hit.mean()
    return out


def candidate_quads(gray: np.ndarray, min_area: float) -> list[tuple[np.ndarray, float]]:
    """Convex, roughly rectangular quadrilaterals among the edges of a grey image, with
    their edge support; near-duplicates merged."""
    import cv2

    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    med = float(np.median(blurred))
    found: list[tuple[np.ndarray, float]] = []
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3)
    mag_thr = max(20.0, float(np.percentile(np.hypot(gx, gy), 75)) * 0.5)
    for lo_f, hi_f in ((0.33, 0.66), (0.66, 1.33), (0.15, 0.4)):
        lo, hi = max(5.0, lo_f * med), max(15.0, hi_f * med)
        edges = cv2.Canny(blurred, lo, hi)
        edges = cv2.morphologyEx(
            edges, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
        )
        contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            if cv2.contourArea(cv2.convexHull(c)) < min_area:
                continue
            q = _quad_from_contour(c)
            if q is None or _poly_area(q) < min_area or not _angles_ok(q):
                continue
            sides = _side_support(gx, gy, mag_thr, q)
            # the weakest side counts most: a chord across the painting has one weak side
            found.append((q, float(0.5 * sides.min() + 0.5 * sides.mean())))
    # merge near-duplicates (same quad from several thresholds or both sides of an edge)
    found.sort(key=lambda qs: -qs[1])
    kept: list[tuple[np.ndarray, float]] = []
    for q, s in found:
        scale = np.sqrt(_poly_area(q))
        if all(np.abs(q - k).max() > 0.02 * scale + 2 for k, _ in kept):
            kept.append((q, s))
    return kept


def select_paintings(
    quads: list[tuple[np.ndarray, float]],
    *,
    min_support: float = 0.5,
    picture_share: float = 0.45,
    page_share: float = 0.15,
    max_paintings: int = 4,
) -> list[tuple[np.ndarray, float]]:
    """From candidate quadrilaterals, the pictures: top-level quads (frames, or pictures
    without a frame) and, inside each, the smallest nested quad still covering
    ``picture_share`` of it (the picture inside frame and mat). Each of those may be a page
    (a screen's display, a catalogue page) showing its picture off-centre beside text: the
    largest quad inside it covering ``page_share`` of it is returned too, after all the
    paintings, so that it never takes a painting's place under ``max_paintings``."""
    good = [(q, s) for q, s in quads if s >= min_support]
    good.sort(key=lambda qs: -_poly_area(qs[0]))
    out: list[tuple[np.ndarray, float]] = []
    pictures: list[tuple[np.ndarray, float]] = []  # of pages: searched after every painting
    used = [False] * len(good)
    for i, (q, s) in enumerate(good):
        if used[i]:
            continue
        area = _poly_area(q)
        tol = 0.01 * np.sqrt(area) + 2
        inner = [j for j in range(i + 1, len(good)) if not used[j] and _inside(good[j][0], q, tol)]
        for j in inner:
            used[j] = True
        centre = q.mean(0)
        # the picture sits in the middle of its frame: a nested quad off-centre is a panel
        # or a detail of the picture, not the picture
        nested = [
            j
            for j in inner
            if _poly_area(good[j][0]) >= picture_share * area
            and np.linalg.norm(good[j][0].mean(0) - centre) < 0.08 * np.sqrt(area)
        ]
        chosen = min(nested, key=lambda j: _poly_area(good[j][0])) if nested else None
        region = good[chosen] if chosen is not None else (q, s)
        out.append(region)
        # the region may be a page (a screen's display, a catalogue page) showing its
        # picture off-centre beside text: its largest inner quad of page_share is searched
        # too, after all the paintings; which one is the painting, the search decides
        r_area = _poly_area(region[0])
        r_tol = 0.01 * np.sqrt(r_area) + 2
        pages = [
            j
            for j in inner
            if j != chosen
            and page_share * r_area <= _poly_area(good[j][0]) < r_area
            and _inside(good[j][0], region[0], r_tol)
        ]
        if pages:
            pictures.append(good[max(pages, key=lambda j: _poly_area(good[j][0]))])
        if len(out) >= max_paintings:
            break
    return (out + pictures)[:max_paintings]


def rectify(image: Image.Image, quad: np.ndarray, max_side: int = 512) -> Image.Image:
    """The quadrilateral warped to a frontal rectangle (sides from the quad's edge lengths)."""
    import cv2

    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    # edge lengths, float32 as numpy gives them (the rounding below is done on these)
    ew: Any = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))
    eh: Any = max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1]))
    s = min(1.0, max_side / max(ew, eh, 1.0))
    w, h = max(8, round(ew * s)), max(8, round(eh * s))
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)  # pixel edges
    H = cv2.getPerspectiveTransform(q, dst)
    arr = cv2.warpPerspective(
        np.asarray(image), H, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    return Image.fromarray(arr, "RGB")


def find_paintings(
    image: Image.Image,
    *,
    max_paintings: int = 4,
    min_area: float = 0.04,
    max_area: float = 0.97,
    work_side: int = WORK_SIDE,
    rectify_side: int = 512,
) -> list[PaintingRegion]:
    """Paintings in a photo, largest first (then the pictures found on pages, see
    `select_paintings`): quadrilaterals in photo pixels and frontal views.

    ``min_area``/``max_area``: share of the photo a painting may cover (smaller ones are
    labels and details; a quad that is the whole image is not a localisation). Raises
    PhotoTooSmallError for a photo under 64 px; returns [] when nothing is found.
    """
    import cv2

    check_size(image)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    scale = min(1.0, work_side / max(rgb.size))
    small = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))))
    gray = cv2.cvtColor(np.asarray(small), cv2.COLOR_RGB2GRAY)
    total = float(gray.shape[0] * gray.shape[1])
    cands = [
        (q, s)
        for q, s in candidate_quads(gray, min_area * total)
        if _poly_area(q) <= max_area * total
    ]
    regions = []
    for q, s in select_paintings(cands, max_paintings=max_paintings):
        full = q / scale
        quad = tuple((float(x), float(y)) for x, y in full)
        regions.append(PaintingRegion(quad, rectify(rgb, full, rectify_side), float(s)))  # type: ignore[arg-type]
    return regions
