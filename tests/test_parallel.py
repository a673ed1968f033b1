"""Detector worker processes for the face and pose aspects."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest

from artsim.catalog.faces import find_faces
from artsim.catalog.parallel import (
    MAX_DEFAULT_WORKERS,
    MIN_IMAGES_FOR_WORKERS,
    DetectorPool,
    default_workers,
)
from artsim.catalog.poses import analyse_poses
from artsim.errors import ArtsimError
from artsim.images import open_image


def test_default_workers_is_bounded() -> None:
    assert 1 <= default_workers() <= MAX_DEFAULT_WORKERS


def test_small_batches_and_one_worker_run_in_process() -> None:
    with DetectorPool(2) as pool:
        assert pool.map(os.getpid, []) == []
        out = pool.map(functools.partial(_pid_plus, 1), list(range(MIN_IMAGES_FOR_WORKERS - 1)))
        assert out == [os.getpid() + 1] * (MIN_IMAGES_FOR_WORKERS - 1)
        assert pool._pool is None
    with DetectorPool(1) as pool:
        out = pool.map(functools.partial(_pid_plus, 0), list(range(10)))
        assert set(out) == {os.getpid()} and pool._pool is None


def _pid_plus(n: int, _item: object) -> int:
    return os.getpid() + n


@pytest.mark.slow
def test_workers_find_the_same_faces_and_poses_as_the_main_process(data_dir: Path) -> None:
    paths = sorted((data_dir / "nga" / "images").glob("*.jpg"))[:6]
    images = [open_image(p, max_side=512).image for p in paths]
    with DetectorPool(2) as pool:
        remote = pool.map(find_faces, images)
        remote_poses = pool.map(analyse_poses, images)
        pids = pool.map(functools.partial(_pid_plus, 0), list(range(8)))
    assert os.getpid() not in pids  # it really ran elsewhere
    local = [find_faces(im) for im in images]
    assert sum(len(f.faces) for f in local) > 0
    for a, b in zip(local, remote, strict=True):
        assert a.faces == b.faces
        np.testing.assert_allclose(a.identity, b.identity, atol=1e-5)
        assert [c.tobytes() for c in a.chips] == [c.tobytes() for c in b.chips]
    for im, (poses, desc) in zip(images, remote_poses, strict=True):
        local_poses, local_desc = analyse_poses(im)
        assert poses == local_poses
        np.testing.assert_array_equal(desc, local_desc)


def _die(_item: object) -> None:
    os._exit(3)  # a worker killed, as by the out-of-memory killer


@pytest.mark.slow
def test_a_dead_worker_is_a_clear_error_and_later_small_batches_use_the_pool() -> None:
    with DetectorPool(2) as pool:
        pids = pool.map(functools.partial(_pid_plus, 0), list(range(MIN_IMAGES_FOR_WORKERS)))
        assert os.getpid() not in pids
        # once the workers run, a last small batch goes to them too (no models in this process)
        assert os.getpid() not in pool.map(functools.partial(_pid_plus, 0), [0])
        with pytest.raises(ArtsimError, match=r"detector worker process died.*--detector-workers"):
            pool.map(_die, list(range(MIN_IMAGES_FOR_WORKERS)))


@pytest.mark.slow
def test_catalog_with_workers_stores_what_the_main_process_stores(tmp_path, data_dir) -> None:
    from artsim.catalog import Catalog

    src = tmp_path / "src"
    src.mkdir()
    for p in sorted((data_dir / "nga" / "images").glob("*.jpg"))[:8]:
        (src / p.name).symlink_to(p)
    pooled = Catalog.create(tmp_path / "pooled")
    # half the paintings get their faces first: in the face+pose run their poses need a face
    # detection of their own, the other half's reuse the face aspect's run
    pooled.add(src, aspects=["face"], limit=4, detector_workers=2)
    pooled.add(src, aspects=["face", "pose"], detector_workers=2)
    local = Catalog.create(tmp_path / "local")
    local.add(src, aspects=["face", "pose"], detector_workers=1)

    def rows(cat: Catalog, aspect: str, key: str) -> list:
        a = Catalog.open(cat.path).aspect(aspect)
        return sorted(zip(a.item_ids, [i[key] for i in a.info], strict=True))

    assert rows(pooled, "face", "box") == rows(local, "face", "box")
    assert len(rows(local, "face", "box")) > 0
    assert rows(pooled, "pose", "keypoints") == rows(local, "pose", "keypoints")
    assert len(rows(local, "pose", "keypoints")) > 0
    a, b = Catalog.open(pooled.path).aspect("face"), Catalog.open(local.path).aspect("face")
    order_a = np.argsort([f"{i}{x['box']}" for i, x in zip(a.item_ids, a.info, strict=True)])
    order_b = np.argsort([f"{i}{x['box']}" for i, x in zip(b.item_ids, b.info, strict=True)])
    np.testing.assert_allclose(
        a.vectors["identity"][order_a], b.vectors["identity"][order_b], atol=1e-5
    )
