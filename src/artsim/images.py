"""Image loading: any file a museum might hand us, turned into an RGB Pillow image.

Handles EXIF orientation, every common mode (L, P, RGBA, CMYK, I;16, F), reduced-size
JPEG decoding through Pillow's draft mode, and refuses decompression bombs before decoding.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from artsim.errors import ImageLoadError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"})
DEFAULT_MAX_PIXELS = 180_000_000  # about 13,400 px square; above this we refuse rather than decode


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """An RGB image and the size of the full, oriented original it was decoded from."""

    image: Image.Image
    original_size: tuple[int, int]

    @property
    def scale(self) -> float:
        """Factor from decoded pixels to original pixels."""
        return self.original_size[0] / max(1, self.image.width)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        hi = float(arr.max()) if arr.size else 0.0
        # 16-bit scans rarely use the whole range: stretch to the actual maximum, never clip
        top = 65535.0 if hi > 255 else 255.0
        top = max(hi, 1.0) if im.mode == "F" else top
        arr8 = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8).convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        # paintings with transparency are shown on white, as a browser would
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if im.mode == "CMYK":
        return im.convert("RGB")
    return im.convert("RGB")


def open_image(
    source: str | Path | bytes,
    *,
    max_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedImage:
    """Decode an image file (path or bytes) to RGB.

    max_side: the side the caller needs. JPEGs are decoded at the smallest DCT scale
    (1/2, 1/4, 1/8) that keeps *both* sides at least this long (so a centre crop of this
    size still has real pixels), and any image is then downsized to at most twice this on
    its long side, keeping the aspect ratio.
    """
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        raise ImageLoadError(f"{name}: cannot open ({exc.strerror or exc})") from exc
    try:
        with fp:
            try:
                im = Image.open(fp)
            except UnidentifiedImageError as exc:
                size = fp.seek(0, io.SEEK_END)
                reason = "empty file" if size == 0 else "not an image Pillow can read"
                raise ImageLoadError(f"{name}: {reason}") from exc
            width, height = im.size
            if width <= 0 or height <= 0:
                raise ImageLoadError(f"{name}: image has no pixels ({width}x{height})")
            if width * height > max_pixels:
                raise ImageLoadError(
                    f"{name}: {width}x{height} = {width * height:,} pixels is over the limit of "
                    f"{max_pixels:,} (possible decompression bomb); raise --max-pixels to allow it"
                )
            orientation = im.getexif().get(0x0112, 1)
            swapped = orientation in (5, 6, 7, 8)
            original = (height, width) if swapped else (width, height)
            if max_side and im.format == "JPEG":
                im.draft(im.mode if im.mode in ("RGB", "L") else None, (max_side, max_side))
            try:
                im.load()
            except (OSError, SyntaxError, ValueError) as exc:
                raise ImageLoadError(f"{name}: corrupt or truncated image data ({exc})") from exc
            im = ImageOps.exif_transpose(im)
            rgb = _to_rgb(im)
            if max_side and max(rgb.size) > 2 * max_side:
                rgb.thumbnail(
                    (2 * max_side, 2 * max_side), Image.Resampling.BILINEAR, reducing_gap=2.0
                )
            return LoadedImage(rgb, original)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"{name}: {exc}") from exc
    except (OSError, ValueError, SyntaxError, MemoryError) as exc:
        raise ImageLoadError(f"{name}: cannot decode ({exc})") from exc


def load_rgb(
    source: str | Path | bytes, *, max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Shortcut for open_image(...).image."""
    return open_image(source, max_side=max_side, max_pixels=max_pixels).image
