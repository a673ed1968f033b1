"""Contact sheets: one PNG showing a query and its best matches, with titles, scores, and the
matched face boxes or figure skeletons drawn on the paintings.

Also the thumbnail cache shared with the web server and the collection map:
CATALOG/cache/thumbs/<size>/<sha256>.jpg, named by a hash of the item id and its image path,
never by anything a user typed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from artsim.catalog.store import writer_tag
from artsim.errors import ArtsimError
from artsim.images import open_image

# sizes a thumbnail request is snapped to: a bounded number of cached files per painting
THUMB_SIZES = (32, 64, 128, 192, 256, 384, 512, 768, 1024)

BOX_COLOUR = (255, 214, 10)  # the colours of artsim.visualize.overlays, which draws them
LIMB_COLOUR = (0, 220, 255)


# ---------------------------------------------------------------------- display text
def display_fields(item_id: str, metadata: dict[str, Any]) -> dict[str, str]:
    """Title, artist and date to show for a painting, from whatever metadata the source gave."""

    def text(value: Any) -> str:
        if value in (None, "", []):
            return ""
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value if v not in (None, ""))
        return str(value)

    title = text(metadata.get("title"))
    if not title:
        # NGA records without the objects table: the subject terms are the best caption there
        # is, marked as such beside the id so that nobody reads "United Kingdom" as a title
        theme = metadata.get("theme")
        themes = text(theme[:2] if isinstance(theme, list) else theme)
        title = f"{item_id} [{themes}]" if themes else ""
    date = text(metadata.get("date"))
    if not date and metadata.get("year") not in (None, ""):
        year, end = text(metadata.get("year")), text(metadata.get("year_end"))
        date = f"{year}–{end}" if end and end != year else year
    return {"title": title or str(item_id), "artist": text(metadata.get("artist")), "date": date}


# ---------------------------------------------------------------------- thumbnails
def thumbnail_size(size: int) -> int:
    """Clamp a requested size to 32..1024 and snap it up to one of THUMB_SIZES."""
    size = max(THUMB_SIZES[0], min(THUMB_SIZES[-1], int(size)))
    return next(s for s in THUMB_SIZES if s >= size)


def thumbnail_cache_path(catalog: Any, item_id: str, size: int) -> Path:
    image = catalog.item(item_id)["image"]
    digest = hashlib.sha256(f"{item_id}\0{image}".encode("utf-8", "surrogatepass")).hexdigest()
    return Path(catalog.path) / "cache" / "thumbs" / str(size) / f"{digest}.jpg"


def render_thumbnail(image_path: str | Path, size: int) -> Image.Image:
    """The image fitted inside size x size (never enlarged), RGB."""
    loaded = open_image(image_path, max_side=size)
    im = loaded.image
    if max(im.size) > size:
        im = im.copy()
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
    return im


def thumbnail_file(catalog: Any, item_id: str, size: int) -> Path:
    """Path of the cached JPEG thumbnail, made on first use. Raises ArtsimError for an unknown id
    or unreadable image, OSError when the cache cannot be written."""
    size = thumbnail_size(size)
    path = thumbnail_cache_path(catalog, item_id, size)
    if path.is_file():
        return path
    im = render_thumbnail(catalog.item(item_id)["image"], size)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".thumb.", suffix=f".{writer_tag()}.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            im.save(fh, "JPEG", quality=85, optimize=True)
        os.replace(tmp, path)  # concurrent makers of the same thumbnail each replace atomically
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_thumbnail(catalog: Any, item_id: str, size: int) -> Image.Image:
    """A thumbnail as a Pillow image, through the disk cache when the catalog is writable."""
    try:
        path = thumbnail_file(catalog, item_id, size)
    except OSError:
        return render_thumbnail(catalog.item(item_id)["image"], thumbnail_size(size))
    with Image.open(path) as im:
        return im.convert("RGB")


# ---------------------------------------------------------------------- overlays
def draw_overlay(
    image: Image.Image,
    *,
    box: Sequence[float] | None = None,
    keypoints: Sequence[Sequence[float]] | None = None,
    visibility: Sequence[float] | None = None,
    scale: float = 1.0,
    offset: tuple[float, float] = (0.0, 0.0),
) -> Image.Image:
    """A copy of `image` with a face box (x, y, w, h) and/or a 33-point skeleton drawn on it,
    both given in original-image pixels, for an image showing the original at `scale` and
    placed at `offset`. Drawing is artsim.visualize.overlays'."""
    from artsim.records import Pose
    from artsim.visualize.overlays import draw_boxes, draw_poses

    ox, oy = offset
    out = image
    if keypoints:
        pts = tuple((ox + float(p[0]) * scale, oy + float(p[1]) * scale) for p in keypoints)
        vis = tuple(float(v) for v in visibility) if visibility is not None else (1.0,) * len(pts)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        figure_box = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
        out = draw_poses(out, [Pose(pts, vis, figure_box, 1.0)], color=LIMB_COLOUR)
    if box is not None:
        x, y, w, h = (float(v) for v in box[:4])
        out = draw_boxes(out, [(ox + x * scale, oy + y * scale, w * scale, h * scale)])
    return out if out is not image else image.copy()


