"""Geometric verification: do a query photo and a candidate painting share a plane?

Local features (RootSIFT, ``artsim.catalog.local``) of the query are matched against each
candidate's, nearest neighbour with Lowe's ratio test, then a RANSAC homography keeps the
matches consistent with one planar view of the painting. The number of inliers says how
surely the photo shows that painting, and the homography says where: the candidate's
corners mapped into the query photo.

Candidates are matched a few at a time, each few in one matrix product (query descriptors x
their descriptors) and one top-2 pass over it (`_nearest_two`), so verifying 100 candidates
is a dozen BLAS calls, their max passes and 100 small RANSACs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artsim.catalog.local import LocalFeatures

RATIO = 0.85  # Lowe's ratio on descriptor distances
RANSAC_PX = 8.0  # reprojection error in query pixels
MIN_MATCHES = 8
# a homography whose inliers cover less of the painting shown than this is no verification:
# matches on one motif (a seal, a signature cartouche that prints of one artist share);
# chosen on the tune half of the photo settings (docs/photos.md, "Matches on one motif")
MIN_SPREAD = 0.06
# candidates matched at once: each chunk padded to its own longest, its similarities a few
# MB (8 and 16 measured alike; 32 and all at once slower: benchmarks.md, session 28)
MATCH_CHUNK = 8


@dataclass(frozen=True, slots=True)
class Verification:
    """One candidate's geometric check: inliers of the homography (0 when none was found)
    and, when found, the candidate's corners in query pixels (clockwise from top left)."""

    inliers: int
    quad: tuple[tuple[float, float], ...] | None = None
    spread: float = 0.0  # see `spread`


def spread(points: np.ndarray, quad: np.ndarray, size: tuple[int, int]) -> float:
    """How much of the painting's part the photo shows its inliers cover: the area of their
    convex hull over that of the painting's quad inside the photo. Matches on one small
    motif (a seal, a signature, a cartouche) cover little; a painting shown whole or in
    detail is matched across what is shown."""
    import cv2

    frame = np.array([[0, 0], [size[0], 0], [size[0], size[1]], [0, size[1]]], np.float32)
    shown, _ = cv2.intersectConvexConvex(quad.astype(np.float32), frame)
    if shown <= 1.0 or len(points) < 3:
        return 0.0
    hull = cv2.convexHull(points.astype(np.float32).reshape(-1, 1, 2))
    return float(min(1.0, cv2.contourArea(hull) / shown))


def _plausible(quad: np.ndarray) -> bool:
    """A homography that maps the painting to a convex, non-degenerate quadrilateral."""
    import cv2

    if not np.all(np.isfinite(quad)):
        return False
    area = cv2.contourArea(quad.astype(np.float32))
    return area > 1.0 and cv2.isContourConvex(quad.astype(np.float32).reshape(-1, 1, 2))


def _nearest_two(
    qd: np.ndarray, candidates: list[LocalFeatures], chunk: int = MATCH_CHUNK
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query descriptor and candidate: the nearest candidate keypoint and the two
    best similarities, (n_query, n_candidates) each; -inf where a candidate has too few
    keypoints. Candidates are taken ``chunk`` at a time, shortest first, each chunk's
    keypoints padded only to its own longest: one matrix product per chunk, then two max
    passes over it. Several times faster than a top-2 partition per candidate, and 1.7x
    faster than padding every candidate to the longest (stored paintings hold 155
    keypoints on average, of up to 256), with the same answers."""
    n_q, n, dim = len(qd), len(candidates), qd.shape[1]
    nearest = np.zeros((n_q, n), np.intp)
    s1 = np.full((n_q, n), -np.inf, np.float32)
    s2 = np.full((n_q, n), -np.inf, np.float32)
    sizes = np.array([len(c) for c in candidates], np.intp)
    order = np.argsort(sizes, kind="stable")
    for start in range(0, n, chunk):
        idx = order[start : start + chunk]
        m = int(sizes[idx].max())
        if m == 0:
            continue
        cd = np.zeros((len(idx), m, dim), np.float32)
        for j, i in enumerate(idx):
            if sizes[i]:
                cd[j, : sizes[i]] = candidates[i].unit_desc()
        sims = (qd @ cd.reshape(-1, dim).T).reshape(n_q, len(idx), m)
        for j, i in enumerate(idx):
            sims[:, j, sizes[i] :] = -np.inf  # padding is never a match
        best = sims.argmax(axis=2)
        nearest[:, idx] = best
        s1[:, idx] = np.take_along_axis(sims, best[..., None], axis=2)[..., 0]
        np.put_along_axis(sims, best[..., None], -np.inf, axis=2)
        s2[:, idx] = sims.max(axis=2)
    return nearest, s1, s2


def verify_candidates(
    query: LocalFeatures,
    query_size: tuple[int, int],
    candidates: list[LocalFeatures],
    *,
    ratio: float = RATIO,
    ransac_px: float = RANSAC_PX,
    min_spread: float | None = None,
) -> list[Verification]:
    """Verify each candidate against the query's features. ``query.xy`` is in [0, 1] of the
    query image, ``query_size`` its size in pixels (quads come back in those pixels). A
    homography whose inliers' `spread` is under ``min_spread`` (None: ``MIN_SPREAD``
    at call time) verifies nothing (0 inliers, its spread kept)."""
    import cv2

    min_spread = MIN_SPREAD if min_spread is None else min_spread
    out = [Verification(0) for _ in candidates]
    if len(query) < MIN_MATCHES or not candidates:
        return out
    qd = query.unit_desc()
    qxy = query.xy.astype(np.float32) * np.array(query_size, np.float32)
    sizes = [len(c) for c in candidates]
    if sum(sizes) == 0:
        return out
    nearest, s1_all, s2_all = _nearest_two(qd, candidates)
    for i, (c, n) in enumerate(zip(candidates, sizes, strict=True)):
        if n < 2:
            continue
        best = nearest[:, i]
        d1 = np.sqrt(np.maximum(2 - 2 * s1_all[:, i], 0))
        d2 = np.sqrt(np.maximum(2 - 2 * s2_all[:, i], 0))
        good = np.nonzero(d1 < ratio * d2)[0]
        if len(good) < MIN_MATCHES:
            continue
        # one match per candidate keypoint (the closest), else a repeated pattern inflates
        # the count
        cbest = best[good]
        order = np.lexsort((d1[good], cbest))  # by candidate keypoint, closest first
        _, first = np.unique(cbest[order], return_index=True)
        qi, ci = good[order[first]], cbest[order[first]]
        if len(qi) < MIN_MATCHES:
            continue
        side = float(max(c.size)) if max(c.size) > 0 else 512.0
        cxy = c.xy.astype(np.float32)[ci] * side
        H, mask = cv2.findHomography(
            cxy, qxy[qi], cv2.USAC_MAGSAC, ransac_px, maxIters=500, confidence=0.995
        )
        if H is None or mask is None:
            continue
        corners = np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float32)
        quad = cv2.perspectiveTransform(corners[None], H)[0]
        if not _plausible(quad):
            continue
        covered = spread(qxy[qi][mask.ravel().astype(bool)], quad, query_size)
        if covered < min_spread:
            out[i] = Verification(0, None, covered)
            continue
        out[i] = Verification(
            int(mask.sum()), tuple((float(x), float(y)) for x, y in quad), covered
        )
    return out
