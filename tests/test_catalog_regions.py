"""Faces and figures in the catalog: incremental aspects, resume, search by face and pose."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from artsim.catalog import Catalog
from artsim.errors import ArtsimError
from tests.images_factory import gradient

pytestmark = pytest.mark.slow

# NGA sample paintings with clearly visible faces / figures (checked by eye)
PORTRAITS = ["1128.jpg", "12208.jpg", "1115.jpg", "128004.jpg", "1211.jpg", "111151.jpg"]


@pytest.fixture(scope="module")
def region_catalog(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("regions")
    src = tmp / "src"
    src.mkdir()
    names = PORTRAITS + [
        p.name
        for p in sorted((data_dir / "nga" / "images").glob("*.jpg"))[:12]
        if p.name not in PORTRAITS
    ]
    for n in names:
        (src / n).symlink_to(data_dir / "nga" / "images" / n)
    gradient(300, 200, seed=3).save(src / "no-figure.jpg")
    cat = Catalog.create(tmp / "cat")
    cat.add(src)  # global first, faces and poses added later, incrementally
    summary = Catalog.open(tmp / "cat").add(src, aspects=["face", "pose"])
    return tmp, src, summary


def test_aspects_added_incrementally(region_catalog):
    tmp, src, summary = region_catalog
    assert summary.skipped_existing == 0  # every painting lacked the new aspects
    cat = Catalog.open(tmp / "cat")
    assert set(cat.aspect_names()) == {"global", "local", "face", "pose"}  # local: the default
    faces = cat.aspect("face")
    assert len(faces.done) == len(cat)  # every painting examined, faces or not
    assert "no-figure.jpg" in faces.done and not faces.rows_of_item("no-figure.jpg")
    manifest = json.loads((tmp / "cat" / "manifest.json").read_text())
    assert manifest["aspects"]["face"]["count"] == len(faces)
    # a re-run has nothing left to do
    again = Catalog.open(tmp / "cat").add(src, aspects=["face", "pose"])
    assert again.added == 0 and again.skipped_existing == len(cat)


def test_poses_indexed_with_faces_equal_poses_indexed_alone(region_catalog, tmp_path):
    # indexed together, the pose aspect reuses the face aspect's detection run
    tmp, src, _ = region_catalog
    together = Catalog.open(tmp / "cat").aspect("pose")
    alone_cat = Catalog.create(tmp_path / "alone")
    alone_cat.add(src, aspects=["pose"])
    alone = alone_cat.aspect("pose")
    assert len(together) == len(alone) > 0

    def rows(aspect):  # (painting, keypoints) per figure, in a fixed order
        return sorted(zip(aspect.item_ids, [i["keypoints"] for i in aspect.info], strict=True))

    assert rows(together) == rows(alone)


def test_stored_face_vectors_equal_the_query_path(region_catalog):
    # the indexer batches the look embedding over all faces of a batch (images with none,
    # one or several faces); each row must still get its own face's vectors
    from artsim.catalog.faces import FACE_MAX_SIDE, analyse_faces
    from artsim.images import open_image

    tmp, src, _ = region_catalog
    cat = Catalog.open(tmp / "cat")
    faces = cat.aspect("face")
    counts = {it: len(faces.rows_of_item(it)) for it in cat.ids}
    assert max(counts.values()) >= 2 and min(counts.values()) == 0
    for item_id in [i for i in cat.ids if counts[i]][:6]:
        image = open_image(src / item_id, max_side=FACE_MAX_SIDE).image
        found, identity, look, _ = analyse_faces(image, cat.encoder)
        rows = faces.rows_of_item(item_id)
        assert len(rows) == len(found)
        np.testing.assert_allclose(faces.vectors["identity"][rows], identity, atol=1e-5)
        cos = np.sum(faces.vectors["look"][rows] * look, axis=1) / (
            np.linalg.norm(faces.vectors["look"][rows], axis=1) * np.linalg.norm(look, axis=1)
        )
        assert np.all(cos > 0.99), cos  # bf16 inference: batch composition moves the last bits


def test_face_and_pose_share_one_face_detection_per_image(tmp_path, data_dir, monkeypatch):
    import artsim.detectors.faces as F

    runs = []
    real = F._run_detector
    monkeypatch.setattr(
        F, "_run_detector", lambda image, name: runs.append(name) or real(image, name)
    )
    src = tmp_path / "src"
    src.mkdir()
    for n in PORTRAITS[:2]:
        (src / n).symlink_to(data_dir / "nga" / "images" / n)
    Catalog.create(tmp_path / "cat").add(src, aspects=["pose", "face"], detector_workers=1)
    assert runs == ["ensemble", "ensemble"]  # one per image, not one per image and aspect


def test_face_rows_have_boxes_inside_the_image(region_catalog):
    tmp, _, _ = region_catalog
    cat = Catalog.open(tmp / "cat")
    faces = cat.aspect("face")
    assert len(faces) >= 3
    for item_id, info in zip(faces.item_ids, faces.info, strict=True):
        x, y, w, h = info["box"]
        item = cat.item(item_id)
        assert x >= 0 and y >= 0 and x + w <= item["width"] + 1 and y + h <= item["height"] + 1
        assert (tmp / "cat" / info["chip"]).is_file()


def test_face_search_finds_same_painting_first(region_catalog, tmp_path):
    tmp, src, _ = region_catalog
    cat = Catalog.open(tmp / "cat")
    faces = cat.aspect("face")
    with_face = [p for p in PORTRAITS if faces.rows_of_item(p)]
    assert with_face, "no face found in the pinned portraits"
    copy = tmp_path / "copy.jpg"
    shutil.copy(src / with_face[0], copy)
    hits = cat.search(str(copy), aspect="face", k=3)
    assert hits[0].id == with_face[0] and hits[0].score > 0.99
    assert hits[0].box is not None and hits[0].face_id.startswith(with_face[0])
    # by id: stored faces are reused, the painting itself is excluded
    by_id = cat.search(with_face[0], aspect="face", k=3)
    assert with_face[0] not in [h.id for h in by_id]


def test_query_without_face_is_a_clear_error(region_catalog):
    tmp, src, _ = region_catalog
    cat = Catalog.open(tmp / "cat")
    with pytest.raises(ArtsimError, match="no face found"):
        cat.search(str(src / "no-figure.jpg"), aspect="face")
    with pytest.raises(ArtsimError, match="no figure found"):
        cat.search(str(src / "no-figure.jpg"), aspect="pose")


def test_pose_search_and_fused(region_catalog, tmp_path):
    tmp, src, _ = region_catalog
    cat = Catalog.open(tmp / "cat")
    poses = cat.aspect("pose")
    if not len(poses):
        pytest.skip("no figure detected in this small sample")
    item = poses.item_ids[0]
    copy = tmp_path / "copy.jpg"
    shutil.copy(src / item, copy)
    hits = cat.search(str(copy), aspect="pose", k=3)
    assert hits[0].id == item and hits[0].pose_id and len(hits[0].keypoints) == 33
    assert hits[0].mirrored is None and "mirrored" not in hits[0].to_dict()
    mirrored = cat.search(str(copy), aspect="pose", k=3, mirror=True)
    assert mirrored[0].id == item
    # the copy's figure matches as it is; each hit says whether it matched reversed
    assert mirrored[0].mirrored is False and all(isinstance(h.mirrored, bool) for h in mirrored)
    assert mirrored[0].to_dict()["mirrored"] is False
    # a score floor: only figures scoring at least that are matched
    scores = {rid: info["score"] for rid, info in zip(poses.row_ids, poses.info, strict=True)}
    best: dict[str, float] = {}
    for item_id, info in zip(poses.item_ids, poses.info, strict=True):
        best[item_id] = max(best.get(item_id, 0.0), info["score"])
    if len(best) < 2:
        pytest.skip("figures in fewer than two paintings of this small sample")
    floor = min(best.values()) + 1e-6  # the painting with the weakest figures drops out
    strict = cat.search(str(copy), aspect="pose", k=len(cat), min_score=floor)
    assert strict and all(scores[h.pose_id] >= floor for h in strict)
    assert len(strict) < len(cat.search(str(copy), aspect="pose", k=len(cat)))
    with pytest.raises(ArtsimError, match="between 0 and 1"):
        cat.search(str(copy), aspect="pose", min_score=1.5)
    # by id: the painting itself stays out of its results with a floor too
    by_id = cat.search(item, aspect="pose", k=len(cat), min_score=floor)
    assert item not in [h.id for h in by_id]
    fused = cat.search(str(copy), aspect="fused", k=3)
    assert fused[0].id == item and "global" in fused[0].scores
