"""Contact sheets, overlays and the thumbnail cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from artsim.errors import ArtsimError
from artsim.records import SearchResult
from artsim.visualize.sheets import (
    BOX_COLOUR,
    LIMB_COLOUR,
    THUMB_SIZES,
    contact_sheet,
    display_fields,
    draw_overlay,
    load_thumbnail,
    thumbnail_file,
    thumbnail_size,
)
from tests.images_factory import gradient


class Items:
    """Catalog stand-in: items with images on disk."""

    def __init__(self, root: Path, n: int = 6) -> None:
        self.path = root
        root.mkdir(parents=True, exist_ok=True)
        self._items: dict[str, dict[str, Any]] = {}
        for i in range(n):
            p = root / f"i{i}.png"
            w, h = 400 + 20 * i, 300
            Image.fromarray(np.full((h, w, 3), 60 + 20 * i, np.uint8)).save(
                p
            )  # flat grey: overlays stand out
            self._items[f"id/{i}"] = {"id": f"id/{i}", "image": str(p), "width": w, "height": h,
                                      "metadata": {"title": f"Title {i}", "artist": "A. Painter", "year": 1650}}  # fmt: skip

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def item(self, item_id: str) -> dict[str, Any]:
        if item_id not in self._items:
            raise ArtsimError(f"no item {item_id!r}")
        return self._items[item_id]


def figure(w: float, h: float) -> list[list[float]]:
    """33 keypoints of a standing figure: shoulders, arms, hips, legs spread over the painting."""
    head = [[w / 2, 0.15 * h]] * 11
    body = [[w / 2 + dx * w, dy * h] for dx, dy in [
        (-0.1, 0.3), (0.1, 0.3), (-0.2, 0.45), (0.2, 0.45), (-0.25, 0.6), (0.25, 0.6), (-0.26, 0.62),
        (0.26, 0.62), (-0.25, 0.63), (0.25, 0.63), (-0.24, 0.62), (0.24, 0.62), (-0.08, 0.6), (0.08, 0.6),
        (-0.1, 0.75), (0.1, 0.75), (-0.1, 0.9), (0.1, 0.9), (-0.11, 0.93), (0.11, 0.93), (-0.06, 0.94), (0.06, 0.94),
    ]]  # fmt: skip
    return head + body


def test_display_fields():
    assert display_fields("x", {"title": "Venus", "artist": ["A", "B"], "year": 1600, "year_end": 1610}) == {
        "title": "Venus", "artist": "A, B", "date": "1600–1610"}  # fmt: skip
    assert display_fields("x", {"date": "c. 1650", "year": 1650})["date"] == "c. 1650"
    assert (
        display_fields("x", {"theme": ["saints", "angels", "more"]})["title"]
        == "x [saints, angels]"
    )
    assert display_fields("42", {}) == {"title": "42", "artist": "", "date": ""}


def test_thumbnail_sizes_are_clamped_and_snapped():
    assert thumbnail_size(1) == 32 and thumbnail_size(-5) == 32
    assert thumbnail_size(200) == 256 and thumbnail_size(256) == 256
    assert thumbnail_size(10**9) == 1024
    assert all(thumbnail_size(s) == s for s in THUMB_SIZES)


def test_thumbnail_cache(tmp_path):
    cat = Items(tmp_path / "cat")
    path = thumbnail_file(cat, "id/2", 100)
    assert path.parent == tmp_path / "cat" / "cache" / "thumbs" / "128"
    assert len(path.stem) == 64 and "id" not in path.name  # named by hash, never by the id
    with Image.open(path) as im:
        assert max(im.size) == 128 and im.format == "JPEG"
    assert thumbnail_file(cat, "id/2", 128) == path
    small = load_thumbnail(cat, "id/0", 1000)
    assert max(small.size) == 400  # never enlarged beyond the original
    with pytest.raises(ArtsimError):
        thumbnail_file(cat, "../../etc/passwd", 64)


def test_draw_overlay_scales_original_pixels():
    im = Image.new("RGB", (200, 100), (0, 0, 0))
    # a box given in a 400x200 original, shown at half size
    drawn = draw_overlay(im, box=(100, 50, 200, 100), scale=0.5)
    assert np.asarray(im).max() == 0  # the image passed in is left alone
    arr = np.asarray(drawn)
    assert tuple(arr[50, 50]) == BOX_COLOUR  # left edge at x = 100 * 0.5
    assert tuple(arr[25, 100]) == BOX_COLOUR  # top edge at y = 50 * 0.5
    assert tuple(arr[50, 100]) == (0, 0, 0)  # inside stays untouched
    kp = [[0, 0]] * 11 + [[100 + 10 * j, 100] for j in range(22)]
    sk = Image.new("RGB", (300, 300))
    sk = draw_overlay(sk, keypoints=kp, scale=1.0)
    assert (np.asarray(sk) == LIMB_COLOUR).all(axis=2).sum() > 20
    hidden = Image.new("RGB", (300, 300))
    hidden = draw_overlay(hidden, keypoints=kp, visibility=[0.0] * 33)
    assert np.asarray(hidden).max() == 0  # invisible keypoints are not drawn


def test_contact_sheet_with_overlays(tmp_path):
    cat = Items(tmp_path / "cat")
    results = [
        SearchResult("id/1", 0.9, "", cat.item("id/1")["metadata"], "face", box=(40, 30, 200, 150)),
        SearchResult("id/2", 0.8, "", cat.item("id/2")["metadata"], "pose", keypoints=figure(440, 300)),
        {"id": "id/3", "score": 0.7, "metadata": {"title": "From JSON"}},
    ]  # fmt: skip
    out = tmp_path / "out" / "sheet.png"
    sheet = contact_sheet(
        "id/0", results, cat, out_path=out, columns=2, thumb=160, title="query id/0"
    )
    assert out.is_file() and Image.open(out).size == sheet.size
    assert sheet.width == 2 * 170 + 10  # two columns of thumb + padding
    arr = np.asarray(sheet).astype(int)

    def count(colour: tuple[int, int, int]) -> int:
        return int((np.abs(arr - np.array(colour)).sum(axis=2) < 60).sum())

    assert count(BOX_COLOUR) > 50 and count(LIMB_COLOUR) > 50
    plain = contact_sheet("id/0", results, cat, columns=2, thumb=160, overlays=False)
    assert count(BOX_COLOUR) > 10 * max(
        1,
        int((np.abs(np.asarray(plain).astype(int) - np.array(BOX_COLOUR)).sum(axis=2) < 60).sum()),
    )


def test_contact_sheet_query_forms(tmp_path):
    cat = Items(tmp_path / "cat", n=3)
    res = [SearchResult("id/1", 0.5, "", {}, "global")]
    src = tmp_path / "q.jpg"
    gradient(80, 60).save(src)
    for q in (str(src), src.read_bytes(), gradient(50, 50), None):
        sheet = contact_sheet(q, res, cat, columns=4, thumb=100)
        assert sheet.width == 4 * 110 + 10
    with pytest.raises(ArtsimError, match="neither an id"):
        contact_sheet(str(tmp_path / "missing.jpg"), res, cat)
    with pytest.raises(ArtsimError, match="nothing to draw"):
        contact_sheet(None, [], cat)
