"""Query distortions that turn a clean museum image into a "photo of a painting from the web".

Each operation is a pure function ``op(image, rng, **params) -> RGB image`` that draws all
its randomness from the numpy ``Generator`` it is given, so a seed reproduces the output
exactly. ``distort`` applies a chosen set of them in the order a real photo goes through:

1. ``glare``        -- a soft bright reflection on the varnish (on the painting itself);
2. ``crop_or_pad``  -- the photographer's framing: cut into the painting, or show a wall
                       margin around it;
3. ``perspective``  -- the camera is not square to the wall;
4. ``colour_cast``  -- white balance and exposure of the camera;
5. ``blur``         -- focus / hand shake;
6. ``jpeg``         -- heavy compression by the website (quality 30).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

import numpy as np
from PIL import Image, ImageFilter

ALL_OPS: tuple[str, ...] = ("glare", "crop_or_pad", "perspective", "colour_cast", "blur", "jpeg")


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def wall_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A plausible gallery wall: from dark (the deep reds, greens and greys of old-master
    rooms) to near white, slightly tinted."""
    base = rng.uniform(60, 235)
    tint = rng.uniform(-15, 15, size=3)
    return tuple(int(np.clip(base + t, 0, 255)) for t in tint)  # type: ignore[return-value]


def _perspective_coeffs(
    out_corners: np.ndarray, in_corners: np.ndarray
) -> tuple[float, float, float, float, float, float, float, float]:
    """Coefficients (a..h) of PIL's PERSPECTIVE transform mapping output corners to input corners.

    PIL samples input pixel ((ax+by+c)/(gx+hy+1), (dx+ey+f)/(gx+hy+1)) for output (x, y).
    """
    rows = []
    rhs = []
    for (x, y), (u, v) in zip(out_corners, in_corners, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    sol = np.linalg.solve(np.asarray(rows, dtype=np.float64), np.asarray(rhs, dtype=np.float64))
    return tuple(float(c) for c in sol)  # type: ignore[return-value]


def perspective(
    image: Image.Image,
    rng: np.random.Generator,
    *,
    max_offset: float = 0.08,
    fill: tuple[int, int, int] | None = None,
) -> Image.Image:
    """Warp as if photographed off-axis: each corner moves by up to ``max_offset`` of the side.

    Corners move inwards or outwards at random; where the view goes past the painting's
    edge the ``fill`` colour (a random wall colour by default) shows. The size is kept.
    """
    im = _rgb(image)
    w, h = im.size
    fill = wall_colour(rng) if fill is None else fill
    out = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    jitter = rng.uniform(-max_offset, max_offset, size=(4, 2)) * np.array([w, h])
    coeffs = _perspective_coeffs(out, out + jitter)
    return im.transform(
        (w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC, fillcolor=fill
    )


def crop_or_pad(
    image: Image.Image,
    rng: np.random.Generator,
    *,
    p_crop: float = 0.5,
    min_keep: float = 0.8,
    max_pad: float = 0.1,
    fill: tuple[int, int, int] | None = None,
) -> Image.Image:
    """Either crop keeping at least ``min_keep`` of the area, or add a wall margin.

    Crop: width and height fractions are drawn from [sqrt(min_keep), 1], so the kept area
    is >= min_keep, at a random position. Pad: each side gets a margin of 1 % to
    ``max_pad`` of the corresponding dimension in the ``fill`` colour (random wall colour).
    """
    im = _rgb(image)
    w, h = im.size
    if rng.random() < p_crop:
        lo = float(np.sqrt(min_keep))
        cw = max(1, round(w * rng.uniform(lo, 1.0)))
        ch = max(1, round(h * rng.uniform(lo, 1.0)))
        x0 = int(rng.integers(0, w - cw + 1))
        y0 = int(rng.integers(0, h - ch + 1))
        return im.crop((x0, y0, x0 + cw, y0 + ch))
    fill = wall_colour(rng) if fill is None else fill
    left, right = (round(w * f) for f in rng.uniform(0.01, max_pad, size=2))
    top, bottom = (round(h * f) for f in rng.uniform(0.01, max_pad, size=2))
    canvas = Image.new("RGB", (w + left + right, h + top + bottom), fill)
    canvas.paste(im, (left, top))
    return canvas


def colour_cast(
    image: Image.Image,
    rng: np.random.Generator,
    *,
    strength: float = 0.12,
    max_brightness: float = 0.08,
    contrast: tuple[float, float] = (0.85, 1.1),
) -> Image.Image:
    """Camera white balance and exposure: per-channel gains, a brightness shift, a contrast change."""
    im = _rgb(image)
    arr = np.asarray(im, dtype=np.float32)
    gains = 1.0 + rng.uniform(-strength, strength, size=3).astype(np.float32)
    shift = np.float32(rng.uniform(-max_brightness, max_brightness) * 255.0)
    factor = np.float32(rng.uniform(*contrast))
    mean = arr.mean(axis=(0, 1), keepdims=True)
    arr = (arr - mean) * factor + mean
    arr = arr * gains + shift
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


def blur(
    image: Image.Image, rng: np.random.Generator, *, radius: tuple[float, float] = (1.0, 2.0)
) -> Image.Image:
    """Gaussian blur with a radius drawn from ``radius`` (in pixels of this image)."""
    r = float(rng.uniform(*radius))
    return _rgb(image).filter(ImageFilter.GaussianBlur(r))


def jpeg(
    image: Image.Image, rng: np.random.Generator | None = None, *, quality: int = 30
) -> Image.Image:
    """Encode and decode as JPEG in memory (deterministic; ``rng`` is unused)."""
    buf = io.BytesIO()
    _rgb(image).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def glare(
    image: Image.Image,
    rng: np.random.Generator,
    *,
    size: tuple[float, float] = (0.08, 0.25),
    strength: tuple[float, float] = (0.3, 0.6),
) -> Image.Image:
    """A soft bright elliptical reflection: pixels blend towards white under a Gaussian blob.

    The blob's semi-axes are ``size`` fractions of the shorter side, its peak blend factor
    is drawn from ``strength``; centre and rotation are random within the image.
    """
    im = _rgb(image)
    w, h = im.size
    side = min(w, h)
    cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
    ax, ay = rng.uniform(*size, size=2) * side
    angle = rng.uniform(0, np.pi)
    peak = rng.uniform(*strength)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xs - cx, ys - cy
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    mask = (peak * np.exp(-0.5 * ((u / ax) ** 2 + (v / ay) ** 2))).astype(np.float32)[..., None]
    arr = np.asarray(im, dtype=np.float32)
    arr = arr + mask * (255.0 - arr)
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


OPS: dict[str, Callable[..., Image.Image]] = {
    "glare": glare,
    "crop_or_pad": crop_or_pad,
    "perspective": perspective,
    "colour_cast": colour_cast,
    "blur": blur,
    "jpeg": jpeg,
}


def distort(
    image: Image.Image, rng: np.random.Generator, *, ops: Iterable[str] = ALL_OPS
) -> Image.Image:
    """Apply the chosen operations in the realistic order of ``ALL_OPS`` (the order given is
    ignored). Crop/pad and perspective share one wall colour. Unknown names raise ValueError.
    """
    chosen = set(ops)
    unknown = chosen - set(ALL_OPS)
    if unknown:
        raise ValueError(
            f"unknown distortion(s) {', '.join(sorted(unknown))}; choose from {', '.join(ALL_OPS)}"
        )
    im = _rgb(image)
    wall = wall_colour(rng)
    for name in ALL_OPS:
        if name not in chosen:
            continue
        if name in ("crop_or_pad", "perspective"):
            im = OPS[name](im, rng, fill=wall)
        else:
            im = OPS[name](im, rng)
    return im
