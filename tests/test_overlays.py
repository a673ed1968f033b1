"""Overlays: skeletons and boxes drawn on copies of the image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from artsim.records import Pose
from artsim.visualize.overlays import (
    draw_boxes,
    draw_poses,
    line_width,
    pose_connections,
)


def figure(visibility: float = 0.9, dx: float = 0.0) -> Pose:
    # a crude standing figure in a 200 x 300 image: a column of keypoints with arms out
    kp = [(100.0 + dx, 40.0)] * 11
    kp += [(80.0 + dx, 80.0), (120.0 + dx, 80.0), (60.0 + dx, 120.0), (140.0 + dx, 120.0)]
    kp += [(50.0 + dx, 160.0), (150.0 + dx, 160.0)] + [(50.0 + dx, 165.0), (150.0 + dx, 165.0)] * 3
    kp += [(90.0 + dx, 170.0), (110.0 + dx, 170.0), (90.0 + dx, 230.0), (110.0 + dx, 230.0)]
    kp += [(90.0 + dx, 280.0), (110.0 + dx, 280.0)] * 3
    assert len(kp) == 33
    return Pose(
        keypoints=tuple(kp),
        visibility=(visibility,) * 33,
        box=(50.0 + dx, 40.0, 100.0, 240.0),
        score=0.9,
    )


def plain(mode: str = "RGB", size: tuple[int, int] = (200, 300)) -> Image.Image:
    return Image.new(mode, size, 40 if mode == "L" else (40, 40, 40))


def changed(a: Image.Image, b: Image.Image) -> int:
    return int(np.any(np.asarray(a.convert("RGB")) != np.asarray(b.convert("RGB")), axis=2).sum())


def test_connections_are_blazepose_skeleton() -> None:
    conns = pose_connections()
    assert len(conns) == 35
    assert (11, 12) in conns and (23, 24) in conns
    assert all(0 <= a < 33 and 0 <= b < 33 for a, b in conns)


def test_draw_poses_returns_new_rgb_image() -> None:
    base = plain()
    before = np.asarray(base).copy()
    out = draw_poses(base, [figure(), figure(dx=20)])
    assert out is not base
    assert out.mode == "RGB" and out.size == base.size
    assert changed(base, out) > 500  # limbs and joints were drawn
    np.testing.assert_array_equal(np.asarray(base), before)  # input untouched


def test_draw_poses_labels_each_figure_in_its_colour() -> None:
    base = plain()
    plain_drawing = draw_poses(base, [figure()], color=(255, 0, 0))
    labelled = draw_poses(base, [figure()], labels=["0"], color=(255, 0, 0))
    diff = np.any(np.asarray(plain_drawing) != np.asarray(labelled), axis=2)
    assert diff.sum() > 20  # the number and its backing were written...
    top = min(y for _, y in figure().keypoints)
    assert np.flatnonzero(diff.any(axis=1)).max() <= top  # ...above the skeleton
    assert np.any(np.all(np.asarray(labelled) == (255, 0, 0), axis=2) & diff)  # in its colour
    # a figure entirely outside the picture gets no label
    away = Pose(
        tuple((x + 5000, y) for x, y in figure().keypoints), figure().visibility, (0, 0, 1, 1), 1.0
    )
    assert changed(base, draw_poses(base, [away], labels=["9"])) == 0
    with pytest.raises(ValueError, match="1 poses but 2 labels"):
        draw_poses(base, [figure()], labels=["0", "1"])


def test_draw_poses_skips_unconfident_keypoints() -> None:
    base = plain()
    assert changed(base, draw_poses(base, [figure(visibility=0.1)])) == 0
    assert changed(base, draw_poses(base, [])) == 0


def test_draw_poses_colour_and_grey_input() -> None:
    out = draw_poses(plain("L"), [figure()], color=(255, 0, 0))
    assert out.mode == "RGB"
    arr = np.asarray(out)
    assert np.any(np.all(arr == (255, 0, 0), axis=2))


def test_draw_boxes_with_labels() -> None:
    base = plain()
    out = draw_boxes(base, [(20, 30, 60, 50), (100, 150, 40, 40)], labels=["0.93", "face"])
    assert out.size == base.size and out.mode == "RGB"
    assert changed(base, out) > 300
    arr = np.asarray(out)
    assert tuple(arr[30, 50]) != (40, 40, 40)  # top edge of the first box
    assert tuple(arr[55, 50]) == (40, 40, 40)  # inside the box: untouched
    with pytest.raises(ValueError, match="labels"):
        draw_boxes(base, [(0, 0, 10, 10)], labels=["a", "b"])


def test_line_width_scales_with_image() -> None:
    assert line_width(plain(size=(100, 100))) == 2
    assert line_width(plain(size=(3000, 2000))) > 10
    small = changed(
        plain(size=(400, 400)), draw_boxes(plain(size=(400, 400)), [(50, 50, 300, 300)])
    )
    big = changed(
        plain(size=(1600, 1600)), draw_boxes(plain(size=(1600, 1600)), [(200, 200, 1200, 1200)])
    )
    assert big > 4 * small  # 4x the perimeter and thicker lines
