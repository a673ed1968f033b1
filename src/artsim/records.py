"""Small typed records passed between pipeline stages."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One painting offered by a source: a stable id, where its image is, and its metadata."""

    id: str
    image: str  # local path or http(s) URL
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Python callers pass pathlib paths; the catalog stores and compares text
        if isinstance(self.image, os.PathLike):
            object.__setattr__(self, "image", os.fspath(self.image))


@dataclass(frozen=True, slots=True)
class Face:
    """A face found in an image. Box is (x, y, w, h) in pixels of the oriented image."""

    box: tuple[float, float, float, float]
    score: float
    detector: str
    landmarks: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Pose:
    """A figure's 33 BlazePose keypoints in image pixels, with per-keypoint visibility."""

    keypoints: tuple[tuple[float, float], ...]
    visibility: tuple[float, ...]
    box: tuple[float, float, float, float]
    score: float


@dataclass(slots=True)
class SearchResult:
    """One hit: a painting, its score and what matched (face or figure) when relevant."""

    id: str
    score: float
    image: str
    metadata: dict[str, Any] = field(default_factory=dict)
    aspect: str = "global"
    box: tuple[float, float, float, float] | None = None
    face_id: str | None = None
    pose_id: str | None = None
    keypoints: list[list[float]] | None = None
    scores: dict[str, float] | None = None
    mirrored: bool | None = None  # pose search with mirror: the match is left-right reversed
    quad: list[list[float]] | None = None  # photo query: the matched region, 4 corners in query px
    inliers: int | None = None  # photo query: geometric verification inliers (0: not verified)
    # photo query of a detail: the photo's outline in the painting, 4 corners as fractions
    # of its width and height (None when the photo shows most or all of the painting)
    detail: list[list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "score": round(float(self.score), 6),
            "image": self.image,
            "aspect": self.aspect,
            "metadata": self.metadata,
        }
        for key in (
            "box",
            "face_id",
            "pose_id",
            "keypoints",
            "scores",
            "mirrored",
            "quad",
            "inliers",
            "detail",
        ):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out
