"""What a catalog stores per painting (artsim.catalog.aspects): the aspects, and the global
indexer's one row per painting."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from artsim.analysis import Analysis
from artsim.catalog.aspects import ASPECTS, AspectRow, GlobalIndexer
from artsim.images import LoadedImage
from artsim.records import SourceItem
from tests.images_factory import gradient


def test_the_aspects_a_catalog_knows():
    assert ASPECTS == ("global", "face", "pose", "local")
    row = AspectRow("p", None)
    assert row.info == {} and row.vectors == {}  # "processed, nothing found"
    assert AspectRow("q", None).info is not row.info  # no shared mutable default


def test_the_global_row_is_the_painting_and_its_vector():
    encoder = SimpleNamespace(name="enc-x", dim=3, preprocess=SimpleNamespace(resize=260))
    ix = GlobalIndexer(encoder)  # type: ignore[arg-type]
    assert (ix.aspect, ix.model_key, ix.vector_dims, ix.max_side) == (
        "global", "enc-x", {"global": 3}, 260)  # fmt: skip
    assert ix.describe() == {"model": "enc-x", "dims": {"global": 3}}
    v = np.array([0.6, 0.8, 0.0], np.float32)
    a = Analysis(LoadedImage(gradient(20, 20), (20, 20)), vector=v)
    (row,) = ix.rows(SourceItem("a/1.jpg", "1.jpg", {}), a)
    assert (row.item_id, row.row_id, row.info) == ("a/1.jpg", "a/1.jpg", {})
    assert row.vectors["global"] is v
