"""Find the paintings in a photograph and rectify each to a frontal view.

A visitor's photo shows a painting in its frame on a wall, turned and in perspective. This
module finds convex quadrilaterals among the photo's edges (OpenCV: Canny edges at a few
thresholds, contours, polygon approximation; and quadrilaterals assembled from long straight
edges found by a Hough transform, which survive a blur that breaks the contours), keeps
the large, roughly rectangular ones, and, where quadrilaterals nest (the frame's outer
edge, its inner edge, a mat, the picture), keeps the innermost one that is still most of
the outer one: the picture inside its frame. A page (a screen's display, a catalogue page)
shows its picture off-centre beside text, so the largest quadrilateral inside a found one
is searched too, after all the paintings. Several paintings side by side are several
top-level quadrilaterals; small ones (wall labels) are dropped. When nothing is found the
list is empty and the caller searches the whole photo, so a failed localisation is never
worse than no localisation.

Quadrilaterals are in pixels of the photo as given (after EXIF orientation), corners
clockwise from the top left.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from PIL import Image

from artsim.detectors.keypoints import stretch_photo
from artsim.errors import ArtsimError
from artsim.images import fit_side

MIN_SIDE = 64  # a photo smaller than this has no painting worth finding
WORK_SIDE = 640  # localisation runs on the photo downscaled to this longest side
# quadrilaterals from long straight edges too (`line_quads`), where no contour is clear; off
# by default: the extra regions cost ~+90 ms a gallery photo query (docs/photos.md), so photo
# search asks for them only when its first answer is not verified (search.photo.LINES_RETRY)
LINES = False
MIN_COVER = 0.4  # share of each side of a line quadrilateral that edges must cover
MIN_SUPPORT = 0.5  # the edge support a quadrilateral needs to be a painting or a page
LINE_SUPPORT = 0.65  # the edge support a line quadrilateral needs
MAX_EDGE_SHARE = 0.12  # no line quadrilaterals where more of the photo than this is edges
MAX_SEGMENTS = 300  # the longest straight segments that lines are assembled from
# look for the picture on a region with nothing found inside it (`page_picture`): a page
# whose picture no contour outlined (a screen's moire, a catalogue's text)
PAGES = True
PAGE_SIDE = 256  # `page_picture` looks at the region's view downscaled to this
# an underexposed photo (its brightest 1 % darker than this) is looked at on stretched and
# smoothed grey (edge_gray)
DIM_P99 = 150
DIM_BLUR = 1.5
CONTOUR_ENOUGH = 0.9  # a contour this well supported: no lines (they cost ~50 ms a photo)
# with lines, also outlines the photo's edge closes: a painting the photo cuts off on one
# side (a visitor close to a large canvas) has three edges of its frame and the photo's
# edge; they are looked for where lines are asked for, the retry of a photo whose first
# answer is not verified (docs/photos.md, "Paintings the photo cuts off")
CUT_QUADS = True
# and a painting the photo's corner cuts off: two adjacent sides on the photo's edge
# (docs/photos.md, "Paintings the photo's corner cuts off")
CUT_CORNERS = True
# and a painting whose lower part a visitor hides: three edges of its frame, its sides
# ending at the visitor's shoulders. The edge maps are cut across at these shares of the
# photo's height, from the lowest, and traced as the photo's edge is for CUT_QUADS
# (docs/photos.md, "Paintings a visitor hides the lower part of")
HIDDEN_QUADS = True
HIDDEN_LEVELS = (0.8, 0.65, 0.5)
# and such a painting the photo's left or right edge cuts off too: its top and one side
# show (docs/photos.md, "Paintings a visitor hides and the photo cuts off")
HIDDEN_CUT = True
BLUR_SIDE = 320  # `blur_level` looks at the photo downscaled to this

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


def _contour_quads(edges: np.ndarray, min_area: float) -> Iterator[np.ndarray]:
    """The quadrilaterals of an edge map's contours: convex hulls approximated by four
    corners, at least ``min_area`` px, with roughly right angles (`_angles_ok`)."""
    import cv2

    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    for c in contours:
        if cv2.contourArea(cv2.convexHull(c)) < min_area:
            continue
        q = _quad_from_contour(c)
        if q is not None and _poly_area(q) >= min_area and _angles_ok(q):
            yield q


def _side_support(gx: np.ndarray, gy: np.ndarray, mag_thr: float, q: np.ndarray) -> np.ndarray:
    """Per side: share of points along it where the image gradient is strong and at right
    angles to the side (within ~25 degrees), looking up to 2 px either side. A painting's
    own texture has gradients in every direction, so a chord across it scores low; the
    straight edge of a frame or picture scores high."""
    out = np.zeros(4)
    for i in range(4):
        if np.linalg.norm(q[(i + 1) % 4] - q[i]) < 1:
            return out
        out[i] = _segment_support(gx, gy, mag_thr, q[i], q[(i + 1) % 4])
    return out


def _segment_support(
    gx: np.ndarray, gy: np.ndarray, mag_thr: float, a: np.ndarray, b: np.ndarray, reach: int = 2
) -> float:
    """`_side_support` of one segment from ``a`` to ``b`` (at least 1 px long), looking up
    to ``reach`` px either side."""
    h, w = gx.shape
    length = float(np.linalg.norm(b - a))
    d = (b - a) / length
    normal = np.array([-d[1], d[0]])
    n = max(4, int(length / 3))
    t = np.linspace(0.05, 0.95, n)[:, None]
    base = a + (b - a) * t
    # the points at offsets -reach..reach px along the normal, all at once: (2 reach + 1, n, 2)
    p = np.rint(base[None] + np.arange(-reach, reach + 1)[:, None, None] * normal).astype(int)
    ok = (p[..., 0] >= 0) & (p[..., 0] < w) & (p[..., 1] >= 0) & (p[..., 1] < h)
    px, py = np.clip(p[..., 0], 0, w - 1), np.clip(p[..., 1], 0, h - 1)
    vx, vy = gx[py, px], gy[py, px]
    mag = np.hypot(vx, vy)
    along = np.abs(vx * normal[0] + vy * normal[1]) / (mag + 1e-6)
    return float((ok & (mag > mag_thr) & (along > 0.9)).any(0).mean())


@dataclass(frozen=True, slots=True)
class _Line:
    """Collinear edge segments: a point on the line, its unit direction, and the disjoint
    intervals (sorted, in px along the direction from the point) that segments cover."""

    origin: np.ndarray
    direction: np.ndarray
    spans: np.ndarray  # (k, 2)

    def covered(self, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        """Share of [a, b] (either order; arrays broadcast) that segments cover."""
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        s0, s1 = self.spans[:, 0], self.spans[:, 1]
        overlap = np.minimum(s1, np.expand_dims(hi, -1)) - np.maximum(s0, np.expand_dims(lo, -1))
        share = np.clip(overlap, 0, None).sum(-1) / np.maximum(hi - lo, 1e-9)
        return np.where(hi - lo >= 1, share, 0.0)

    def length(self) -> float:
        return float((self.spans[:, 1] - self.spans[:, 0]).sum())


def _merge(spans: list[tuple[float, float]]) -> np.ndarray:
    out: list[list[float]] = []
    for s0, s1 in sorted(spans):
        if out and s0 <= out[-1][1]:
            out[-1][1] = max(out[-1][1], s1)
        else:
            out.append([s0, s1])
    return np.array(out, np.float64).reshape(-1, 2)


def _group_lines(segments: np.ndarray, tol: float, max_angle: float = 2.5) -> list[_Line]:
    """Segments (n, 4: x1 y1 x2 y2) joined into lines, longest segments first: one joins the
    first line at most ``max_angle`` degrees off it whose axis passes within ``tol`` px of
    both its ends."""
    seg = segments.astype(np.float64).reshape(-1, 4)
    seg = seg[np.argsort(-np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]))]
    cos_max = np.cos(np.radians(max_angle))
    origins, dirs = np.zeros((len(seg), 2)), np.zeros((len(seg), 2))
    spans: list[list[tuple[float, float]]] = []
    for x1, y1, x2, y2 in seg:
        a, b = np.array([x1, y1]), np.array([x2, y2])
        length = float(np.linalg.norm(b - a))
        if length < 1:
            continue
        d = (b - a) / length
        n = len(spans)
        o, dd = origins[:n], dirs[:n]
        da, db = a - o, b - o
        near = (
            (np.abs(dd @ d) >= cos_max)
            & (np.abs(da[:, 0] * dd[:, 1] - da[:, 1] * dd[:, 0]) <= tol)
            & (np.abs(db[:, 0] * dd[:, 1] - db[:, 1] * dd[:, 0]) <= tol)
        )
        if near.any():
            k = int(np.argmax(near))
            pa, pb = float(da[k] @ dd[k]), float(db[k] @ dd[k])
            spans[k].append((min(pa, pb), max(pa, pb)))
        else:
            origins[n], dirs[n] = a, d
            spans.append([(0.0, length)])
    return [_Line(origins[k], dirs[k], _merge(sp)) for k, sp in enumerate(spans)]


def _through_corners(ends: list[tuple[_Line, float, float]]) -> int:
    """How many corners of a quadrilateral (its sides as lines and the positions of their
    ends along them) a side's edge runs on through: a T, not a corner. The strip between a
    frame's outer edge and the picture is bounded by lines that run on along the frame."""
    through = [False] * len(ends)
    for k, (ln, a, b) in enumerate(ends):
        # a tenth of the side beyond the corner (and a few px for the corner's blur)
        ext = 0.1 * abs(b - a) + 3
        sign = 1.0 if b >= a else -1.0
        if ln.covered(a - sign * ext, a) > 0.5:
            through[k] = True  # runs on past this side's first corner
        if ln.covered(b, b + sign * ext) > 0.5:
            through[(k + 1) % len(ends)] = True
    return sum(through)


