"""RootSIFT keypoints of an image (artsim.detectors.keypoints)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from artsim.detectors.keypoints import DESC_SCALE, LocalFeatures, extract_local, stretch_contrast


def _shapes(w: int = 900, h: int = 700, seed: int = 0) -> Image.Image:
    """A picture with corners and blobs for SIFT to find, made here (no third-party images)."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (w, h), (235, 225, 205))
    draw = ImageDraw.Draw(im)
    for _ in range(120):
        x, y = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
        s = int(rng.integers(10, 60))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            draw.rectangle((x, y, x + s, y + s // 2), fill=colour)
        else:
            draw.ellipse((x, y, x + s, y + s), fill=colour)
    return im


def test_features_are_bounded_compact_and_found_at_the_reduced_size():
    f = extract_local(_shapes(), max_side=512, n_features=200)
    assert f.size == (512, 398)  # the longer side brought to max_side, aspect kept
    assert 50 <= len(f) <= 200
    assert f.desc.dtype == np.uint8 and f.desc.shape == (len(f), 128)
    assert f.xy.dtype == np.float16 and f.xy.shape == (len(f), 2)
    assert float(f.xy.min()) >= 0.0 and float(f.xy.max()) <= 1.0  # fractions of the size


def test_descriptors_are_root_sift_scaled_to_a_byte():
    f = extract_local(_shapes(seed=1))
    root = f.desc.astype(np.float32) / DESC_SCALE
    # RootSIFT: square roots of an L1-normalised histogram, so the squares sum to ~1
    assert np.allclose((root**2).sum(axis=1), 1.0, atol=0.08)
    unit = f.unit_desc()
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)


def test_a_small_image_is_not_upscaled_and_a_flat_one_has_no_keypoints():
    small = extract_local(_shapes(300, 200, seed=2), max_side=512)
    assert small.size == (300, 200)
    flat = extract_local(Image.new("RGB", (400, 300), (128, 128, 128)))
    assert isinstance(flat, LocalFeatures) and len(flat) == 0
    assert flat.desc.shape == (0, 128) and flat.xy.shape == (0, 2)


def test_the_same_picture_at_another_size_gives_matching_keypoints():
    im = _shapes(seed=3)
    a = extract_local(im, max_side=512)
    b = extract_local(im.resize((700, 544)), max_side=512)
    sims = a.unit_desc() @ b.unit_desc().T
    nearest = sims.argmax(axis=1)
    close = np.linalg.norm(
        a.xy.astype(np.float32) - b.xy[nearest].astype(np.float32), axis=1
    )  # same place in the picture, as a fraction of its size
    assert np.mean(close < 0.01) > 0.5


def _dim(im: Image.Image) -> Image.Image:
    """The picture as an underexposed photo: a third of the light, darks crushed."""
    a = np.asarray(im, np.float32) / 255.0
    return Image.fromarray(np.round(a**1.6 * 0.3 * 255).astype(np.uint8))


def test_the_stretch_spans_the_grey_range_and_caps_its_gain():
    ramp = np.tile(np.linspace(40, 160, 256).round().astype(np.uint8), (64, 1))
    out = stretch_contrast(ramp)
    assert out.min() == 0 and out.max() == 255  # the 1 % and 99 % quantiles, stretched
    assert np.all(np.diff(out[0].astype(int)) >= 0)  # grey order kept
    nearly_flat = np.tile(np.arange(120, 130, dtype=np.uint8), (32, 10))
    spread = stretch_contrast(nearly_flat)
    assert int(spread.max()) - int(spread.min()) <= 4 * 9 + 1  # at most 4x: not noise x25
    for flat in (np.full((1, 1), 77, np.uint8), np.full((40, 30), 200, np.uint8)):
        assert not stretch_contrast(flat).any()  # nothing to stretch: black, no keypoints


def test_a_dim_photo_keeps_its_keypoints_when_stretched():
    """SIFT's contrast threshold is absolute: an underexposed photo loses most keypoints."""
    im = _shapes(seed=4)
    bright = len(extract_local(im, max_side=640, n_features=5000))
    plain = len(extract_local(_dim(im), max_side=640, n_features=5000))
    stretched = extract_local(_dim(im), max_side=640, n_features=5000, stretch=True)
    assert plain < 0.5 * bright and len(stretched) > 0.8 * bright
    # the same places as in the well-exposed picture
    ref = extract_local(im, max_side=640, n_features=5000, stretch=True)
    nearest = (stretched.unit_desc() @ ref.unit_desc().T).argmax(axis=1)
    close = np.linalg.norm(
        stretched.xy.astype(np.float32) - ref.xy[nearest].astype(np.float32), axis=1
    )
    assert np.mean(close < 0.01) > 0.5


def test_the_noise_level_is_the_noise_not_the_picture():
    import cv2

    from artsim.detectors.keypoints import noise_level

    gray = cv2.cvtColor(np.asarray(_shapes(640, 480, seed=6)), cv2.COLOR_RGB2GRAY)
    assert noise_level(gray) < 2.0  # edges and shapes barely count
    rng = np.random.default_rng(1)
    for sigma in (8.0, 12.0):
        noisy = np.clip(gray + rng.normal(0, sigma, gray.shape), 0, 255).astype(np.uint8)
        assert 0.85 * sigma < noise_level(noisy) < 1.25 * sigma
    assert noise_level(np.zeros((2, 5), np.uint8)) == 0.0  # too small to measure


def test_only_a_noisy_photo_is_smoothed(monkeypatch):
    """High ISO: SIFT's finest octave would find the noise. A photo in good light is not
    touched (its keypoints are those of the stretch alone)."""
    import artsim.detectors.keypoints as kp

    im = _shapes(seed=7)
    a = np.asarray(_dim(im), np.float32)
    grainy = np.random.default_rng(2).normal(0, 8, a.shape)
    noisy = Image.fromarray(np.clip(a + grainy, 0, 255).astype(np.uint8))
    found = [extract_local(x, max_side=640, stretch=True) for x in (im, noisy)]
    monkeypatch.setattr(kp, "NOISY", float("inf"))  # never smooth
    unsmoothed = [extract_local(x, max_side=640, stretch=True) for x in (im, noisy)]
    assert np.array_equal(found[0].desc, unsmoothed[0].desc)
    assert not np.array_equal(found[1].xy, unsmoothed[1].xy)
