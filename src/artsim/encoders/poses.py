"""A pose descriptor that compares how figures hold themselves, not where or how big they are.

A figure is described by the *directions* of SEGMENTS drawn between its BlazePose keypoints
(torso, head, upper arms, forearms, hands, thighs, shins, plus longer "reach" vectors from the
shoulders to the wrists and from the hips to the ankles). Each direction angle t becomes the
6-vector sqrt(c) * (cos t, sin t, cos 2t, sin 2t, cos 3t, sin 3t), so that the inner product of
two such vectors is a smooth angular kernel

    K(dt) = 0.552 cos(dt) + 0.314 cos(2 dt) + 0.134 cos(3 dt)

(the first three harmonics of a von Mises kernel, kappa = 3: 1 at 0 deg, 0.90 at 15, 0.64 at 30,
0.30 at 45, about 0 at 60, negative beyond). Each segment's vector is multiplied by a weight
w = importance x min(visibility of its end points) x (1 if the segment is long enough for its
direction to mean something, less if it is shorter than 5 % of the figure), and the
concatenation is L2-normalised. The inner product of two descriptors is therefore

    S(a, b) = sum_s w_a,s w_b,s K(t_a,s - t_b,s) / (|w_a| |w_b|)

in [-1, 1]: 1 for the same pose, a visibility-weighted mean agreement of segment directions.
This is exactly what a FAISS IndexFlatIP computes over `pose_descriptors`, and what
`pose_similarity` returns.

Why this shape:
- translation and scale invariant by construction (directions only; no centring or torso-size
  normalisation that would depend on hips BlazePose often has to guess in half-length figures);
- not rotation invariant on purpose: a reclining figure is a different pose from a standing one;
- segments a figure does not show (legs of a half-length portrait, visibility ~0) carry no
  weight, so they never count as a difference; they only scale S by the share of the other
  figure's weight they hold. Legs and hands have half the importance of arms, torso and head
  (they are the parts most often hidden by drapery or frames and the noisiest BlazePose
  outputs), so a half-length figure against the same pose in full length still scores ~0.9;
- mirror search: `mirror_pose` flips x and swaps left/right labels; `query_descriptors(pose,
  mirror=True)` returns the descriptor of the pose and of its mirror image, and the search takes
  the better of the two scores (`pose_similarity(..., mirror=True)` does the same).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from artsim.detectors.poses import LEFT_RIGHT, SWAP_LEFT_RIGHT
from artsim.records import Pose

# von Mises (kappa = 3) harmonic weights, normalised to sum to 1 (see module docstring)
HARMONICS: tuple[float, ...] = (0.5523, 0.3137, 0.1341)
MIN_SEGMENT = 0.05  # segments shorter than this share of the figure's size get less weight


# a point is a keypoint index or the midpoint of two
_Point = int | tuple[int, int]
MID_SHOULDER: _Point = (11, 12)
MID_HIP: _Point = (23, 24)
MID_EAR: _Point = (7, 8)

# (name, start, end, importance)
SEGMENTS: tuple[tuple[str, _Point, _Point, float], ...] = (
    ("torso", MID_HIP, MID_SHOULDER, 1.0),
    ("neck", MID_SHOULDER, 0, 1.0),
    ("face", MID_EAR, 0, 0.5),
    ("shoulders", 12, 11, 0.5),
    ("hips", 24, 23, 0.5),
    ("left_upper_arm", 11, 13, 1.0),
    ("right_upper_arm", 12, 14, 1.0),
    ("left_forearm", 13, 15, 1.0),
    ("right_forearm", 14, 16, 1.0),
    ("left_hand", 15, 19, 0.5),
    ("right_hand", 16, 20, 0.5),
    ("left_reach", MID_SHOULDER, 15, 1.0),
    ("right_reach", MID_SHOULDER, 16, 1.0),
    ("wrists", 16, 15, 0.5),
    ("left_thigh", 23, 25, 0.5),
    ("right_thigh", 24, 26, 0.5),
    ("left_shin", 25, 27, 0.5),
    ("right_shin", 26, 28, 0.5),
    ("left_stance", MID_HIP, 27, 0.5),
    ("right_stance", MID_HIP, 28, 0.5),
)
POSE_DIM: int = len(SEGMENTS) * 2 * len(HARMONICS)

_SWAP = np.asarray(SWAP_LEFT_RIGHT)


def _point(kp: np.ndarray, vis: np.ndarray, p: _Point) -> tuple[np.ndarray, float]:
    if isinstance(p, int):
        return kp[p], float(vis[p])
    a, b = p
    return (kp[a] + kp[b]) / 2.0, float(min(vis[a], vis[b]))


def _arrays(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    kp = np.asarray(pose.keypoints, dtype=np.float64).reshape(-1, 2)
    vis = np.clip(np.asarray(pose.visibility, dtype=np.float64).reshape(-1), 0.0, 1.0)
    if kp.shape[0] != 33 or vis.shape[0] != 33:
        raise ValueError(f"a BlazePose pose has 33 keypoints, got {kp.shape[0]} and {vis.shape[0]}")
    return kp, vis


def _figure_size(kp: np.ndarray, vis: np.ndarray) -> float:
    """Longer side of the box around the keypoints seen with visibility >= 0.5 (all if < 2)."""
    mask = vis >= 0.5
    pts = kp[mask] if mask.sum() >= 2 else kp
    return float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 1e-6))


def mirror_pose(pose: Pose, width: float) -> Pose:
    """The pose as found in the horizontally flipped image (width in pixels): x -> width - x and
    left/right keypoint labels swapped (BlazePose labels the figure's own left and right)."""
    kp, _ = _arrays(pose)
    vis = np.asarray(pose.visibility, dtype=np.float64)
    flipped = kp[_SWAP].copy()
    flipped[:, 0] = width - flipped[:, 0]
    x, y, w, h = pose.box
    return Pose(
        keypoints=tuple((float(px), float(py)) for px, py in flipped),
        visibility=tuple(float(v) for v in vis[_SWAP]),
        box=(float(width - x - w), float(y), float(w), float(h)),
        score=pose.score,
    )


def segment_weights(pose: Pose) -> np.ndarray:
    """Weight of each of SEGMENTS for this pose (before normalisation)."""
    kp, vis = _arrays(pose)
    size = _figure_size(kp, vis)
    out = np.zeros(len(SEGMENTS))
    for i, (_, start, end, importance) in enumerate(SEGMENTS):
        (p0, v0), (p1, v1) = _point(kp, vis, start), _point(kp, vis, end)
        length = float(np.hypot(*(p1 - p0)))
        out[i] = importance * min(v0, v1) * min(1.0, length / (MIN_SEGMENT * size))
    return out


def pose_descriptor(pose: Pose, *, mirror: bool = False) -> np.ndarray:
    """L2-normalised float32 vector of POSE_DIM (all zeros if no segment is visible).

    mirror=True describes the left-right mirror image of the pose (the descriptor does not
    depend on position, so no image width is needed).
    """
    if mirror:
        pose = mirror_pose(pose, 0.0)
    kp, vis = _arrays(pose)
    weights = segment_weights(pose)
    sqrt_c = np.sqrt(np.asarray(HARMONICS))
    orders = np.arange(1, len(HARMONICS) + 1)
    out = np.zeros((len(SEGMENTS), 2 * len(HARMONICS)))
    for i, (_, start, end, _imp) in enumerate(SEGMENTS):
        if weights[i] <= 0.0:
            continue
        (p0, _), (p1, _) = _point(kp, vis, start), _point(kp, vis, end)
        angle = math.atan2(float(p1[1] - p0[1]), float(p1[0] - p0[0]))
        out[i, 0::2] = weights[i] * sqrt_c * np.cos(orders * angle)
        out[i, 1::2] = weights[i] * sqrt_c * np.sin(orders * angle)
    vec = out.reshape(-1)
    norm = float(np.linalg.norm(vec))
    if norm > 0:
        vec = vec / norm
    return vec.astype(np.float32)


def pose_descriptors(poses: Sequence[Pose]) -> np.ndarray:
    """(n, POSE_DIM) float32 matrix of descriptors, ready for a FAISS inner-product index."""
    if not poses:
        return np.zeros((0, POSE_DIM), dtype=np.float32)
    return np.stack([pose_descriptor(p) for p in poses]).astype(np.float32)


def query_descriptors(pose: Pose, mirror: bool = False) -> np.ndarray:
    """(1, POSE_DIM) for a plain search, (2, POSE_DIM) with its mirror image for mirror=True:
    search both and keep, per indexed pose, the higher score."""
    rows = [pose_descriptor(pose)]
    if mirror:
        rows.append(pose_descriptor(pose, mirror=True))
    return np.stack(rows).astype(np.float32)


def pose_similarity(a: Pose, b: Pose, *, mirror: bool = False) -> float:
    """The score an inner-product search gives: descriptor dot product in [-1, 1]; with
    mirror=True the better of `a` as is and `a` mirrored."""
    target = pose_descriptor(b)
    return float(np.max(query_descriptors(a, mirror) @ target))


__all__ = [
    "HARMONICS",
    "LEFT_RIGHT",
    "POSE_DIM",
    "SEGMENTS",
    "mirror_pose",
    "pose_descriptor",
    "pose_descriptors",
    "pose_similarity",
    "query_descriptors",
    "segment_weights",
]
