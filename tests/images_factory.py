"""Generate awkward image files for tests (never third-party images)."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def gradient(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    base = np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2)
    noise = rng.normal(0, 12, size=(h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def write_awkward_set(folder: Path) -> dict[str, Path]:
    """One file per awkward case; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def save(name: str, im: Image.Image, **kw) -> None:
        files[name] = folder / name
        im.save(files[name], **kw)

    save("ok.jpg", gradient(80, 60, 1), quality=90)
    save("cmyk.jpg", gradient(70, 50, 2).convert("CMYK"), quality=90)
    arr16 = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    save("gray16.png", Image.fromarray(arr16))
    rgba = gradient(64, 64, 3).convert("RGBA")
    rgba.putalpha(128)
    save("alpha.png", rgba)
    save("palette.png", gradient(40, 40, 4).convert("P"))
    save("gray.tif", gradient(50, 40, 5).convert("L"))
    save("webp.webp", gradient(50, 40, 6))
    save("bmp.bmp", gradient(30, 20, 7))
    files["empty.jpg"] = folder / "empty.jpg"
    files["empty.jpg"].write_bytes(b"")
    buf = io.BytesIO()
    gradient(200, 200, 8).save(buf, "JPEG", quality=95)
    files["truncated.jpg"] = folder / "truncated.jpg"
    files["truncated.jpg"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    files["corrupt.png"] = folder / "corrupt.png"
    files["corrupt.png"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    files["notes.jpg"] = folder / "notes.jpg"  # text with an image extension
    files["notes.jpg"].write_text("this is not an image\n")
    # a PNG header claiming 20000 x 20000 pixels: a decompression bomb by declaration
    big = Image.new("L", (1, 1))
    buf = io.BytesIO()
    big.save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = (20000).to_bytes(4, "big") + (20000).to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # keep the IHDR checksum valid
    files["bomb.png"] = folder / "bomb.png"
    files["bomb.png"].write_bytes(bytes(data))
    return files


def mosaic(w: int = 128, h: int = 128, seed: int = 0, cells: int = 6) -> Image.Image:
    """A random coloured mosaic: images from different seeds look clearly different."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(cells, cells, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize((w, h), Image.Resampling.NEAREST)
