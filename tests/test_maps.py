"""Collection maps: the 2-D layout, its cache, and the PNG / HTML pictures."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from artsim.catalog import AspectData
from artsim.errors import ArtsimError
from artsim.visualize import maps
from artsim.visualize.maps import collection_layout, collection_map, layout_2d
from tests.images_factory import gradient


class MiniCatalog:
    """Just what the map needs: a path, items with images, and global vectors."""

    def __init__(self, path: Path, vectors: np.ndarray, images: list[Path] | None = None) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        n = len(vectors)
        if images is None:
            images = []
            for i in range(min(n, 5)):
                p = path / f"src{i}.jpg"
                gradient(90 + 10 * i, 70, seed=i).save(p)
                images.append(p)
        self._ids = [f"p{i}" for i in range(n)]
        self._items = {
            item_id: {"id": item_id, "image": str(images[i % len(images)]), "width": 100, "height": 70,
                      "metadata": {"title": f"Painting <{i}>", "artist": "Anon", "year": 1600 + i}}
            for i, item_id in enumerate(self._ids)
        }  # fmt: skip
        self._global = AspectData(
            "global", "m", list(self._ids), list(self._ids), [{}] * n, {"global": vectors}
        )

    @property
    def ids(self) -> list[str]:
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def item(self, item_id: str) -> dict[str, Any]:
        return self._items[item_id]

    def aspect(self, name: str) -> AspectData:
        assert name == "global"
        return self._global


def clustered(
    n_per: int = 15, clusters: int = 3, dim: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * 5
    labels = np.repeat(np.arange(clusters), n_per)
    x = centres[labels] + rng.normal(size=(len(labels), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def test_layout_edge_cases():
    xy, method = layout_2d(np.zeros((0, 8)))
    assert xy.shape == (0, 2) and method == "none"
    xy, method = layout_2d(np.ones((1, 8)))
    assert xy.tolist() == [[0.5, 0.5]] and method == "none"
    xy, method = layout_2d(np.eye(2, 8))
    assert xy.shape == (2, 2) and method == "pca"
    xy, method = layout_2d(np.random.default_rng(0).normal(size=(5, 1)))  # one dimension only
    assert xy.shape == (5, 2) and np.isfinite(xy).all()
    with pytest.raises(ArtsimError, match="unknown map method"):
        layout_2d(np.ones((3, 3)), method="umap")


def test_small_collections_use_pca_and_fit_the_unit_square():
    x, _ = clustered(n_per=5)
    xy, method = layout_2d(x)
    assert method == "pca" and xy.shape == (15, 2)
    assert xy.min() >= 0 and xy.max() <= 1 + 1e-6
    spans = xy.max(0) - xy.min(0)
    assert spans.max() == pytest.approx(1.0, abs=1e-5)  # the longer axis fills [0, 1]


def test_tsne_keeps_clusters_apart():
    x, labels = clustered(n_per=15, clusters=3)
    xy, method = layout_2d(x)
    assert method == "tsne"
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    same = d[labels[:, None] == labels[None]].mean()
    diff = d[labels[:, None] != labels[None]].mean()
    assert diff > 2.5 * same, (same, diff)
    # deterministic for a given seed
    again, _ = layout_2d(x)
    assert np.allclose(again, xy)


def test_layout_cache_and_invalidation(tmp_path, monkeypatch):
    x, _ = clustered(n_per=4)
    cat = MiniCatalog(tmp_path / "cat", x)
    first = collection_layout(cat)
    cache = tmp_path / "cat" / "cache" / "map.json"
    saved = json.loads(cache.read_text())
    assert saved["count"] == 12 and saved["method"] == "pca" and len(saved["ids_sha256"]) == 64

    calls = []
    real = maps.layout_2d
    monkeypatch.setattr(maps, "layout_2d", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = collection_layout(cat)
    assert not calls and again.ids == first.ids and np.allclose(again.xy, first.xy, atol=1e-6)
    # another painting: recomputed
    x2 = np.vstack([x, x[:1] * -1])
    bigger = MiniCatalog(tmp_path / "cat", x2)
    grown = collection_layout(bigger)
    assert len(calls) == 1 and len(grown.ids) == 13
    # same count, other ids: recomputed too
    renamed = MiniCatalog(tmp_path / "cat", x2)
    renamed._global.item_ids[0] = "other"
    collection_layout(renamed)
    assert len(calls) == 2
    # another method: recomputed
    collection_layout(renamed, method="pca")
    assert len(calls) == 3
    # a damaged cache file is ignored
    cache.write_text("{not json")
    collection_layout(renamed, method="pca")
    assert len(calls) == 4


def test_layout_without_a_writable_cache(tmp_path, monkeypatch):
    x, _ = clustered(n_per=3)
    cat = MiniCatalog(tmp_path / "cat", x)

    def refuse(path, data):
        raise PermissionError("read-only")

    monkeypatch.setattr(maps, "_atomic_write", refuse)
    layout = collection_layout(cat)
    assert len(layout.ids) == 9


def test_png_map(tmp_path):
    x, _ = clustered(n_per=4)
    cat = MiniCatalog(tmp_path / "cat", x)
    out = collection_map(cat, tmp_path / "out" / "map.png")
    im = Image.open(out)
    assert im.format == "PNG" and min(im.size) > 500
    arr = np.asarray(im.convert("RGB")).astype(int)
    # thumbnails were drawn: many pixels that are neither white background nor grey dots
    colourful = (arr.max(axis=2) - arr.min(axis=2)) > 40
    assert colourful.mean() > 0.005


def test_html_map_is_self_contained(tmp_path):
    x, _ = clustered(n_per=4)
    cat = MiniCatalog(tmp_path / "cat", x)
    out = collection_map(cat, tmp_path / "map.html")
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=[\"']?https?://", text)
    assert "<script src" not in text and "<link" not in text
    block = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    data = json.loads(block.group(1))
    assert len(data["points"]) == 12
    assert all(p["src"].startswith("data:image/jpeg;base64,") for p in data["points"])
    # metadata is text, never markup: '<' only appears escaped inside the JSON block
    assert "Painting <0>" not in text.replace(block.group(1), "")


def test_map_refuses_other_suffixes(tmp_path):
    x, _ = clustered(n_per=2)
    cat = MiniCatalog(tmp_path / "cat", x)
    with pytest.raises(ArtsimError, match=r"\.png or \.html"):
        collection_map(cat, tmp_path / "map.svg")
