"""Finding paintings in photos: synthetic gallery photos made here (generated paintings,
framed, hung on a textured wall, turned and in perspective), with known corners."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from artsim.detectors.paintings import (
    PhotoTooSmallError,
    find_paintings,
    order_corners,
    rectify,
)
from artsim.evaluation.distort import framed_photo, wall


def generated_painting(seed: int, w: int = 420, h: int = 320) -> Image.Image:
    """A 'painting': a soft gradient ground with random coloured shapes on it."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 200, 3) + 40 * np.stack([xs / w, ys / h, 1 - xs / w], -1)
    im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(25):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(8, 50)
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            d.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=colour)
        else:
            d.polygon([(x0, y0), (x0 + r, y0 + r / 2), (x0 - r / 3, y0 + r)], fill=colour)
    return im


def corner_error(found, truth) -> float:
    """Largest corner distance, relative to the true quad's diagonal."""
    f, t = np.asarray(found), np.asarray(truth)
    return float(np.linalg.norm(f - t, axis=1).max() / np.linalg.norm(t[2] - t[0]))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_picture_inside_its_frame_is_found(seed: int) -> None:
    rng = np.random.default_rng(seed)
    photo = framed_photo([generated_painting(seed)], rng)
    regions = find_paintings(photo.image)
    assert regions, "no painting found"
    best = min(corner_error(r.quad, photo.quads[0]) for r in regions)
    assert best < 0.06  # within 6 % of the diagonal: the picture, not the frame's outer edge


def test_two_paintings_side_by_side_are_both_found() -> None:
    rng = np.random.default_rng(7)
    photo = framed_photo(
        [generated_painting(10), generated_painting(11)], rng, cover=(0.6, 0.8), long_side=800
    )
    regions = find_paintings(photo.image)
    for truth in photo.quads:
        assert min(corner_error(r.quad, truth) for r in regions) < 0.06


def test_a_picture_off_centre_on_a_screen_is_searched_beside_the_screen() -> None:
    # a web page on a screen: the picture sits on the left beside text, so it is not the
    # centred picture of a frame; it follows the screen as a region of its own (before,
    # only the screen was found: in 40 such photos 2 times before, 23 now)
    from artsim.evaluation.distort import screen_photo

    found = 0
    for seed in range(12):
        shot = screen_photo([generated_painting(seed)], np.random.default_rng(seed))
        regions = find_paintings(shot.image, max_paintings=3)
        found += any(corner_error(r.quad, shot.quads[0]) < 0.06 for r in regions)
    assert found >= 4


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def test_a_page_inside_a_bezel_gives_its_picture_after_every_painting() -> None:
    from artsim.detectors.paintings import select_paintings

    bezel, display = _rect(0, 0, 1000, 600), _rect(30, 30, 970, 570)
    picture = _rect(60, 80, 500, 480)  # off-centre on the display, beside text
    found = select_paintings([(bezel, 1.0), (display, 1.0), (picture, 1.0)])
    assert [q.tolist() for q, _ in found] == [display.tolist(), picture.tolist()]
    # a frame with a panel, and two more paintings: the panel never takes a painting's slot
    frame, panel = _rect(0, 0, 400, 300), _rect(20, 20, 150, 200)
    p2, p3 = _rect(500, 0, 800, 250), _rect(900, 0, 1150, 240)
    found = select_paintings([(frame, 1.0), (panel, 1.0), (p2, 1.0), (p3, 1.0)], max_paintings=3)
    assert [q.tolist() for q, _ in found] == [frame.tolist(), p2.tolist(), p3.tolist()]
    found = select_paintings([(frame, 1.0), (panel, 1.0), (p2, 1.0)], max_paintings=3)
    assert [q.tolist() for q, _ in found] == [frame.tolist(), p2.tolist(), panel.tolist()]


def test_rectified_view_is_upright_and_sized_by_the_quad() -> None:
    im = generated_painting(3, 300, 200)
    quad = np.array([[0, 0], [300, 0], [300, 200], [0, 200]], np.float64)
    out = rectify(im, quad, max_side=512)
    assert out.size == (300, 200)
    diff = np.abs(np.asarray(out, np.float32) - np.asarray(im, np.float32)).mean()
    assert diff < 3


def test_a_bare_wall_has_no_painting() -> None:
    rng = np.random.default_rng(5)
    blank = Image.fromarray(wall(rng, 640, 480).astype(np.uint8))
    assert find_paintings(blank) == []


def test_a_tiny_photo_is_refused_with_a_clear_message() -> None:
    with pytest.raises(PhotoTooSmallError, match="at least 64 px"):
        find_paintings(Image.new("RGB", (50, 300)))


def test_corners_are_ordered_clockwise_from_top_left() -> None:
    pts = np.array([[10, 90], [100, 5], [0, 0], [95, 100]], np.float64)
    assert order_corners(pts).tolist() == [[0, 0], [100, 5], [95, 100], [10, 90]]
