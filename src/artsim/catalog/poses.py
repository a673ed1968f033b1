"""The pose aspect: figures found by BlazePose, their keypoints, and a pose descriptor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from artsim.catalog.aspects import AspectRow
from artsim.catalog.parallel import DetectorPool
from artsim.images import LoadedImage
from artsim.records import Face, Pose, SourceItem

if TYPE_CHECKING:
    from artsim.catalog import Catalog
    from artsim.catalog.faces import FaceIndexer

POSE_MAX_SIDE = 1024
POSE_MODEL = "blazepose-full-desc-v1"


def scale_pose(pose: Pose, scale: float) -> Pose:
    x, y, w, h = pose.box
    return Pose(
        keypoints=tuple((px * scale, py * scale) for px, py in pose.keypoints),
        visibility=pose.visibility,
        box=(x * scale, y * scale, w * scale, h * scale),
        score=pose.score,
    )


def analyse_poses(image, faces: Sequence[Face] | None = None) -> tuple[list[Pose], np.ndarray]:
    """Figures in a decoded RGB image and their descriptors (index and query share this).
    faces: the pose detector's face proposals when already found (FoundFaces.pose_proposals,
    the same faces it would find itself); None finds them."""
    from artsim.detectors.poses import detect_poses
    from artsim.encoders.poses import POSE_DIM, pose_descriptor

    poses = detect_poses(image, faces=faces)
    if not poses:
        return [], np.zeros((0, POSE_DIM), np.float32)
    return poses, np.stack([pose_descriptor(p) for p in poses]).astype(np.float32)


def _analyse_poses_star(args: tuple[Any, Sequence[Face] | None]) -> tuple[list[Pose], np.ndarray]:
    return analyse_poses(*args)


class PoseIndexer:
    aspect = "pose"
    max_side = POSE_MAX_SIDE

    def __init__(
        self,
        catalog: Catalog,
        pool: DetectorPool | None = None,
        face_indexer: FaceIndexer | None = None,
    ) -> None:
        from artsim.encoders.poses import POSE_DIM

        self.catalog = catalog
        self.pool = pool or DetectorPool(1)
        # indexing faces in the same run (before poses): reuse its face detection
        self.face_indexer = face_indexer
        if face_indexer is not None:
            face_indexer.keep_pose_proposals = True
        self.model_key = POSE_MODEL
        self.vector_dims = {"pose": POSE_DIM}

    def describe(self) -> dict[str, Any]:
        return {
            "estimator": "mediapipe BlazePose (model_complexity=1), multi-figure",
            "max_side": self.max_side,
        }

    def process(self, batch: list[tuple[SourceItem, LoadedImage]]) -> list[AspectRow]:
        rows: list[AspectRow] = []
        proposals = self.face_indexer.pose_proposals if self.face_indexer else {}
        found = self.pool.map(
            _analyse_poses_star, [(li.image, proposals.get(item.id)) for item, li in batch]
        )
        for (item, loaded), (poses, desc) in zip(batch, found, strict=True):
            if not poses:
                rows.append(AspectRow(item.id, None))
                continue
            for i, pose in enumerate(poses):
                orig = scale_pose(pose, loaded.scale)
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
                        {"pose": desc[i]},
                    )
                )
        return rows
