"""MemoryCatalog: the part of Catalog that the search stage reads, held in memory, with global
vectors, faces and figures given by the test. Searches by catalog id read only stored rows, so
the search modules' tests need no model (tests/test_search*.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from artsim.catalog import AspectData
from artsim.catalog.index import VectorIndex, build_index
from artsim.catalog.metadata import FieldColumns, LazyMetadata
from artsim.encoders.poses import pose_descriptor
from artsim.errors import ArtsimError
from artsim.records import Pose


def unit(v: Any) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@dataclass
class Painting:
    id: str
    vector: np.ndarray  # global
    faces: list[tuple[tuple[float, float, float, float], np.ndarray]] = field(default_factory=list)
    figures: list[Pose] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


class MemoryCatalog:
    def __init__(self, paintings: list[Painting], aspects=("global", "face", "pose")) -> None:
        self.path = Path("memory-catalog")
        self._ids = [p.id for p in paintings]
        self._pos = {p.id: i for i, p in enumerate(paintings)}
        self._images = [f"/nowhere/{p.id}.jpg" for p in paintings]
        self._metadata = [p.metadata for p in paintings]
        # --where reads typed columns; with no loader they come from the JSON, as for old parts
        self.fields = FieldColumns(
            LazyMetadata(pa.array([json.dumps(p.metadata) for p in paintings], pa.string())), None
        )
        self.encoder = None  # searches by id never embed
        self._aspects: dict[str, AspectData] = {}
        if "global" in aspects:
            self._aspects["global"] = self._data(
                "global", [(p.id, p.id, {}, {"global": p.vector}) for p in paintings], paintings
            )
        if "face" in aspects:
            rows = [
                (p.id, f"{p.id}#f{j}", {"box": list(box), "score": 0.9}, {"identity": vec, "look": vec[:8]})
                for p in paintings
                for j, (box, vec) in enumerate(p.faces)
            ]  # fmt: skip
            self._aspects["face"] = self._data("face", rows, paintings)
        if "pose" in aspects:
            rows = [
                (p.id, f"{p.id}#p{j}",
                 {"keypoints": [list(k) for k in f.keypoints], "visibility": list(f.visibility),
                  "box": list(f.box), "score": f.score},
                 {"pose": pose_descriptor(f)})
                for p in paintings
                for j, f in enumerate(p.figures)
            ]  # fmt: skip
            self._aspects["pose"] = self._data("pose", rows, paintings)

    def _data(self, aspect: str, rows: list, paintings: list[Painting]) -> AspectData:
        names = {"global": ["global"], "face": ["identity", "look"], "pose": ["pose"]}[aspect]
        dims = {"global": 8, "identity": 128, "look": 8, "pose": None}
        vectors = {}
        for n in names:
            if rows:
                vectors[n] = np.stack([r[3][n] for r in rows]).astype(np.float32)
            else:
                vectors[n] = np.zeros((0, dims[n] or 1), np.float32)
        return AspectData(
            aspect,
            f"memory-{aspect}",
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            vectors,
            done={p.id for p in paintings},
            row_pos=np.array([self._pos[r[0]] for r in rows], dtype=np.int64),
        )

    # ---------------------------------------------------------------- what search reads
    @property
    def ids(self) -> list[str]:
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._pos

    def aspect_names(self) -> list[str]:
        return list(self._aspects)

    def aspect(self, name: str) -> AspectData:
        if name not in self._aspects:
            raise ArtsimError(f"catalog {self.path} has no '{name}' aspect")
        return self._aspects[name]

    def vector_index(self, aspect: str, name: str | None = None) -> tuple[AspectData, VectorIndex]:
        data = self.aspect(aspect)
        name = name or aspect
        if name not in data.indexes:
            data.indexes[name] = build_index(data.vectors[name])
        return data, data.indexes[name]

    def metadata(self, item_id: str) -> dict[str, Any]:
        return self._metadata[self._pos[item_id]]

    def image_of(self, item_id: str) -> str:
        return self._images[self._pos[item_id]]


def standing(x: float = 0.0, arm: float = 0.0, score: float = 0.9) -> Pose:
    """A standing figure 100 px tall at x; `arm` raises the left arm (0: down, 1: up)."""
    pts = [(x + 50.0, 15.0)] * 11
    body = {
        11: (-10, 30), 12: (10, 30), 13: (-15, 45 - 30 * arm), 14: (15, 45), 15: (-17, 60 - 55 * arm),
        16: (17, 60), 17: (-18, 62 - 55 * arm), 18: (18, 62), 19: (-17, 63 - 55 * arm), 20: (17, 63),
        21: (-16, 62 - 55 * arm), 22: (16, 62), 23: (-7, 60), 24: (7, 60), 25: (-8, 75), 26: (8, 75),
        27: (-8, 90), 28: (8, 90), 29: (-9, 93), 30: (9, 93), 31: (-5, 94), 32: (5, 94),
    }  # fmt: skip
    pts = pts + [(x + 50.0 + dx, float(dy)) for _, (dx, dy) in sorted(body.items())]
    return Pose(tuple(pts), (1.0,) * 33, (x + 30.0, 10.0, 40.0, 90.0), score)
