"""The pose aspect: figures found by BlazePose, their keypoints, and a pose descriptor.
The figures are found by the analysis stage (`artsim.analysis`), which queries share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from artsim.analysis import POSE_MAX_SIDE, Analysis, find_figures, scale_pose
from artsim.catalog.aspects import AspectRow
from artsim.records import Face, Pose, SourceItem

if TYPE_CHECKING:
    from PIL import Image

    from artsim.catalog import Catalog

POSE_MODEL = "blazepose-full-desc-v1"

# POSE_MAX_SIDE and scale_pose live in artsim.analysis; their names stay importable from here
__all__ = ["POSE_MAX_SIDE", "POSE_MODEL", "PoseIndexer", "analyse_poses", "scale_pose"]


def analyse_poses(
    image: Image.Image, faces: Sequence[Face] | None = None
) -> tuple[list[Pose], np.ndarray]:
    """Figures in a decoded RGB image and their descriptors (`artsim.analysis.find_figures`).
    faces: the pose detector's face proposals when already found; None finds them."""
    found = find_figures(image, faces)
    return found.poses, found.descriptors


class PoseIndexer:
    aspect = "pose"
    max_side = POSE_MAX_SIDE

    def __init__(self, catalog: Catalog) -> None:
        from artsim.encoders.poses import POSE_DIM

        self.catalog = catalog
        self.model_key = POSE_MODEL
        self.vector_dims = {"pose": POSE_DIM}

    def describe(self) -> dict[str, Any]:
        return {
            "estimator": "mediapipe BlazePose (model_complexity=1), multi-figure",
            "max_side": self.max_side,
        }

    def rows(self, item: SourceItem, analysis: Analysis) -> list[AspectRow]:
        fig = analysis.figures
        assert fig is not None, "analysed without 'pose'"
        if not fig.poses:
            return [AspectRow(item.id, None)]
        rows = []
        for i, (pose, orig) in enumerate(zip(fig.poses, analysis.original_poses(), strict=True)):
            rows.append(
                AspectRow(
                    item.id,
                    f"{item.id}#pose{i}",
                    {
                        "box": [round(v, 1) for v in orig.box],
                        "keypoints": [[round(x, 1), round(y, 1)] for x, y in orig.keypoints],
                        "visibility": [round(float(v), 3) for v in orig.visibility],
                        "score": round(float(pose.score), 4),
                    },
                    {"pose": fig.descriptors[i]},
                )
            )
        return rows
