"""The pose aspect's indexer (artsim.catalog.poses): one row per figure in original-image
pixels with its descriptor, and "no figure" is a row."""

from __future__ import annotations

import numpy as np

from artsim.analysis import Analysis, Figures
from artsim.catalog.poses import POSE_MODEL, PoseIndexer
from artsim.encoders.poses import POSE_DIM
from artsim.images import LoadedImage
from artsim.records import Pose, SourceItem
from tests.images_factory import gradient


def test_each_figure_is_a_row_in_original_pixels():
    ix = PoseIndexer(None)  # type: ignore[arg-type]  (the catalog is not read)
    assert ix.vector_dims == {"pose": POSE_DIM} and ix.model_key == POSE_MODEL
    pose = Pose(((10.0, 20.0),) * 33, (0.91234,) * 33, (5.0, 6.0, 20.0, 40.0), 0.87654)
    desc = np.arange(POSE_DIM, dtype=np.float32)[None]
    a = Analysis(LoadedImage(gradient(50, 50), (100, 100)), figures=Figures([pose], desc))
    (row,) = ix.rows(SourceItem("p", "p.jpg", {}), a)
    assert row.row_id == "p#pose0" and row.info["box"] == [10.0, 12.0, 40.0, 80.0]
    assert row.info["keypoints"][0] == [20.0, 40.0] and len(row.info["keypoints"]) == 33
    assert row.info["visibility"][0] == 0.912 and row.info["score"] == 0.8765
    assert np.array_equal(row.vectors["pose"], desc[0])


def test_a_painting_without_figures_is_remembered_as_done():
    empty = Figures([], np.zeros((0, POSE_DIM), np.float32))
    a = Analysis(LoadedImage(gradient(40, 30), (40, 30)), figures=empty)
    rows = PoseIndexer(None).rows(SourceItem("still-life", "s.jpg", {}), a)  # type: ignore[arg-type]
    assert [(r.item_id, r.row_id) for r in rows] == [("still-life", None)]