# ---------------------------------------------------------------------- contact sheet
def _get(result: Any, key: str, default: Any = None) -> Any:
    if isinstance(result, dict):
        return result.get(key, default)
    return getattr(result, key, default)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _query_image(query_image: Any, catalog: Any) -> tuple[Image.Image | None, str]:
    if query_image is None:
        return None, ""
    if isinstance(query_image, Image.Image):
        return query_image.convert("RGB"), "query"
    if isinstance(query_image, str) and query_image in catalog:
        return open_image(catalog.item(query_image)["image"], max_side=1024).image, query_image
    if isinstance(query_image, bytes):
        return open_image(query_image, max_side=1024).image, "upload"
    path = Path(query_image)
    if not path.is_file():
        raise ArtsimError(
            f"query {query_image!r} is neither an id in catalog {catalog.path} nor an image file"
        )
    return open_image(path, max_side=1024).image, path.name


def contact_sheet(
    query_image: Any,
    results: Sequence[Any],
    catalog: Any,
    *,
    out_path: str | Path | None = None,
    columns: int = 4,
    thumb: int = 240,
    title: str | None = None,
    overlays: bool = True,
) -> Image.Image:
    """A grid: the query first, then each result with rank, score, title, artist, date, and its
    matched face box / skeleton. `query_image` is a catalog id, image path, bytes, PIL image or
    None; `results` are SearchResult objects or their dicts. Saved as PNG when out_path is given."""
    columns = max(1, int(columns))
    thumb = max(64, int(thumb))
    pad, line = 10, max(14, thumb // 16)
    font, bold = _font(line - 2), _font(line)
    caption_h = 3 * line + 8
    cell_w, cell_h = thumb + pad, thumb + caption_h + pad
    qim, qlabel = _query_image(query_image, catalog)
    tiles = ([("query", None)] if qim is not None else []) + [("result", r) for r in results]
    if not tiles:
        raise ArtsimError("nothing to draw: no query image and no results")
    rows = (len(tiles) + columns - 1) // columns
    header = 2 * line + pad if title else pad
    sheet = Image.new("RGB", (columns * cell_w + pad, header + rows * cell_h), (250, 250, 247))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text(
            (pad, pad),
            _fit_text(draw, title, bold, sheet.width - 2 * pad),
            fill=(20, 20, 20),
            font=bold,
        )
    for n, (kind, res) in enumerate(tiles):
        cx = pad + (n % columns) * cell_w
        cy = header + (n // columns) * cell_h
        if kind == "query":
            assert qim is not None  # there is a query tile only with a query image
            im, scale_src = qim.copy(), None
            lines = ["QUERY", qlabel, ""]
            if isinstance(query_image, str) and query_image in catalog:
                f = display_fields(query_image, catalog.item(query_image)["metadata"])
                lines = ["QUERY", f["title"], " · ".join(v for v in (f["artist"], f["date"]) if v)]
        else:
            item_id = str(_get(res, "id"))
            try:
                im = load_thumbnail(catalog, item_id, thumb * 2)
            except (ArtsimError, OSError):
                im = Image.new("RGB", (thumb, thumb), (200, 200, 200))
            rec = (
                catalog.item(item_id)
                if item_id in catalog
                else {"width": im.width, "metadata": _get(res, "metadata", {})}
            )
            scale_src = rec["width"]
            fields = display_fields(item_id, _get(res, "metadata") or rec["metadata"])
            rank = n if qim is not None else n + 1
            lines = [f"#{rank}  score {float(_get(res, 'score', 0.0)):.3f}", fields["title"],
                     " · ".join(v for v in (fields["artist"], fields["date"]) if v)]  # fmt: skip
        shown = im.copy()
        shown.thumbnail((thumb, thumb), Image.Resampling.LANCZOS)
        if overlays and kind == "result" and scale_src:
            big = shown.resize((shown.width * 2, shown.height * 2), Image.Resampling.BICUBIC)
            # a pose result's box is the figure's extent: only a matched face is boxed
            face_box = (
                _get(res, "box") if _get(res, "face_id") or not _get(res, "keypoints") else None
            )
            big = draw_overlay(
                big, box=face_box, keypoints=_get(res, "keypoints"), scale=big.width / scale_src
            )
            shown = big.resize(shown.size, Image.Resampling.LANCZOS)  # drawn at 2x: smoother lines
        ix = cx + (thumb - shown.width) // 2
        iy = cy + (thumb - shown.height) // 2
        if kind == "query":
            draw.rectangle(
                [cx - 4, cy - 4, cx + thumb + 3, cy + thumb + 3], outline=(200, 40, 40), width=3
            )
        sheet.paste(shown, (ix, iy))
        ty = cy + thumb + 4
        for i, text in enumerate(lines):
            draw.text((cx, ty + i * line), _fit_text(draw, text, bold if i == 0 else font, thumb),
                      fill=(20, 20, 20) if i < 2 else (90, 90, 90), font=bold if i == 0 else font)  # fmt: skip
    if out_path is not None:
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out, "PNG")
    return sheet
