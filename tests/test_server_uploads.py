"""The upload executor (artsim.server.uploads): admission with 503 and Retry-After, the time
limit, a worker restarted after a crash."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from artsim.server.app import create_app
from tests.server_support import FakeCatalog, jpeg_bytes, upload_workers


def test_upload_after_a_worker_was_killed(client):
    import signal

    first = client.post("/api/search", files={"file": ("a.jpg", jpeg_bytes(seed=11))})
    assert first.status_code == 200
    workers = upload_workers()
    assert workers
    for w in workers:
        w.send_signal(signal.SIGKILL)
        w.wait(10)
    again = client.post("/api/search", files={"file": ("a.jpg", jpeg_bytes(seed=11))})
    assert again.status_code == 200, again.text
    assert again.json()["results"] == first.json()["results"]
    assert {w.pid for w in upload_workers()}.isdisjoint({w.pid for w in workers})


def _executor(**kwargs):
    from concurrent.futures import ThreadPoolExecutor

    from artsim.server.uploads import UploadExecutor

    return UploadExecutor(lambda: ThreadPoolExecutor(max_workers=1), 1, **kwargs)


def _blocked(gate, value):
    import threading

    gate.wait(30)
    return threading.get_ident(), 0.01, value


def test_uploads_over_the_queue_limit_get_503_at_once():
    import asyncio
    import threading

    from fastapi import HTTPException

    ex = _executor(max_waiting=1)
    gate = threading.Event()

    async def scenario():
        running = asyncio.ensure_future(ex.run(_blocked, gate, "a"))
        queued = asyncio.ensure_future(ex.run(_blocked, gate, "b"))
        await asyncio.sleep(0.05)
        with pytest.raises(HTTPException) as refused:
            await ex.run(_blocked, gate, "c")
        gate.set()
        return refused.value, await running, await queued

    try:
        refused, a, b = asyncio.run(scenario())
    finally:
        gate.set()
        ex.close()
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
    assert (a, b) == ("a", "b")


def test_an_upload_that_takes_too_long_is_503():
    import asyncio
    import threading

    from fastapi import HTTPException

    ex = _executor(answer_within=0.2, cold_timeout=0.2)
    gate = threading.Event()
    try:
        with pytest.raises(HTTPException) as err:
            asyncio.run(ex.run(_blocked, gate, "slow"))
    finally:
        gate.set()
        ex.close()
    assert err.value.status_code == 503 and "Retry-After" in err.value.headers


def test_a_busy_server_refuses_uploads_before_reading_them(tmp_path):
    from fastapi import HTTPException

    fake = FakeCatalog(tmp_path / "f", n=3)
    app = create_app(fake.path, catalog=fake, max_concurrent_uploads=1)
    uploads = app.state.artsim.uploads
    held = []
    with pytest.raises(HTTPException):
        while len(held) < 1000:
            held.append(uploads.admit())
    assert len(held) == 1 + uploads.max_waiting
    with TestClient(app) as c:
        r = c.post("/api/search", files={"file": ("x.txt", b"not an image")})
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        for h in held:
            h.release()
        r = c.post("/api/search", files={"file": ("x.txt", b"not an image")})
        assert r.status_code == 415
        assert uploads.inflight == 0  # a refused upload gives its place back


def test_admission_counts_places_and_releases_each_once():
    ex = _executor(max_waiting=2)
    try:
        held = [ex.admit() for _ in range(3)]  # one running + two waiting
        assert ex.inflight == 3
        with pytest.raises(HTTPException) as err:
            ex.admit()
        assert err.value.status_code == 503 and err.value.headers["Retry-After"] == "1"
        held[0].release()
        held[0].release()  # a second release gives nothing back twice
        assert ex.inflight == 2
        stats = ex.stats()
        assert stats["workers"] == 1 and stats["in_flight"] == 2 and stats["max_waiting"] == 2
        assert stats["seconds_per_upload"] is None  # nothing measured yet
    finally:
        ex.close()


def test_expected_wait_and_retry_after_follow_the_measured_service_time():
    ex = _executor()
    ex._service_s = 2.0
    assert ex.expected_wait(0) == 2.0 and ex.expected_wait(3) == 8.0
    assert ex.retry_after() == "2"
    ex._service_s = 500.0
    assert ex.retry_after() == "30"  # capped: a client should not be told to wait minutes


def test_a_warm_pool_refuses_what_it_could_not_answer_in_time():
    import asyncio

    ex = _executor(answer_within=6.0)  # admits an upload expected within 1 s (a sixth)
    try:
        # one job measures the service time and warms the pool
        assert asyncio.run(ex.run(lambda: (1, 0.6, "done"))) == "done"
        assert ex.warm and ex.stats()["seconds_per_upload"] == 0.6
        first = ex.admit()  # runs at once
        with pytest.raises(HTTPException):
            ex.admit()  # would wait 0.6 s, then take 0.6 s: 1.2 s > 1 s
        first.release()
    finally:
        ex.close()


def test_search_upload_returns_worker_time_and_results(tmp_path):
    from artsim.search.options import SearchOptions
    from artsim.server.uploads import search_upload

    fake = FakeCatalog(tmp_path / "f", n=5)
    opts = SearchOptions.parse(aspect="global", k=2, where=["artist=alice"])
    worker, seconds, results = search_upload(fake, jpeg_bytes(), "upload:x", opts)
    assert worker > 0 and seconds >= 0
    assert [r.metadata["artist"] for r in results] == ["Alice Painter"] * len(results)
    assert 1 <= len(results) <= 2
    assert fake.calls[-1]["where"] == ["artist=alice"] and fake.calls[-1]["k"] == 2


def test_a_worker_warms_the_keypoint_vote_index_of_photo_queries(tmp_path, monkeypatch) -> None:
    """A catalog indexed with the local aspect before votes existed (no index on disk):
    each upload worker loads or builds it when it starts, not the first uploaded photo."""
    import artsim.catalog.local_votes as lv
    from artsim.catalog import Catalog
    from artsim.server.uploads import warm_worker
    from tests.test_paintings import generated_painting

    monkeypatch.setattr(lv, "MIN_PAINTINGS", 1)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        generated_painting(60 + i, 420, 320).save(src / f"p{i}.jpg", quality=92)
    cat = Catalog.create(tmp_path / "cat")
    cat.add(src, aspects=["global", "local"])
    for f in cat.path.glob("cache/local-*/votes-*"):
        f.unlink()
    warm_worker(str(cat.path))
    assert list(cat.path.glob("cache/local-*/votes-*.json"))
