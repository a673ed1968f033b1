"""Indexing on a real local Ray cluster equals the in-process pipeline; resume, failures,
a worker killed mid-batch, an unreachable cluster."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from artsim.catalog import Catalog  # noqa: E402
from artsim.catalog.distributed import EmbedActor, add_with_ray, check_address  # noqa: E402
from artsim.errors import ArtsimError  # noqa: E402
from tests.images_factory import gradient  # noqa: E402


def test_unreachable_address_fails_fast():
    t = time.perf_counter()
    with pytest.raises(ArtsimError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:9"):
        check_address("127.0.0.1:9", timeout=2)
    assert time.perf_counter() - t < 10


class CrashOnce(EmbedActor):
    """Kills its worker process on its first batch (once per test: a marker file next to
    the catalog; workers do not see environment changes made after ray.init)."""

    def __call__(self, batch):
        marker = self.catalog.path.parent / "crashed"
        if not marker.exists():
            marker.write_text("crashed")
            os._exit(1)
        return super().__call__(batch)


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    src = tmp_path_factory.mktemp("raysrc")
    for i in range(8):
        gradient(100 + 12 * i, 80, seed=i).save(src / f"img{i}.jpg", quality=92)
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    return src


def _vectors(cat: Catalog) -> dict[str, np.ndarray]:
    data = cat.aspect("global")
    return dict(zip(data.item_ids, data.vectors["global"], strict=True))


@pytest.mark.slow
def test_ray_catalog_equals_in_process_one(cluster, source, tmp_path):
    local = Catalog.create(tmp_path / "local")
    local.add(source, batch_size=4)
    dist = Catalog.create(tmp_path / "ray")
    # resume: a first run of 3 items, then the whole source with a worker killed mid-batch
    first = add_with_ray(dist, source, limit=3, batch_size=2, num_workers=2)
    assert first.added + first.failed == 3 and first.added >= 2
    s = add_with_ray(dist, source, batch_size=2, num_workers=2, actor_cls=CrashOnce)
    assert (tmp_path / "crashed").exists()  # a worker did die, and its batch was re-run
    assert s.skipped_existing == first.added and s.added == 8 - first.added and s.failed == 1
    dist = Catalog.open(tmp_path / "ray")
    assert sorted(dist.ids) == sorted(local.ids)
    # no aspects asked for: a new catalog's default, global + local, on either engine
    from artsim.catalog.local import local_store

    assert set(dist.manifest["aspects"]) == set(local.manifest["aspects"]) == {"global", "local"}
    assert len(local_store(dist)) == len(dist)
    a, b = _vectors(local), _vectors(dist)
    assert a.keys() == b.keys()
    assert min(float(a[k] @ b[k]) for k in a) >= 0.999
    assert [r["where"] for r in dist.failures()] == [r["where"] for r in local.failures()]
    assert "broken.jpg" in (tmp_path / "ray" / "failures.csv").read_text()
    # a re-run has nothing left to do
    again = add_with_ray(dist, source, batch_size=2, num_workers=2)
    assert again.added == 0 and again.skipped_existing == 8 and again.failed == 1


@pytest.mark.slow
def test_ray_writes_the_local_aspect_as_the_in_process_pipeline(cluster, tmp_path):
    """The actors return the local features in the rows; the driver stores them first."""
    from artsim.catalog.local import LocalStore, extract_local
    from artsim.detectors.keypoints import LOCAL_DECODE_SIDE
    from artsim.images import open_image
    from tests.test_paintings import generated_painting

    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        generated_painting(60 + i, 400 + 80 * i, 330).save(src / f"p{i}.jpg", quality=92)
    dist = Catalog.create(tmp_path / "ray")
    s = add_with_ray(dist, src, aspects=["global", "local"], batch_size=2, num_workers=2)
    assert s.added == 4 and s.aspects["local"] == 4
    cat = Catalog.open(tmp_path / "ray")
    assert cat.info()["aspects"]["local"]["items_done"] == 4
    stored = LocalStore(cat)
    for item_id in cat.ids:
        got = stored.get(item_id)
        side = max(LOCAL_DECODE_SIDE, cat.encoder.preprocess.resize)  # Catalog.add's
        fresh = extract_local(open_image(cat.image_of(item_id), max_side=side).image)
        assert got is not None and np.array_equal(got.desc, fresh.desc)
