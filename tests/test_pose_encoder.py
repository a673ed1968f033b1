"""Pose descriptor: invariances (hypothesis, synthetic skeletons), visibility weighting, search."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artsim.encoders.poses import (
    LEFT_RIGHT,
    POSE_DIM,
    mirror_pose,
    pose_descriptor,
    pose_descriptors,
    pose_similarity,
    query_descriptors,
)
from artsim.records import Pose

LEGS = (25, 26, 27, 28, 29, 30, 31, 32)


def _dir(angle_deg: float, length: float) -> np.ndarray:
    """A vector of `length` pointing `angle_deg` clockwise from straight down (image y is down)."""
    a = math.radians(angle_deg)
    return np.array([-math.sin(a) * length, math.cos(a) * length])


def skeleton(
    *,
    lean: float = 0.0,
    head: float = 0.0,
    l_arm: tuple[float, float] = (-15.0, -10.0),
    r_arm: tuple[float, float] = (15.0, 10.0),
    l_leg: tuple[float, float] = (-5.0, 0.0),
    r_leg: tuple[float, float] = (5.0, 0.0),
    visibility: float = 0.99,
) -> Pose:
    """A frontal BlazePose skeleton (figure's left on the image's right), torso 100 px.

    Angles in degrees: 0 = hanging straight down; positive turns towards the image's left.
    """
    kp = np.zeros((33, 2))
    hip = np.array([200.0, 300.0])
    up = -_dir(lean, 100.0)  # mid-shoulder relative to mid-hip
    side = np.array([-up[1], up[0]]) / 100.0  # unit vector towards the image's right (upright)
    mid_sh = hip + up
    kp[11], kp[12] = mid_sh + 22 * side, mid_sh - 22 * side
    kp[23], kp[24] = hip + 15 * side, hip - 15 * side
    for shoulder, elbow, wrist, (ua, fa), hand in (
        (11, 13, 15, l_arm, (17, 19, 21)),
        (12, 14, 16, r_arm, (18, 20, 22)),
    ):
        kp[elbow] = kp[shoulder] + _dir(ua, 55)
        kp[wrist] = kp[elbow] + _dir(fa, 50)
        for j, h in enumerate(hand):
            kp[h] = kp[wrist] + _dir(fa + (j - 1) * 15, 12)
    for hp, knee, ankle, (th, sh), heel, toe in (
        (23, 25, 27, l_leg, 29, 31),
        (24, 26, 28, r_leg, 30, 32),
    ):
        kp[knee] = kp[hp] + _dir(th, 80)
        kp[ankle] = kp[knee] + _dir(sh, 80)
        kp[heel] = kp[ankle] + _dir(sh, 8)
        kp[toe] = kp[ankle] + _dir(sh - 90 if hp == 23 else sh + 90, 15)
    nose = mid_sh + (-_dir(lean + head, 45))
    kp[0] = nose
    for i, dx in zip((1, 2, 3, 4, 5, 6), (4, 7, 10, -4, -7, -10), strict=True):
        kp[i] = nose + np.array([dx, -6.0])
    kp[7], kp[8] = nose + np.array([14.0, -3.0]), nose + np.array([-14.0, -3.0])
    kp[9], kp[10] = nose + np.array([5.0, 8.0]), nose + np.array([-5.0, 8.0])
    vis = np.full(33, visibility)
    x0, y0 = kp.min(axis=0)
    x1, y1 = kp.max(axis=0)
    return Pose(
        keypoints=tuple((float(x), float(y)) for x, y in kp),
        visibility=tuple(float(v) for v in vis),
        box=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
        score=0.9,
    )


def transformed(pose: Pose, scale: float, dx: float, dy: float) -> Pose:
    x, y, w, h = pose.box
    return Pose(
        keypoints=tuple((px * scale + dx, py * scale + dy) for px, py in pose.keypoints),
        visibility=pose.visibility,
        box=(x * scale + dx, y * scale + dy, w * scale, h * scale),
        score=pose.score,
    )


def without(pose: Pose, indices: tuple[int, ...]) -> Pose:
    vis = list(pose.visibility)
    for i in indices:
        vis[i] = 0.02
    return Pose(pose.keypoints, tuple(vis), pose.box, pose.score)


angle = st.floats(min_value=-170, max_value=170, allow_nan=False)
small = st.floats(min_value=-30, max_value=30, allow_nan=False)
poses = st.builds(
    skeleton,
    lean=small,
    head=small,
    l_arm=st.tuples(angle, angle),
    r_arm=st.tuples(angle, angle),
    l_leg=st.tuples(small, small),
    r_leg=st.tuples(small, small),
)


def test_shape_norm_dtype() -> None:
    d = pose_descriptor(skeleton())
    assert d.shape == (POSE_DIM,)
    assert d.dtype == np.float32
    assert abs(float(np.linalg.norm(d)) - 1.0) < 1e-5
    assert pose_descriptors([]).shape == (0, POSE_DIM)
    assert pose_descriptors([skeleton(), skeleton(lean=20)]).shape == (2, POSE_DIM)


@settings(max_examples=60, deadline=None)
@given(
    pose=poses,
    scale=st.floats(min_value=0.05, max_value=20),
    dx=st.floats(min_value=-5000, max_value=5000),
    dy=st.floats(min_value=-5000, max_value=5000),
)
def test_translation_and_scale_invariant(pose: Pose, scale: float, dx: float, dy: float) -> None:
    a = pose_descriptor(pose)
    b = pose_descriptor(transformed(pose, scale, dx, dy))
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert pose_similarity(pose, transformed(pose, scale, dx, dy)) > 0.9999


@settings(max_examples=60, deadline=None)
@given(pose=poses, width=st.floats(min_value=10, max_value=4000))
def test_mirror_search_matches_flipped_pose(pose: Pose, width: float) -> None:
    flipped = mirror_pose(pose, width)
    assert pose_similarity(flipped, pose, mirror=True) > 0.9999
    assert pose_similarity(pose, flipped, mirror=True) > 0.9999
    # mirroring twice is the identity
    back = mirror_pose(flipped, width)
    np.testing.assert_allclose(np.asarray(back.keypoints), np.asarray(pose.keypoints), atol=1e-9)
    assert back.box == pytest.approx(pose.box)


def test_mirror_matters_without_mirror_search() -> None:
    # right arm raised, left arm down: its mirror image raises the other arm
    pose = skeleton(r_arm=(150, 170), l_arm=(-10, -5))
    flipped = mirror_pose(pose, 400)
    assert pose_similarity(flipped, pose) < 0.7
    assert pose_similarity(flipped, pose, mirror=True) > 0.9999


def test_mirror_pose_swaps_labels() -> None:
    pose = skeleton()
    flipped = mirror_pose(pose, 400)
    for left, right in LEFT_RIGHT:
        assert flipped.keypoints[left][0] == pytest.approx(400 - pose.keypoints[right][0])
        assert flipped.keypoints[left][1] == pytest.approx(pose.keypoints[right][1])


@settings(max_examples=40, deadline=None)
@given(pose=poses)
def test_missing_legs_count_little(pose: Pose) -> None:
    """A half-length figure (legs invisible) still matches the same full-length pose well."""
    assert pose_similarity(pose, without(pose, LEGS)) > 0.85


def test_missing_legs_count_less_than_a_different_gesture() -> None:
    standing = skeleton()
    half_length = without(standing, LEGS)
    arm_raised = skeleton(r_arm=(160, 175))
    assert pose_similarity(standing, half_length) > 0.85
    assert pose_similarity(standing, arm_raised) < pose_similarity(standing, half_length) - 0.1
    # legs that are seen and different do count
    kneeling = skeleton(l_leg=(-80, 10), r_leg=(80, -10))
    assert pose_similarity(standing, kneeling) < pose_similarity(standing, half_length)


def test_similar_poses_rank_above_different_ones() -> None:
    query = skeleton(r_arm=(120, 140))
    near = skeleton(r_arm=(110, 130), lean=5)
    far = skeleton(r_arm=(-20, -10), l_arm=(120, 150))
    reclining = skeleton(lean=90)
    assert pose_similarity(query, near) > pose_similarity(query, far)
    assert pose_similarity(query, near) > pose_similarity(query, reclining)


def test_invisible_pose_gives_zero_vector() -> None:
    blank = skeleton(visibility=0.0)
    assert not np.any(pose_descriptor(blank))
    assert pose_similarity(blank, skeleton()) == 0.0


def test_query_descriptors_and_inner_product_search() -> None:
    faiss = pytest.importorskip("faiss")
    gallery = [skeleton(r_arm=(a, a + 10)) for a in range(-60, 180, 20)]
    index = faiss.IndexFlatIP(POSE_DIM)
    index.add(pose_descriptors(gallery))
    query = mirror_pose(gallery[5], 400)
    q1, q2 = query_descriptors(query, False), query_descriptors(query, True)
    assert q1.shape == (1, POSE_DIM) and q2.shape == (2, POSE_DIM)
    scores, ids = index.search(q2, 1)
    best = int(ids[int(np.argmax(scores[:, 0])), 0])
    assert best == 5
    # the index scores are exactly pose_similarity
    s, i = index.search(q1, len(gallery))
    for score, j in zip(s[0], i[0], strict=True):
        assert score == pytest.approx(pose_similarity(query, gallery[j]), abs=1e-5)


def test_wrong_number_of_keypoints_is_an_error() -> None:
    bad = Pose(keypoints=((0.0, 0.0),) * 17, visibility=(1.0,) * 17, box=(0, 0, 1, 1), score=1.0)
    with pytest.raises(ValueError, match="33"):
        pose_descriptor(bad)