def _split(
    sides: tuple[_Line, _Line],
    at: tuple[np.ndarray, np.ndarray],
    ends: tuple[tuple[float, float], tuple[float, float]],
    across: np.ndarray,
) -> bool:
    """Whether a line crosses the quad from side to side beside a gap in both the sides it
    crosses: two paintings hung side by side between the same pair of long lines, the
    wall between them. (A frame's inner edge and a horizon cross too, but the sides run
    on beside them.)

    ``sides``: two opposite sides; ``at``: where each candidate line crosses each of them
    (positions along it); ``ends``: each side's corners (positions); ``across``: how much
    of the stretch between the two sides each candidate line covers."""
    (s0, e0), _ = ends
    share = (at[0] - s0) / (e0 - s0)
    gaps = []
    for side, pos, (start, end) in zip(sides, at, ends, strict=True):
        ext = 0.1 * abs(end - start)  # a tenth of the side on either hand of the line
        gaps.append(np.minimum(side.covered(pos - ext, pos), side.covered(pos, pos + ext)))
    inside = (share > 0.02) & (share < 0.98)
    return bool((inside & (across >= MIN_COVER) & (np.maximum(*gaps) < 0.5)).any())


def _convex_clockwise(q: np.ndarray) -> bool:
    """Corners in order make a convex quadrilateral turning clockwise (image y down): a pair
    of lines that cross between the other two would give a self-crossing "bowtie"."""
    e = np.roll(q, -1, axis=0) - q
    turn = e[:, 0] * np.roll(e, -1, axis=0)[:, 1] - e[:, 1] * np.roll(e, -1, axis=0)[:, 0]
    return bool((turn > 0).all())


