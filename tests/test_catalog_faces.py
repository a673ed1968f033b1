"""The face aspect's indexer (artsim.catalog.faces): an analysis becomes one row per face, in
original-image pixels, with its chip saved under the catalog's cache, and "no face" is a row."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from artsim.analysis import Analysis, FoundFaces
from artsim.catalog.faces import IDENTITY_MODEL, FaceIndexer
from artsim.images import LoadedImage
from artsim.records import Face, SourceItem
from tests.images_factory import gradient


def _indexer(tmp_path: Path) -> FaceIndexer:
    catalog = SimpleNamespace(path=tmp_path, encoder=SimpleNamespace(name="enc", dim=4))
    return FaceIndexer(catalog)  # type: ignore[arg-type]


def test_each_face_is_a_row_in_original_pixels_with_its_chip(tmp_path):
    ix = _indexer(tmp_path)
    assert ix.vector_dims == {"identity": 128, "look": 4} and ix.model_key == IDENTITY_MODEL
    assert ix.describe()["look"] == "enc"
    faces = [
        Face((10, 20, 30, 40), 0.91234, "ensemble", ((15.0, 30.0), (35.0, 30.0))),
        Face((50, 5, 10, 10), 0.5, "ensemble"),
    ]
    identity = np.eye(2, 128, dtype=np.float32)
    found = FoundFaces(faces, identity, [gradient(150, 150, s) for s in (1, 2)], [])
    # decoded at half size: the catalog stores original-image pixels
    a = Analysis(LoadedImage(gradient(100, 80), (200, 160)), faces=found, look=np.ones((2, 4)))
    rows = ix.rows(SourceItem("p/1", "x.jpg", {}), a)
    assert [r.row_id for r in rows] == ["p/1#face0", "p/1#face1"]
    assert rows[0].info["box"] == [20.0, 40.0, 60.0, 80.0]
    assert rows[0].info["landmarks"] == [[30.0, 60.0], [70.0, 60.0]]
    assert rows[0].info["score"] == 0.9123 and rows[0].info["detector"] == "ensemble"
    assert np.array_equal(rows[1].vectors["identity"], identity[1])
    assert rows[1].vectors["look"].shape == (4,)
    chip = tmp_path / rows[0].info["chip"]
    assert chip.is_file() and rows[0].info["chip"].startswith("cache/faces/")
    with Image.open(chip) as im:
        assert im.size == (150, 150) and im.format == "JPEG"
    assert rows[0].info["chip"] != rows[1].info["chip"]


def test_a_painting_without_faces_is_remembered_as_done(tmp_path):
    found = FoundFaces([], np.zeros((0, 128), np.float32), [], [])
    a = Analysis(LoadedImage(gradient(40, 30), (40, 30)), faces=found, look=np.zeros((0, 4)))
    rows = _indexer(tmp_path).rows(SourceItem("landscape", "l.jpg", {}), a)
    assert [(r.item_id, r.row_id, r.vectors) for r in rows] == [("landscape", None, {})]
