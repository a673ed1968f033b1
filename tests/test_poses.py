"""Figure pose detection: geometry helpers (fast), generated images and real paintings (models).

The expectations on real paintings were pinned after looking at the skeletons drawn by
`artsim.visualize.overlays.draw_poses` (saved under /tmp while writing these tests): the girl
with a rose (seated, whole figure), the seashells figure (standing, whole figure), and two
multi-figure scenes where People-Art annotates 7 and 5 people.
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from artsim.detectors import poses as P
from artsim.detectors.poses import (
    DEFAULT_MIN_VISIBLE,
    box_iou,
    detect_poses,
    face_region,
    keypoint_box,
    keypoint_similarity,
    roi_from_keypoints,
    same_figure,
    tiles,
)
from artsim.encoders.poses import mirror_pose
from artsim.errors import ArtsimError, ModelUnavailableError
from artsim.records import Face, Pose

GIRL = "peopleart/JPEGImages/Realism/alekos-kontopoulos_girl-with-rose.jpg"
SEASHELLS = "peopleart/JPEGImages/Academicism/albert-joseph-moore_seashells.jpg"
SERGEANT = "peopleart/JPEGImages/Academicism/ernest-meissonier_the-portrait-of-a-sergeant-1874.jpg"
ANKER = "peopleart/JPEGImages/Academicism/albert-anker_b-ckligumpen-1866.jpg"


def person_boxes(data_dir: Path, image_rel: str) -> list[tuple[float, float, float, float]]:
    """People-Art person boxes of an image as (x, y, w, h)."""
    style, name = image_rel.split("/")[-2:]
    root = ET.parse(data_dir / "peopleart" / "Annotations" / style / f"{name}.xml").getroot()
    out = []
    for obj in root.iter("object"):
        if obj.findtext("name") == "person":
            bb = obj.find("bndbox")
            x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            out.append((x0, y0, x1 - x0, y1 - y0))
    return out


def inside_share(pose: Pose, box: tuple[float, float, float, float]) -> float:
    x, y, w, h = box
    pts = [p for p, v in zip(pose.keypoints, pose.visibility, strict=True) if v >= 0.5]
    return sum(x <= px <= x + w and y <= py <= y + h for px, py in pts) / max(1, len(pts))


def load(data_dir: Path, rel: str) -> Image.Image:
    from artsim.images import load_rgb

    return load_rgb(data_dir / rel)


# --------------------------------------------------------------------------- fast: geometry


def test_tiles_cover_the_image_with_overlap() -> None:
    views = tiles(500, 380)
    assert len(views) >= 4
    covered = np.zeros((380, 500), dtype=bool)
    for x0, y0, x1, y1 in views:
        assert 0 <= x0 < x1 <= 500 and 0 <= y0 < y1 <= 380
        assert x1 - x0 == 250
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert tiles(100, 100) == []  # tiles would be under MIN_TILE_SIDE


def test_roi_from_keypoints_upright_and_lying() -> None:
    cx, cy, side, rot = roi_from_keypoints((100, 200), (100, 100))  # body-top straight above
    assert (cx, cy) == (100, 200)
    assert side == pytest.approx(250)
    assert rot == pytest.approx(0.0)
    _, _, _, rot = roi_from_keypoints((100, 200), (200, 200))  # body-top to the right
    assert abs(rot) == pytest.approx(math.pi / 2)


def test_face_region_is_a_body_sized_square_below_the_face() -> None:
    x0, y0, x1, y1 = face_region((100, 50, 20, 24), 1000, 1000)
    assert x1 - x0 == y1 - y0 == 7 * 24
    assert y0 < 50 and y1 > 50 + 5 * 24 and x0 < 110 < x1
    assert face_region((0, 0, 3, 3), 1000, 1000) is None  # too small to hold a figure
    assert face_region((2000, 2000, 40, 40), 1000, 1000) is None  # outside the image


def test_box_helpers_and_duplicate_rule() -> None:
    kp = np.array([[10.0, 10.0], [30.0, 50.0], [500.0, 500.0]])
    vis = np.array([0.9, 0.8, 0.1])
    assert keypoint_box(kp, vis) == (10.0, 10.0, 20.0, 40.0)
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    a = Pose(tuple((float(i), float(2 * i)) for i in range(33)), (0.9,) * 33, (0, 0, 32, 64), 0.9)
    b = Pose(tuple((x + 1, y) for x, y in a.keypoints), a.visibility, (1, 0, 32, 64), 0.5)
    far = Pose(tuple((x + 500, y) for x, y in a.keypoints), a.visibility, (500, 0, 32, 64), 0.5)
    assert keypoint_similarity(a, b) > 0.9 and same_figure(a, b)
    assert keypoint_similarity(a, far) == 0.0 and not same_figure(a, far)


def test_bad_arguments_are_user_errors() -> None:
    im = Image.new("RGB", (64, 64))
    with pytest.raises(ArtsimError, match="strategy"):
        detect_poses(im, strategy="tiles")
    with pytest.raises(ArtsimError, match="min_visible"):
        detect_poses(im, min_visible=40)
    with pytest.raises(ArtsimError, match="min_score"):
        detect_poses(im, min_score=2)
    with pytest.raises(ArtsimError, match="PIL"):
        detect_poses(np.zeros((8, 8, 3), dtype=np.uint8))  # type: ignore[arg-type]


def test_proposals_come_from_whole_tiles_faces_and_grey_copy(monkeypatch) -> None:
    """No model: record which views the person detector is asked to look at."""
    seen: list[tuple[int, int, float, float, bool]] = []

    def fake_detect(arr: np.ndarray, dx: float = 0.0, dy: float = 0.0) -> list:
        grey = bool(np.all(arr[..., 0] == arr[..., 1]))
        seen.append((arr.shape[1], arr.shape[0], dx, dy, grey))
        return [(dx + 10, dy + 10, 50.0, 0.0, 0.5)]  # one proposal per view

    monkeypatch.setattr(P, "_detect_people", fake_detect)
    arr = np.zeros((380, 500, 3), dtype=np.uint8)
    arr[..., 0] = 200  # colourful, so the grey copy is recognisable
    face = Face(box=(300.0, 40.0, 20.0, 24.0), score=0.9, detector="test")
    rois = P._proposals(arr, [face], 1.0)
    n_tiles = len(tiles(500, 380))
    assert len(seen) == 2 * (1 + n_tiles + 1)
    assert sum(g for *_, g in seen) == len(seen) // 2
    assert (500, 380, 0, 0, False) in seen and (500, 380, 0, 0, True) in seen
    x0, y0, x1, y1 = face_region(face.box, 500, 380)
    assert (x1 - x0, y1 - y0, x0, y0, False) in seen
    # the same view at the same place (colour and grey) is merged; best first; deterministic
    assert len(rois) == len({(dx, dy) for _, _, dx, dy, _ in seen})
    assert rois == P._proposals(arr, [face], 1.0)
    assert all(a[4] >= b[4] for a, b in itertools.pairwise(rois))


def test_missing_face_detector_is_not_fatal(monkeypatch) -> None:
    class Broken:
        @staticmethod
        def detect_faces(image: Image.Image, *args, **kwargs) -> list:
            raise ModelUnavailableError("no face model here")

    monkeypatch.setattr(P, "_faces_module", lambda: Broken)
    assert P._find_faces(Image.new("RGB", (10, 10))) == ()
    monkeypatch.setattr(P, "_faces_module", lambda: None)
    assert P._find_faces(Image.new("RGB", (10, 10))) == ()


def test_face_proposals_are_the_ensemble_candidates_without_fallback(monkeypatch) -> None:
    seen: dict = {}

    class Recorder:
        @staticmethod
        def detect_faces(image: Image.Image, detector: str = "default", **kwargs) -> list:
            seen.update(detector=detector, **kwargs)
            return []

    monkeypatch.setattr(P, "_faces_module", lambda: Recorder)
    assert P._find_faces(Image.new("RGB", (10, 10))) == []
    assert seen == {
        "detector": "ensemble",
        "min_score": P.FACE_PROPOSAL_MIN_SCORE,
        "fallback": False,
    }


# --------------------------------------------------------------------------- models, generated images


@pytest.mark.parametrize("kind", ["plain", "noise", "gradient", "tiny"])
def test_no_figure_no_pose(kind: str) -> None:
    rng = np.random.default_rng(0)
    if kind == "plain":
        im = Image.new("RGB", (480, 360), (182, 160, 120))
    elif kind == "noise":
        im = Image.fromarray(rng.integers(0, 256, (360, 480, 3), dtype=np.uint8), "RGB")
    elif kind == "gradient":
        ramp = np.linspace(0, 255, 480, dtype=np.float32)[None, :, None]
        im = Image.fromarray(np.broadcast_to(ramp, (360, 480, 3)).astype(np.uint8), "RGB")
    else:
        im = Image.new("RGB", (3, 2), (0, 0, 0))
    assert detect_poses(im) == []
    assert detect_poses(im, strategy="whole") == []


def test_pictures_too_small_for_a_figure_give_none() -> None:
    # noise at 8-24 px used to come back with invented figures (upscaled tiles)
    from artsim.detectors.poses import MIN_IMAGE_SIDE

    rng = np.random.default_rng(1)
    for w, h in ((8, 8), (MIN_IMAGE_SIDE - 1, 300)):
        im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
        assert detect_poses(im, faces=()) == []


def test_grey_input_is_accepted() -> None:
    assert detect_poses(Image.new("L", (200, 200), 128), faces=()) == []


# --------------------------------------------------------------------------- models, real paintings


@pytest.mark.slow
def test_single_figures(data_dir: Path) -> None:
    for rel in (GIRL, SEASHELLS):
        im = load(data_dir, rel)
        poses = detect_poses(im)
        assert poses, rel
        best = poses[0]
        assert best.score >= 0.8
        assert len(best.keypoints) == len(best.visibility) == 33
        assert sum(v >= 0.5 for v in best.visibility) >= 25
        (box,) = person_boxes(data_dir, rel)
        assert inside_share(best, box) > 0.9
        assert box_iou(best.box, box) > 0.4
        kp = np.asarray(best.keypoints)
        nose, shoulders, hips = kp[0, 1], kp[[11, 12], 1].mean(), kp[[23, 24], 1].mean()
        ankles = kp[[27, 28], 1].mean()
        assert nose < shoulders < hips < ankles  # upright figures, head at the top
        # the stock single-figure run finds the same figure
        (whole,) = detect_poses(im, strategy="whole")
        assert keypoint_similarity(whole, best) > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("rel,at_least", [(SERGEANT, 3), (ANKER, 3)])
def test_several_figures(data_dir: Path, rel: str, at_least: int) -> None:
    im = load(data_dir, rel)
    boxes = person_boxes(data_dir, rel)
    poses = detect_poses(im)
    sure = [p for p in poses if p.score >= 0.5]
    matched = {max(range(len(boxes)), key=lambda i: inside_share(p, boxes[i])) for p in sure}
    assert len(sure) >= at_least
    assert len(matched) >= at_least  # distinct annotated people, not one figure found twice
    assert all(max(inside_share(p, b) for b in boxes) > 0.6 for p in sure)
    assert len(detect_poses(im, strategy="whole")) == 1


@pytest.mark.slow
def test_deterministic_and_in_input_pixels(data_dir: Path) -> None:
    im = load(data_dir, SERGEANT)
    first = detect_poses(im)
    assert detect_poses(im) == first
    # the same painting twice as large: the same figures, keypoints twice as far
    big = im.resize((im.width * 2, im.height * 2), Image.Resampling.BICUBIC)
    scaled = detect_poses(big)
    best = first[0]
    twice = Pose(
        tuple((x * 2, y * 2) for x, y in best.keypoints),
        best.visibility,
        tuple(v * 2 for v in best.box),
        best.score,
    )  # type: ignore[arg-type]
    assert max(keypoint_similarity(twice, p) for p in scaled) > 0.5


@pytest.mark.slow
def test_flipped_painting_gives_mirrored_pose(data_dir: Path) -> None:
    im = load(data_dir, SEASHELLS)
    best = detect_poses(im)[0]
    flipped = detect_poses(ImageOps.mirror(im))
    expected = mirror_pose(best, im.width)
    assert max(keypoint_similarity(expected, p) for p in flipped) > 0.5


@pytest.mark.slow
def test_whole_strategy_is_the_stock_mediapipe_pose(data_dir: Path) -> None:
    """Our graphs (detector + landmarks on its region) reproduce mp.solutions.pose.Pose."""
    im = load(data_dir, GIRL)
    arr = np.ascontiguousarray(np.asarray(im))
    (stock,) = detect_poses(im, strategy="whole")
    rois = [r for r in P._detect_people(arr) if r[4] >= 0.5]
    kp, vis, presence, _ = P._landmarks(arr, rois[0])
    assert presence >= 0.5
    # same figure, same keypoints: within a pixel for most, a few px for uncertain ones (the
    # heatmap refinement amplifies float differences in the region)
    dist = np.linalg.norm(kp - np.asarray(stock.keypoints), axis=1)
    assert np.median(dist) < 1.0
    assert np.percentile(dist, 90) < 6.0
    np.testing.assert_allclose(vis, np.asarray(stock.visibility), atol=0.05)


@pytest.mark.slow
def test_min_visible_filters(data_dir: Path) -> None:
    im = load(data_dir, ANKER)
    loose = detect_poses(im, min_visible=0, faces=())
    strict = detect_poses(im, min_visible=30, faces=())
    assert len(strict) < len(loose)
    assert all(sum(v >= 0.5 for v in p.visibility) >= 30 for p in strict)
    assert all(
        sum(v >= 0.5 for v in p.visibility) >= DEFAULT_MIN_VISIBLE
        for p in detect_poses(im, faces=())
    )