def line_quads(
    edges: np.ndarray, min_area: float, *, per_direction: int = 8, keep: int = 12
) -> list[np.ndarray]:
    """Quadrilaterals bounded by an edge map's long straight edges: two roughly horizontal
    and two roughly vertical lines, each side covered by edge segments along at least
    ``MIN_COVER`` of it, and no more than one corner where a side's edge runs on (a T, as
    at the strip between a frame's edge and its picture). A frame smeared by a shaking
    hand leaves its sides' lines where its contour no longer closes. Corners may lie up to
    2 % of the photo outside it (a frame cut by the photo's edge); clockwise from the top
    left, best covered first."""
    import cv2

    h, w = edges.shape
    short = min(h, w)
    # segments a twelfth of the short side or longer, gaps of up to 1/60 bridged (a
    # blurred or worn frame edge breaks up); 1-degree steps
    segs = cv2.HoughLinesP(
        edges,
        1,
        np.pi / 180,
        threshold=max(10, short // 20),
        minLineLength=max(8, short // 12),
        maxLineGap=max(3, short // 60),
    )
    if segs is None:
        return []
    segs = segs.reshape(-1, 4)
    # the longest segments carry the frame; a textured photo's hundreds of short ones cost
    # time in grouping and add nothing
    seg_len = np.hypot(segs[:, 2] - segs[:, 0], segs[:, 3] - segs[:, 1])
    segs = segs[np.argsort(-seg_len)[:MAX_SEGMENTS]]
    lines = _group_lines(segs, tol=max(2.0, 0.006 * np.hypot(h, w)))
    lines = [ln for ln in lines if ln.length() >= short / 8]
    # within 40 degrees of horizontal / vertical (rotation and perspective tilt the sides),
    # the longest of each; then sorted by where they cross the photo's middle: top to
    # bottom, left to right (the keys divide by the direction along the line's main axis,
    # over 0.77 for these lines, so never by ~0)
    flat = sorted((ln for ln in lines if abs(ln.direction[1]) < 0.64), key=lambda ln: -ln.length())
    upright = sorted(
        (ln for ln in lines if abs(ln.direction[0]) < 0.64), key=lambda ln: -ln.length()
    )
    flat, upright = flat[:per_direction], upright[:per_direction]
    if len(flat) < 2 or len(upright) < 2:
        return []
    flat.sort(
        key=lambda ln: ln.origin[1] + ln.direction[1] * (w / 2 - ln.origin[0]) / ln.direction[0]
    )
    upright.sort(
        key=lambda ln: ln.origin[0] + ln.direction[0] * (h / 2 - ln.origin[1]) / ln.direction[1]
    )
    # every flat line's crossing with every upright one (Cramer's rule: t along the flat
    # line, u along the upright one; the two are at least 10 degrees apart, so denom != 0)
    of, df = np.array([ln.origin for ln in flat]), np.array([ln.direction for ln in flat])
    ou, du = np.array([ln.origin for ln in upright]), np.array([ln.direction for ln in upright])
    diff = ou[None, :, :] - of[:, None, :]
    denom = df[:, None, 0] * du[None, :, 1] - df[:, None, 1] * du[None, :, 0]
    t = (diff[..., 0] * du[None, :, 1] - diff[..., 1] * du[None, :, 0]) / denom
    u = (diff[..., 0] * df[:, None, 1] - diff[..., 1] * df[:, None, 0]) / denom
    cross = of[:, None, :] + t[..., None] * df[:, None, :]
    margin = 0.02 * max(h, w)
    in_frame = (
        (cross[..., 0] >= -margin)
        & (cross[..., 1] >= -margin)
        & (cross[..., 0] <= w + margin)
        & (cross[..., 1] <= h + margin)
    )
    # each side's coverage for every pair of lines that could end it, all at once:
    # flat line i between uprights j and m, upright j between flat lines i and k
    cov_flat = np.stack([ln.covered(t[i][:, None], t[i][None, :]) for i, ln in enumerate(flat)])
    cov_up = np.stack(
        [ln.covered(u[:, j][:, None], u[:, j][None, :]) for j, ln in enumerate(upright)]
    )
    fi = np.array(list(combinations(range(len(flat)), 2)))
    uj = np.array(list(combinations(range(len(upright)), 2)))
    i, k = np.repeat(fi[:, 0], len(uj)), np.repeat(fi[:, 1], len(uj))
    j, m = np.tile(uj[:, 0], len(fi)), np.tile(uj[:, 1], len(fi))
    sides = np.stack([cov_flat[i, j, m], cov_up[m, i, k], cov_flat[k, j, m], cov_up[j, i, k]], 1)
    ok = in_frame[i, j] & in_frame[i, m] & in_frame[k, m] & in_frame[k, j]
    ok &= sides.min(1) >= MIN_COVER
    score = 0.5 * sides.min(1) + 0.5 * sides.mean(1)
    out: list[np.ndarray] = []
    # best covered first, until ``keep`` pass the checks that need Python
    for n in sorted(np.flatnonzero(ok), key=lambda n: -score[n]):
        a, b, c, d = int(i[n]), int(k[n]), int(j[n]), int(m[n])
        # corners clockwise: top-left, top-right, bottom-right, bottom-left
        q = cross[[a, a, b, b], [c, d, d, c]]
        if not _convex_clockwise(q) or _poly_area(q) < min_area or not _angles_ok(q):
            continue
        ends = [
            (flat[a], t[a, c], t[a, d]),
            (upright[d], u[a, d], u[b, d]),
            (flat[b], t[b, d], t[b, c]),
            (upright[c], u[b, c], u[a, c]),
        ]
        if _through_corners(ends) >= 2:
            continue
        # uprights across the quad, crossing its top and bottom; flat lines, its sides
        top_bottom = ((t[a, c], t[a, d]), (t[b, c], t[b, d]))
        left_right = ((u[a, c], u[b, c]), (u[a, d], u[b, d]))
        if _split((flat[a], flat[b]), (t[a], t[b]), top_bottom, cov_up[:, a, b]) or _split(
            (upright[c], upright[d]), (u[:, c], u[:, d]), left_right, cov_flat[:, c, d]
        ):
            continue
        out.append(q)
        if len(out) >= keep:
            break
    return out


def _support(sides: np.ndarray) -> float:
    """One score from the four sides' support: the weakest side counts most, since a chord
    across the painting has one weak side."""
    return float(0.5 * sides.min() + 0.5 * sides.mean())


def candidate_quads(
    gray: np.ndarray, min_area: float, *, lines: bool | None = None
) -> list[tuple[np.ndarray, float]]:
    """Convex, roughly rectangular quadrilaterals among the edges of a grey image, with
    their edge support; near-duplicates merged. ``lines``: also quads from long straight
    edges where no contour is clear (None: ``LINES``)."""
    import cv2

    lines = LINES if lines is None else lines
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    med = float(np.median(blurred))
    found: list[tuple[np.ndarray, float]] = []
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3)
    mag_thr = max(20.0, float(np.percentile(np.hypot(gx, gy), 75)) * 0.5)
    line_edges: np.ndarray | None = None
    closed_maps: list[np.ndarray] = []
    thresholds = ((0.33, 0.66), (0.66, 1.33), (0.15, 0.4))
    for lo_f, hi_f in thresholds:
        lo, hi = max(5.0, lo_f * med), max(15.0, hi_f * med)
        edges = cv2.Canny(blurred, lo, hi)
        if lo_f == min(t[0] for t in thresholds):
            line_edges = edges  # the lowest thresholds' map: a blurred frame's edge too
        edges = cv2.morphologyEx(
            edges, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
        )
        closed_maps.append(edges)
        for q in _contour_quads(edges, min_area):
            found.append((q, _support(_side_support(gx, gy, mag_thr, q))))
    # quads from lines, on the lowest thresholds' Canny map as found (Hough bridges its
    # gaps), as a fallback: a photo with a closed outline this well supported keeps the
    # contours' answer (lines cost ~50 ms a photo and found no more there); a map of edges
    # nearly everywhere is texture, whose lines frame nothing
    needed = not any(s >= CONTOUR_ENOUGH for _, s in found)
    if lines and needed and line_edges is not None and (line_edges > 0).mean() <= MAX_EDGE_SHARE:
        contour_quads = np.array([q for q, _ in found]).reshape(-1, 4, 2)
        # closed outlines a painting or a page could be, for lines to stay out of: inside
        # a screen's display, lines of text and the picture's edge made false pages (screen
        # photos' paintings found 0.60 -> 0.46). The cost: a picture that only lines find
        # inside a frame that a contour found is left out (the frame is searched instead)
        outlines = [(q, _nest_tol(_poly_area(q))) for q, s in found if s >= MIN_SUPPORT]
        for q in line_quads(line_edges, min_area):
            if same_quad(q, contour_quads).any():
                continue  # a contour found it already
            if any(_inside(q, o, tol) for o, tol in outlines):
                continue
            support = _support(_side_support(gx, gy, mag_thr, q))
            # assembled from four separate lines, such a quad needs more support than a
            # closed contour to be believed (a wall's texture has lines too)
            if support >= LINE_SUPPORT:
                found.append((q, support))
    if lines and needed and CUT_QUADS:
        found += cut_quads(closed_maps, min_area, gx, gy, mag_thr)
    if lines and needed and HIDDEN_QUADS:
        known = np.array([q for q, s in found if s >= MIN_SUPPORT]).reshape(-1, 4, 2)
        found += hidden_quads(closed_maps, min_area, gx, gy, mag_thr, known)
    # merge near-duplicates (same quad from several thresholds or both sides of an edge)
    found.sort(key=lambda qs: -qs[1])
    kept: list[tuple[np.ndarray, float]] = []
    for q, s in found:
        if not same_quad(q, np.array([k for k, _ in kept]).reshape(-1, 4, 2)).any():
            kept.append((q, s))
    return kept


def _on_edge(q: np.ndarray, shape: tuple[int, ...], tol: float) -> np.ndarray:
    """Per side of a quad: whether both its corners lie within ``tol`` px of the same edge
    of an image of ``shape`` (h, w)."""
    h, w = shape[:2]
    near = np.stack(
        [q[:, 1] <= tol, q[:, 0] >= w - 1 - tol, q[:, 1] >= h - 1 - tol, q[:, 0] <= tol], 1
    )  # (corner, edge): top, right, bottom, left
    return np.asarray((near & np.roll(near, -1, axis=0)).any(1))


def _bordered_quads(edges: np.ndarray, min_area: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`_contour_quads` of an edge map with its border drawn in, so that an outline open at
    the map's edge closes along it; each with `_on_edge` of its sides (3 px)."""
    framed = edges.copy()
    framed[0, :] = framed[-1, :] = framed[:, 0] = framed[:, -1] = 255
    for q in _contour_quads(framed, min_area):
        yield q, _on_edge(q, framed.shape, tol=3.0)


def _photo_corner(on: np.ndarray) -> bool:
    """Whether exactly two sides lie on the photo's edge and they are adjacent: they meet
    at the photo's corner (two adjacent sides cannot lie on one edge: `_angles_ok`)."""
    return bool(on.sum() == 2 and (on & np.roll(on, 1)).any())


def _crossing(
    gx: np.ndarray, gy: np.ndarray, mag_thr: float, q: np.ndarray, on: np.ndarray
) -> bool:
    """Whether both edges that meet at the corner of a quad away from the photo's edge run
    on through it: two lines crossing (a floor and a room's corner), not a frame's corner,
    where both end. Looked at from 3 px to a tenth of each side (+ 6 px) beyond the
    corner: more than half of that stretch must be an edge along the side's line."""
    c = next(i for i in range(4) if not on[i - 1] and not on[i])
    for other in (q[c - 1], q[(c + 1) % 4]):
        d = q[c] - other
        length = float(np.linalg.norm(d))
        d = d / max(length, 1e-6)
        start, end = q[c] + 3 * d, q[c] + (0.1 * length + 6) * d
        # a corner found by approxPolyDP may be a few px off the edges' crossing
        if _segment_support(gx, gy, mag_thr, start, end, reach=5) <= 0.5:
            return False
    return True


def cut_quads(
    edge_maps: list[np.ndarray],
    min_area: float,
    gx: np.ndarray,
    gy: np.ndarray,
    mag_thr: float,
) -> list[tuple[np.ndarray, float]]:
    """Quadrilaterals with one side on the photo's edge: contours of the (closed) edge maps
    with the image's border drawn in, so that a frame the photo cuts off closes along it.
    The side on the border has no edge to support it; the other three need
    ``LINE_SUPPORT`` (a chord across a painting or a wall's texture rarely gives three
    straight, well-supported sides). With ``CUT_CORNERS``, also two adjacent sides on the
    border (the photo's corner cuts the painting off) when the other two do not cross
    (`_crossing`). Two opposite sides on the border (a band across the photo), or three or
    more (the photo's own corners, a wall or a floor): left out."""

    out: list[tuple[np.ndarray, float]] = []
    for edges in edge_maps:
        for q, on in _bordered_quads(edges, min_area):
            corner = CUT_CORNERS and _photo_corner(on)
            if not (on.sum() == 1 or corner):
                continue
            if corner and _crossing(gx, gy, mag_thr, q, on):
                continue
            sides = _side_support(gx, gy, mag_thr, q)[~on]
            support = _support(sides)
            if support >= LINE_SUPPORT:
                out.append((q, support))
    return out


def hidden_quads(
    edge_maps: list[np.ndarray],
    min_area: float,
    gx: np.ndarray,
    gy: np.ndarray,
    mag_thr: float,
    known: np.ndarray | None = None,
) -> list[tuple[np.ndarray, float]]:
    """Quadrilaterals whose lower side is hidden (a visitor's head and shoulders in front of
    the painting): each (closed) edge map cut across at `HIDDEN_LEVELS` of its height and
    traced with the cut as its lower edge, as `cut_quads` traces the photo's edge. Kept:
    the lower side on the cut (with ``HIDDEN_CUT``, also a left or right side on the
    photo's edge, when the top corner away from it is no crossing of two lines,
    `_crossing`), the other sides with ``LINE_SUPPORT``; no other
    kept quad or ``known`` one (n, 4, 2) with the same top corners (the lowest cut that
    closes the outline wins, and an outline found whole needs no cut); and none that a
    ``known`` quad closed below the cut holds as `select_paintings` holds a picture or a
    page's (its cut part, or a faint picture's inside a frame found whole, would be taken
    for the picture, or searched as another)."""
    h, w = edge_maps[0].shape[:2]
    tol = 0.02 * float(np.hypot(h, w))
    known = known if known is not None else np.zeros((0, 4, 2))
    tops = [k[:2] for k in known]
    out: list[tuple[np.ndarray, float]] = []
    for level in HIDDEN_LEVELS:
        y = round(level * h)
        for edges in edge_maps:
            for q, on in _bordered_quads(edges[:y], min_area):
                # ``on`` says a side is on some edge of the cut map; the lower side (2, as
                # `order_corners` puts it; a top rising past 45 degrees puts it at 1 and
                # the quad is lost) is on the cut, row y - 1, when both its corners are
                if not on[2] or min(q[2, 1], q[3, 1]) < y - 4:
                    continue
                # one side on the photo's left or right edge too: the photo cuts it off
                side = HIDDEN_CUT and on.sum() == 2 and (on[1] or on[3])
                if on.sum() != 1 and not side:
                    continue
                if any(np.abs(t - q[:2]).max() <= tol for t in tops):
                    continue
                if any(_holds(k, q) for k in known if k[:, 1].max() > y):
                    continue
                if side and _crossing(gx, gy, mag_thr, q, on):  # the dearest check last
                    continue
                support = _support(_side_support(gx, gy, mag_thr, q)[~on])
                if support >= LINE_SUPPORT:
                    out.append((q, support))
                    tops.append(q[:2])
    return out


def _holds(outer: np.ndarray, inner: np.ndarray, share: float = 0.15) -> bool:
    """Whether ``inner`` lies inside ``outer`` and covers ``share`` of it: what
    `select_paintings` may take for the picture inside a frame (0.45) or a page's
    picture (0.15)."""
    area = _poly_area(outer)
    return _poly_area(inner) >= share * area and _inside(inner, outer, _nest_tol(area))


def _nest_tol(area: float) -> float:
    """How far (px) a quad's corners may stray outside one of this area and still be inside
    it: a frame's edge and the picture's share a line, give or take a pixel or two."""
    return float(0.01 * np.sqrt(area) + 2)


def same_quad(q: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For each of ``others`` (n, 4, 2): no corner further from q's than 2 % of q's size
    (and 2 px)."""
    return np.abs(others - q).max(axis=(1, 2)) <= 0.02 * np.sqrt(_poly_area(q)) + 2


def select_paintings(
    quads: list[tuple[np.ndarray, float]],
    *,
    min_support: float = MIN_SUPPORT,
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
        tol = _nest_tol(area)
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
        r_tol = _nest_tol(r_area)
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


def _frontal(quad: np.ndarray, max_side: int, square: bool = False) -> tuple[np.ndarray, int, int]:
    """The homography taking the quadrilateral to its frontal rectangle (``square``: to a
    ``max_side`` square), and that size."""
    import cv2

    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    if square:
        w = h = max_side
    else:
        # edge lengths, float32 as numpy gives them (the rounding below is done on these)
        ew: Any = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))
        eh: Any = max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1]))
        s = min(1.0, max_side / max(ew, eh, 1.0))
        w, h = max(8, round(ew * s)), max(8, round(eh * s))
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)  # pixel edges
    return cv2.getPerspectiveTransform(q, dst), w, h


def frontal_aspect(quad: Any) -> float:
    """Width over height of a quadrilateral's frontal view (`rectify`)."""
    _, w, h = _frontal(np.asarray(quad, np.float32), 100_000)
    return w / h


def page_picture(
    view: Image.Image,
    *,
    min_share: float = 0.06,
    max_share: float = 0.8,
    fill: float = 0.85,
    margin: float = 0.6,
) -> tuple[int, int, int, int] | None:
    """The box (x0, y0, x1, y1) of a picture on a page seen frontally (a rectified screen or
    catalogue page), or None. The page is its median colour; the picture is the largest blob
    that differs from it (Lab distance over one of a few thresholds, lines of text opened
    away) and fills at least ``fill`` of its box, which covers ``min_share`` to ``max_share``
    of the view; at least ``margin`` of the view outside the box must be page.
    A screen's moire and a page's text break the closed outline contours need (screen
    photos' pictures were found 0.60 of the time; docs/photos.md)."""
    import cv2

    small, f = fit_side(view, PAGE_SIDE)  # enough for a blob of 6 % of the view
    a = np.asarray(small.convert("RGB"))
    h, w = a.shape[:2]
    if min(h, w) < 32:
        return None
    lab = cv2.cvtColor(a, cv2.COLOR_RGB2LAB).astype(np.float32)
    d = np.sqrt(((lab - np.median(lab.reshape(-1, 3), axis=0)) ** 2).sum(-1))
    d = cv2.GaussianBlur(d, (0, 0), max(1.0, 0.004 * max(h, w)))
    k = max(3, round(0.035 * min(h, w)))  # wider than a line of text (~1.2 % of the page)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    best: tuple[float, tuple[int, int, int, int]] | None = None  # (blob's share, box)
    for thr in (15.0, 25.0, 40.0, 60.0):
        differs = d > thr
        mask = cv2.morphologyEx(differs.astype(np.uint8), cv2.MORPH_OPEN, kernel)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        for x, y, bw, bh, area in stats[1:n]:
            box_area = float(bw * bh)
            share, solid = box_area / (w * h), area / box_area
            if not min_share <= share <= max_share or solid < fill:
                continue
            outside = differs.sum() - differs[y : y + bh, x : x + bw].sum()
            if 1.0 - outside / max(w * h - box_area, 1.0) < margin:
                continue  # the rest is no plain page: a painting's own shapes
            if best is None or solid * share > best[0]:
                best = (solid * share, (x, y, x + bw, y + bh))
    if best is None:
        return None
    x0, y0, x1, y1 = (round(float(v) / f) for v in best[1])
    return (x0, y0, min(x1, view.width), min(y1, view.height))


def rectify(
    image: Image.Image, quad: np.ndarray, max_side: int = 512, *, square: bool = False
) -> Image.Image:
    """The quadrilateral warped to a frontal rectangle (sides from the quad's edge lengths),
    or with ``square`` to a ``max_side`` x ``max_side`` square, as a collection resized to
    squares holds the painting."""
    import cv2

    H, w, h = _frontal(quad, max_side, square)
    arr = cv2.warpPerspective(
        np.asarray(image), H, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    return Image.fromarray(arr, "RGB")


def edge_gray(gray: np.ndarray) -> np.ndarray:
    """The grey photo localisation looks for outlines in. An underexposed photo (its
    brightest 1 % darker than `DIM_P99`) is stretched to the full grey range and smoothed
    where noisy (`keypoints.stretch_photo`, sigma `DIM_BLUR` px at `WORK_SIDE`), as the
    photo's keypoints are. Canny's floor thresholds are absolute, so a dark photo's frames
    fall under them, and high-ISO grain, stretched, breaks their contours: the stretch alone found fewer paintings in dim
    photos, and stretch with smoothing found most of those missed (docs/photos.md, "Dim
    photos: outlines on stretched grey")."""
    # the top percentile, not the median: a bright screen or a lit painting in a dark room
    # is exposed right, and stretching its dark surround found fewer paintings
    if float(np.percentile(gray, 99)) >= DIM_P99:
        return gray
    return stretch_photo(gray, DIM_BLUR)


def blur_level(image: Image.Image, side: int = BLUR_SIDE) -> float:
    """How blurred a photo is, from 0 (sharp) to 1: the no-reference measure of Crete et al.
    (2007) on its grey downscaled to ``side`` px. Blurring the photo again (a 9 px box, along
    rows, then along columns) removes much of a sharp photo's variation between neighbouring
    pixels and little of a blurred one's; the measure is the share of variation that stays,
    the larger of the two directions (a motion streak blurs mostly along one)."""
    import cv2

    rgb = image if image.mode == "RGB" else image.convert("RGB")
    small, _ = fit_side(rgb, side, Image.Resampling.BILINEAR)
    gray = cv2.cvtColor(np.asarray(small), cv2.COLOR_RGB2GRAY).astype(np.float32)
    levels = []
    for axis, kernel in ((0, np.ones((9, 1), np.float32)), (1, np.ones((1, 9), np.float32))):
        if gray.shape[axis] < 2:
            continue
        again = cv2.filter2D(gray, -1, kernel / 9.0, borderType=cv2.BORDER_REPLICATE)
        d_photo = np.abs(np.diff(gray, axis=axis))
        d_again = np.abs(np.diff(again, axis=axis))
        total = float(d_photo.sum())
        if total > 0:
            levels.append((total - float(np.maximum(0.0, d_photo - d_again).sum())) / total)
    return max(levels, default=0.0)  # a flat photo: nothing to tell blur by


def find_paintings(
    image: Image.Image,
    *,
    max_paintings: int = 4,
    min_area: float = 0.04,
    max_area: float = 0.97,
    work_side: int = WORK_SIDE,
    rectify_side: int = 512,
    lines: bool | None = None,
    pages: bool | None = None,
) -> list[PaintingRegion]:
    """Paintings in a photo, largest first (then the pictures found on pages, see
    `select_paintings`, then those `page_picture` finds where no contour found one):
    quadrilaterals in photo pixels and frontal views.

    ``min_area``/``max_area``: share of the photo a painting may cover (smaller ones are
    labels and details; a quad that is the whole image is not a localisation). ``lines``:
    also quadrilaterals from long straight edges (None: ``LINES``). ``pages``: look for a
    picture on each region with nothing inside it (None: ``PAGES``). Raises
    PhotoTooSmallError for a photo under 64 px; returns [] when nothing is found.
    """
    import cv2

    check_size(image)
    pages = PAGES if pages is None else pages
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    small, scale = fit_side(rgb, work_side)
    gray = edge_gray(cv2.cvtColor(np.asarray(small), cv2.COLOR_RGB2GRAY))
    total = float(gray.shape[0] * gray.shape[1])
    cands = [
        (q, s)
        for q, s in candidate_quads(gray, min_area * total, lines=lines)
        if _poly_area(q) <= max_area * total
    ]
    regions = []
    chosen = select_paintings(cands, max_paintings=max_paintings)
    for q, s in chosen:
        full = q / scale
        quad = tuple((float(x), float(y)) for x, y in full)
        regions.append(PaintingRegion(quad, rectify(rgb, full, rectify_side), float(s)))  # type: ignore[arg-type]
    if pages:
        regions += _page_pictures(rgb, regions, [q for q, _ in chosen], max_paintings, rectify_side)
    return regions


def _page_pictures(
    rgb: Image.Image,
    regions: list[PaintingRegion],
    work_quads: list[np.ndarray],
    max_paintings: int,
    rectify_side: int,
) -> list[PaintingRegion]:
    """The pictures `page_picture` finds on regions with nothing found inside them (pages
    whose picture no contour outlined), up to ``max_paintings`` regions in all; each
    rectified again from the photo, so that it keeps the photo's resolution."""
    import cv2

    found = np.array([r.quad for r in regions], np.float64).reshape(-1, 4, 2)
    out: list[PaintingRegion] = []
    for r, wq in zip(regions, work_quads, strict=True):
        if len(regions) + len(out) >= max_paintings:
            break
        tol = _nest_tol(_poly_area(wq))
        if any(_inside(o, wq, tol) for o in work_quads if o is not wq):
            continue  # a picture was found inside it already
        box = page_picture(r.image)
        if box is None:
            continue
        H, _, _ = _frontal(np.array(r.quad, np.float32), rectify_side)
        x0, y0, x1, y1 = box
        corners = np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], np.float32)
        full = cv2.perspectiveTransform(corners, np.linalg.inv(H))[0].astype(np.float64)
        if same_quad(full, found).any():
            continue
        quad = tuple((float(x), float(y)) for x, y in full)
        out.append(PaintingRegion(quad, rectify(rgb, full, rectify_side), r.score))  # type: ignore[arg-type]
        found = np.concatenate([found, full[None]])
    return out
