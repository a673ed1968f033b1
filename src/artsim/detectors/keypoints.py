"""Local features of a painting: RootSIFT keypoints (OpenCV's SIFT, descriptors square-rooted
after L1 normalisation), for the geometric verification of photo queries (issue 13).

The analysis stage (`artsim.analysis`, the ``local`` analysis) runs `extract_local` on the
image it decoded once for every aspect; the catalog stores the result
(`artsim.catalog.local`), and a photo query runs it on the photo (`artsim.search.photo`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from artsim.images import fit_side

# OpenCV's SIFT doubles the image before its first octave, so a 128 px painting makes a
# 256 px pyramid. It was 512 px until 2026-12-01 and 256 px until 2026-12-03; each halving
# cut the aspect's cost 2-3x. At 128 px photos of whole paintings are found as often or
# more (their blur, noise and JPEG wipe out the finer scales), photos of a detail less
# often (docs/photos.md, "The local aspect at 128 px").
LOCAL_SIDE = 128
# a painting whose keypoints are stored is decoded at least this large before it is scaled
# to LOCAL_SIDE: the side the features were chosen at, when the encoder's 260 px decided it.
# Decoded for the encoder's 224 px instead (JPEG draft, then at most 2x), they found 3 fewer
# framed and gallery photos of 159 and 3 fewer of their two-painting photos (docs/photos.md,
# "The encoder at 224 px")
LOCAL_DECODE_SIDE = 260
N_FEATURES = 256
DESC_SCALE = 512.0  # RootSIFT components are <= ~0.5: x512 fills a byte
# a stretched photo noisier than this (grey levels; good light gives 1-2.5 at 640 px) is
# smoothed before SIFT, whose finest octave would otherwise find the noise (measured at 640 px;
# the photo's keypoints are found at 320 px since session 27, where downscaling halves the
# noise, so fewer photos are smoothed; the threshold was not chosen again)
NOISY = 4.0


@dataclass(frozen=True, slots=True)
class LocalFeatures:
    """Keypoints of one image: xy (n, 2) in [0, 1] of its width/height, descriptors (n, 128)
    uint8 (RootSIFT x 512), and the pixel size they were found at."""

    xy: np.ndarray
    desc: np.ndarray
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.desc)

    def unit_desc(self) -> np.ndarray:
        """Descriptors as float32 rows of unit length (RootSIFT: compare by inner product)."""
        d = self.desc.astype(np.float32)
        return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)


def stretch_contrast(gray: np.ndarray, *, clip: float = 0.01, max_gain: float = 4.0) -> np.ndarray:
    """A 2-D uint8 image's grey levels stretched so that its ``clip`` and 1 - ``clip``
    quantiles span 0-255, with a gain of at most ``max_gain`` (> 0): a nearly flat image
    would be mostly noise. (A flat one maps to black, which has no keypoints either way.)"""
    import cv2

    cum = np.bincount(gray.ravel(), minlength=256).cumsum()
    lo = int(np.searchsorted(cum, clip * cum[-1], side="right"))
    hi = int(np.searchsorted(cum, (1.0 - clip) * cum[-1]))
    span = max(hi - lo, 255.0 / max_gain)
    lut = np.clip((np.arange(256) - lo) * (255.0 / span), 0, 255).round().astype(np.uint8)
    return cv2.LUT(gray, lut)


def noise_level(gray: np.ndarray) -> float:
    """The standard deviation of a grey image's noise, in grey levels: the mean absolute
    response to a mask of two Laplacians that cancels smooth content (Immerkaer 1996)."""
    import cv2

    if min(gray.shape[:2]) < 3:
        return 0.0
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = cv2.filter2D(gray.astype(np.float32), -1, mask)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)


def stretch_photo(gray: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """A photo's 2-D uint8 grey stretched (`stretch_contrast`), then smoothed (Gaussian,
    ``sigma`` px) when the stretch leaves it noisier than `NOISY` grey levels: stretched
    high-ISO grain would otherwise be found as keypoints and edges."""
    import cv2

    gray = stretch_contrast(gray)
    if noise_level(gray) > NOISY:
        gray = cv2.GaussianBlur(gray, (0, 0), sigma)
    return gray


def extract_local(
    image: Image.Image,
    *,
    max_side: int = LOCAL_SIDE,
    n_features: int = N_FEATURES,
    stretch: bool = False,
) -> LocalFeatures:
    """RootSIFT keypoints of an RGB image, downscaled to ``max_side`` first.

    stretch: prepare a photo (`stretch_photo`): stretch its contrast, and smooth it
    (Gaussian, sigma 1 px) when it is then noisier than `NOISY`. SIFT's contrast threshold
    is absolute, so a dim, hazy or underexposed photo loses most of its keypoints without
    the stretch, and a high-ISO one spends them on noise (docs/photos.md, "Dim photos and
    the contrast stretch"). The catalog's paintings, reproduced at a museum's exposure, are
    stored as they are."""
    import cv2

    small, _ = fit_side(image, max_side, Image.Resampling.BILINEAR)
    size = small.size
    gray = cv2.cvtColor(np.asarray(small.convert("RGB")), cv2.COLOR_RGB2GRAY)
    if stretch:
        gray = stretch_photo(gray)
    sift = cv2.SIFT_create(nfeatures=n_features)  # type: ignore[attr-defined]  # not in cv2's stubs
    kps, desc = sift.detectAndCompute(gray, None)
    if desc is None or not kps:
        return LocalFeatures(np.zeros((0, 2), np.float16), np.zeros((0, 128), np.uint8), size)
    kps, desc = kps[:n_features], desc[:n_features]
    root = np.sqrt(desc / np.maximum(desc.sum(1, keepdims=True), 1e-6))  # RootSIFT
    q = np.clip(np.rint(root * DESC_SCALE), 0, 255).astype(np.uint8)
    xy = np.array([k.pt for k in kps], np.float32) / np.array(size, np.float32)
    return LocalFeatures(xy.astype(np.float16), q, size)
