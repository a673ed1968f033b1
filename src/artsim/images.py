"""Image loading: any file a museum might hand us, turned into an RGB Pillow image.

Reads JPEG, PNG, TIFF, WebP, BMP, AVIF and the HEIC/HEIF photos phones take (through
pillow-heif). Handles EXIF orientation, every common mode (L, P, RGBA, CMYK, I;16, F; 12-
and 16-bit stretched to their actual maximum), reduced-size JPEG decoding through Pillow's
draft mode, other formats box-reduced in their own mode as soon as they are decoded (so a
huge PNG is in memory once, not once per conversion), and refuses decompression bombs before
decoding.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

from artsim.errors import ImageLoadError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".avif", ".heic", ".heif", ".hif"}
)
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


_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
# EXIF orientation -> the transpose that undoes it (as ImageOps.exif_transpose does)
_ORIENT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# The formats open_image decodes, as Pillow's plugin registry names them
_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "AVIF", "HEIF")
# the ftyp brands of HEIF files (an ISO media box at byte 4): HEVC-coded (HEIC, phones'
# photos), and the generic image brands HEIC and AVIF files both carry
_HEIC_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs")
_HEIF_BRANDS = (*_HEIC_BRANDS, b"mif1", b"msf1")


@functools.cache
def register_heif() -> bool:
    """Teach Pillow to open HEIC/HEIF, the photo format of iPhones and many Android phones,
    through pillow-heif (once a process; Pillow's plugin registry is process-wide). pillow-heif
    applies the file's rotation while decoding and resets its EXIF orientation to 1, so
    photos are never turned twice. Pillow's own plugins are registered first, so that its
    AVIF reader keeps AVIF files (pillow-heif's wheels decode no AV1); thumbnails, depth
    and auxiliary images are left unparsed (less code reading untrusted uploads). False
    when pillow-heif is not installed or does not load."""
    Image.init()
    try:
        from pillow_heif import register_heif_opener

        register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
    except (ImportError, OSError):  # missing, or its compiled part does not load
        return False
    return True


def looks_like_heif(head: bytes) -> bool:
    """Whether a file's first bytes are those of a HEIF image (HEIC photos; AVIF too)."""
    return head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def _heif_reason(head: bytes, readable: bool) -> str:
    """Why a HEIF-looking file did not open, and what to do."""
    kind = "HEIC" if head[8:12] in _HEIC_BRANDS else "HEIF (HEIC or AVIF)"
    if readable:
        return f"corrupt or truncated {kind} image"
    return f"a {kind} image, and pillow-heif is not installed: pip install pillow-heif"


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im
    if im.mode in _SIXTEEN_BIT:
        arr = np.asarray(im, dtype=np.float32)
        hi = float(arr.max()) if arr.size else 0.0
        # 12- and 16-bit scans rarely use the whole range (a 12-bit scan in a 16-bit file
        # tops out at 4095): stretch to the actual maximum, never clip; 8-bit values stay
        top = max(hi, 1.0) if im.mode == "F" or hi > 255 else 255.0
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
    return im.convert("RGB")


def fit_side(
    image: Image.Image,
    max_side: int,
    resample: Image.Resampling = Image.Resampling.BICUBIC,
    *,
    reducing_gap: float | None = None,
) -> tuple[Image.Image, float]:
    """``image`` downscaled so that its long side is at most ``max_side`` px (each side
    rounded, at least 1 px), and the factor it was scaled by; ``image`` itself and 1.0 when
    it fits. The filter is the caller's: each stage chose its own."""
    scale = min(1.0, max_side / max(image.size))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, resample, reducing_gap=reducing_gap), scale


def _shrink_decoded(im: Image.Image, max_side: int) -> Image.Image:
    """Box-reduce a freshly decoded image in its own mode, before any converted copy is made.

    PNG, TIFF and WebP cannot be decoded at reduced size, so a 13000 x 13000 PNG is whole in
    memory once; converting or transposing it first would make more full-size copies. The
    factor leaves at least 4 * max_side on the long side, as thumbnail(reducing_gap=2) would."""
    factor = max(im.size) // (4 * max_side)
    if factor < 2:
        return im
    if im.mode in ("1", "P") or im.mode.startswith("I;16"):
        im = im.convert("L" if im.mode == "1" else "I" if im.mode.startswith("I;16") else "RGBA")
    # in strips: reduce() converts RGBA and LA to premultiplied alpha first, a full-size copy
    width, height = im.size
    step = factor * 64
    try:
        out = Image.new(im.mode, (-(-width // factor), -(-height // factor)))
        for top in range(0, height, step):
            strip = im.crop((0, top, width, min(height, top + step)))
            out.paste(strip.reduce(factor), (0, top // factor))
    except ValueError:  # a mode reduce() does not take: thumbnail() below still shrinks it
        return im
    out.info = im.info
    return out


def open_image(
    source: str | Path | bytes,
    *,
    max_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedImage:
    """Decode an image file (path or bytes) to RGB.

    max_side: the side the caller needs. JPEGs are decoded at the smallest DCT scale
    (1/2, 1/4, 1/8) that keeps *both* sides at least this long (so a centre crop of this
    size still has real pixels), other formats are box-reduced right after decoding, and any
    image is then downsized to at most twice this on its long side, keeping the aspect ratio.
    max_pixels: images with more pixels are refused before decoding. It governs on its own:
    when Pillow's process-wide cap (it refuses over twice Image.MAX_IMAGE_PIXELS) fires first,
    the image is opened again by its format's own opener, which does not consult that cap.
    Image.MAX_IMAGE_PIXELS is never changed: other threads may be decoding with it.
    """
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        return _open(source, name, max_side, max_pixels)
    except Image.DecompressionBombError:
        pass
    # Pillow's own cap fired first: open it past that cap, so our max_pixels check decides
    try:
        return _open(source, name, max_side, max_pixels, past_pillow_cap=True)
    except Image.DecompressionBombError as exc:  # a TIFF's tiles are checked on load
        raise ImageLoadError(
            f"{name}: over Pillow's own limit of {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels "
            "(a TIFF, or an extremely wide image); `artsim index --max-pixels` raises it"
        ) from exc


def allow_pixels(max_pixels: int) -> None:
    """Raise Pillow's process-wide pixel cap so that images up to max_pixels decode (never
    lowered). Only TIFF needs it: Pillow checks a TIFF's tiles against that cap when it loads
    them, whatever opened the file. Call it once at start-up, before threads decode (the CLI's
    `index --max-pixels` does): changing it mid-run would lift Pillow's check for every thread."""
    cap = Image.MAX_IMAGE_PIXELS
    if cap is not None and max_pixels > 2 * cap:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _open_past_pillow_cap(fp: IO[bytes]) -> Image.Image:
    """Image.open without its process-wide decompression-bomb check (the caller checks the
    size against its own max_pixels next). Pillow has no per-call cap, and raising the global
    one, even briefly under a lock, would lift it for every other thread decoding meanwhile;
    so this picks the format's opener from Pillow's registry the way Image.open does."""
    Image.init()
    prefix = fp.read(16)
    for fmt in _FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if factory is None or (accept is not None and not accept(prefix)):
            continue
        fp.seek(0)
        try:
            return factory(fp, "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    raise UnidentifiedImageError("over Pillow's pixel cap, and not a format artsim decodes")


def _open_regular_file(path: str | Path) -> io.BufferedReader:
    """open(path, "rb"), refusing anything but a regular file: a FIFO named like an image
    would block the open (and the run) forever, and /dev/zero or /dev/urandom never end."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never waits on a FIFO
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a pipe, socket or device"
            raise OSError(errno.EINVAL, f"not a regular file ({kind})")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _open(
    source: str | Path | bytes,
    name: str,
    max_side: int | None,
    max_pixels: int,
    *,
    past_pillow_cap: bool = False,
) -> LoadedImage:
    heif = register_heif()
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else _open_regular_file(source)
    except OSError as exc:
        raise ImageLoadError(f"{name}: cannot open ({exc.strerror or exc})") from exc
    except ValueError as exc:  # a NUL character in the path
        raise ImageLoadError(f"{name!r}: not a valid file path ({exc})") from exc
    try:
        with fp:
            try:
                im = _open_past_pillow_cap(fp) if past_pillow_cap else Image.open(fp)
            except UnidentifiedImageError as exc:
                size = fp.seek(0, io.SEEK_END)
                fp.seek(0)
                if size == 0:
                    reason = "empty file"
                elif looks_like_heif(head := fp.read(16)):
                    reason = _heif_reason(head, heif)
                else:
                    reason = "not an image Pillow can read"
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
            except (OSError, SyntaxError, ValueError, RuntimeError) as exc:  # RuntimeError: libheif
                raise ImageLoadError(f"{name}: corrupt or truncated image data ({exc})") from exc
            if max_side:
                im = _shrink_decoded(im, max_side)
            if orientation in _ORIENT:
                im = im.transpose(_ORIENT[orientation])
            rgb = _to_rgb(im)
            del im  # the full-size decode can go before the resize below allocates
            if max_side and max(rgb.size) > 2 * max_side:
                rgb.thumbnail(
                    (2 * max_side, 2 * max_side), Image.Resampling.BILINEAR, reducing_gap=2.0
                )
            return LoadedImage(rgb, original)
    except (ImageLoadError, Image.DecompressionBombError):
        raise
    except (OSError, ValueError, SyntaxError, MemoryError, RuntimeError) as exc:
        raise ImageLoadError(f"{name}: cannot decode ({exc})") from exc


def load_rgb(
    source: str | Path | bytes, *, max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Shortcut for open_image(...).image."""
    return open_image(source, max_side=max_side, max_pixels=max_pixels).image
