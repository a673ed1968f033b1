"""What the server's test modules share: a real 14-painting catalog, FakeCatalog (an in-memory
stand-in with face and pose rows, for the aspects the real test catalog lacks and for a
5,000-painting map; also used by test_browser.py), upload bytes and the upload worker processes.
The fixtures that use them (real_catalog, client, fake, fake_client) are in tests/conftest.py."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from artsim.catalog import AspectData, Catalog
from artsim.errors import ArtsimError
from artsim.records import SearchResult, SourceItem
from tests.images_factory import gradient

ARTISTS = ["Alice Painter", "Bob Limner", "Carla Fresco"]


def build_real_catalog(root: Path) -> Path:
    """14 generated paintings with metadata; two ids contain '/'."""
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    items = []
    for i in range(14):
        path = src / ("sub" if i < 2 else "") / f"img{i}.jpg"
        gradient(160 + 8 * i, 120, seed=i).save(path, quality=90)
        item_id = f"sub/img{i}.jpg" if i < 2 else f"img{i}.jpg"
        meta = {"title": f"Study {i}", "artist": ARTISTS[i % 3], "year": 1600 + 10 * i}
        items.append(SourceItem(item_id, str(path), meta))
    cat = Catalog.create(root / "cat")
    cat.add(items)
    return root / "cat"


def upload_workers() -> list:
    """The upload worker processes (spawned) of this test process."""
    import psutil

    return [
        p for p in psutil.Process().children(recursive=True)
        if "spawn_main" in " ".join(p.cmdline())
    ]  # fmt: skip


def jpeg_bytes(w: int = 120, h: int = 90, seed: int = 3) -> bytes:
    buf = io.BytesIO()
    gradient(w, h, seed=seed).save(buf, "JPEG", quality=90)
    return buf.getvalue()


class FakeCatalog:
    """The part of Catalog the server uses, in memory: n paintings with one face and one figure
    each, results computed from vectors. Records the options each search received."""

    def __init__(
        self,
        path: Path,
        n: int = 40,
        images: list[Path] | None = None,
        dim: int = 16,
        seed: int = 0,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.model_name = "fake"
        if images is None:
            images = []
            for i in range(4):
                p = self.path / f"fake{i}.jpg"
                gradient(200, 150, seed=100 + i).save(p, quality=90)
                images.append(p)
        self._ids = [f"fake/{i:05d}" for i in range(n)]
        self._pos = {i: n for n, i in enumerate(self._ids)}
        self._items = {}
        for k, item_id in enumerate(self._ids):
            img = images[k % len(images)]
            with Image.open(img) as im:
                w, h = im.size
            meta = {"title": f"Fake {k}", "artist": ARTISTS[k % 3], "year": 1500 + (k % 300)}
            self._items[item_id] = {
                "id": item_id,
                "image": str(img),
                "width": w,
                "height": h,
                "metadata": meta,
            }
        vec = rng.normal(size=(n, dim)).astype(np.float32)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        self._aspects = {
            "global": AspectData(
                "global",
                "fake",
                list(self._ids),
                list(self._ids),
                [{} for _ in self._ids],
                {"global": vec},
            ),
            "face": AspectData(
                "face",
                "fake-face",
                list(self._ids),
                [f"{i}#f0" for i in self._ids],
                [
                    {
                        "box": [
                            0.2 * self._items[i]["width"],
                            0.1 * self._items[i]["height"],
                            0.3 * self._items[i]["width"],
                            0.35 * self._items[i]["height"],
                        ],
                        "score": 0.99,
                    }
                    for i in self._ids
                ],
                {"face": vec},
            ),
            "pose": AspectData(
                "pose",
                "fake-pose",
                list(self._ids),
                [f"{i}#p0" for i in self._ids],
                [
                    {
                        "keypoints": _skeleton(self._items[i]["width"], self._items[i]["height"]),
                        "visibility": [1.0] * 33,
                        "box": [0, 0, 10, 10],
                    }
                    for i in self._ids
                ],
                {"pose": vec},
            ),
        }
        self.aspects = ["global", "face", "pose"]
        self.calls: list[dict[str, Any]] = []
        self.fail_with: Exception | None = None

    @property
    def ids(self) -> list[str]:
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def item(self, item_id: str) -> dict[str, Any]:
        if item_id not in self._items:
            raise ArtsimError(f"no item with id {item_id!r}")
        return self._items[item_id]

    def aspect_names(self) -> list[str]:
        return list(self.aspects)

    def aspect(self, name: str) -> AspectData:
        if name not in self.aspects:
            raise ArtsimError(f"catalog {self.path} has no '{name}' aspect")
        return self._aspects[name]

    def search(
        self, query: Any, *, k: int = 10, aspect: str = "global", where=None, **options: Any
    ) -> list[SearchResult]:
        self.calls.append({"query": query, "k": k, "aspect": aspect, "where": where, **options})
        if self.fail_with is not None:
            raise self.fail_with
        from artsim.search.filters import filter_mask, parse_where

        vec = self._aspects["global"].vectors["global"]
        qid = getattr(query, "item_id", None)
        qv = vec[self._pos[qid]] if qid is not None else vec[0]
        scores = vec @ qv
        mask = filter_mask([self._items[i]["metadata"] for i in self._ids], parse_where(where))
        order = [
            int(j) for j in np.argsort(-scores) if self._ids[j] != qid and (mask is None or mask[j])
        ][:k]
        out = []
        for j in order:
            item_id = self._ids[j]
            extra: dict[str, Any] = {}
            if aspect == "face":
                extra = {
                    "box": tuple(self._aspects["face"].info[j]["box"]),
                    "face_id": f"{item_id}#f0",
                }
            elif aspect == "pose":
                extra = {
                    "keypoints": self._aspects["pose"].info[j]["keypoints"],
                    "pose_id": f"{item_id}#p0",
                    "box": (0, 0, 10, 10),
                }
            elif aspect == "fused":
                extra = {"scores": {"global": float(scores[j])}}
            out.append(
                SearchResult(
                    item_id,
                    float(scores[j]),
                    self._items[item_id]["image"],
                    self._items[item_id]["metadata"],
                    aspect,
                    **extra,
                )
            )
        return out


def _skeleton(w: float, h: float) -> list[list[float]]:
    """33 plausible keypoints of a standing figure inside a w x h painting."""
    cx = w / 2
    pts = [[cx, 0.15 * h]] * 11  # face points around the head
    body = {
        11: (-0.1, 0.3), 12: (0.1, 0.3), 13: (-0.15, 0.45), 14: (0.15, 0.45), 15: (-0.17, 0.6), 16: (0.17, 0.6),
        17: (-0.18, 0.62), 18: (0.18, 0.62), 19: (-0.17, 0.63), 20: (0.17, 0.63), 21: (-0.16, 0.62), 22: (0.16, 0.62),
        23: (-0.07, 0.6), 24: (0.07, 0.6), 25: (-0.08, 0.75), 26: (0.08, 0.75), 27: (-0.08, 0.9), 28: (0.08, 0.9),
        29: (-0.09, 0.93), 30: (0.09, 0.93), 31: (-0.05, 0.94), 32: (0.05, 0.94),
    }  # fmt: skip
    pts = [list(p) for p in pts] + [[cx + dx * w, dy * h] for _, (dx, dy) in sorted(body.items())]
    return pts
