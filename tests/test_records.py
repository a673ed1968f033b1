"""The records passed between stages: immutable where shared, and SearchResult's JSON shape."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from artsim.records import Face, Pose, SearchResult, SourceItem


def test_source_items_and_detections_are_immutable() -> None:
    item = SourceItem("1", "a.jpg")
    face = Face(box=(1.0, 2.0, 3.0, 4.0), score=0.9, detector="blazeface")
    pose = Pose(keypoints=((0.0, 0.0),) * 33, visibility=(1.0,) * 33, box=(0, 0, 1, 1), score=1)
    for record, name in ((item, "id"), (face, "score"), (pose, "score")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, name, None)
    # each item gets its own metadata dict (no shared mutable default)
    assert SourceItem("2", "b.jpg").metadata is not item.metadata


def test_search_result_json_carries_only_what_is_set() -> None:
    plain = SearchResult(id="1", score=np.float32(0.123456789), image="a.jpg")
    out = plain.to_dict()
    assert out == {"id": "1", "score": 0.123457, "image": "a.jpg", "aspect": "global",
                   "metadata": {}}  # fmt: skip
    json.dumps(out)  # numpy scalars are converted


def test_search_result_json_of_a_face_pose_and_photo_match() -> None:
    r = SearchResult(
        id="7", score=0.5, image="b.jpg", aspect="global", box=(1.0, 2.0, 3.0, 4.0),
        mirrored=False, quad=[[0, 0], [10, 0], [10, 10], [0, 10]], inliers=0,
    )  # fmt: skip
    out = r.to_dict()
    assert out["box"] == [1.0, 2.0, 3.0, 4.0]  # tuples become JSON lists
    # False and 0 are answers, not absent values
    assert out["mirrored"] is False and out["inliers"] == 0
    assert out["quad"][2] == [10, 10]
    assert "face_id" not in out and "keypoints" not in out and "scores" not in out
    assert json.loads(json.dumps(out)) == out


def test_source_item_takes_a_pathlib_path_as_text(tmp_path: Path) -> None:
    item = SourceItem("1", tmp_path / "a.jpg")  # type: ignore[arg-type]  # callers do this
    assert item.image == str(tmp_path / "a.jpg") and isinstance(item.image, str)
