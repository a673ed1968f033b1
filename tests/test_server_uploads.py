"""The upload executor (artsim.server.uploads): admission with 503 and Retry-After, the time
limit, a worker restarted after a crash."""

from __future__ import annotations

import pytest
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
