"""Shared fixtures: where the read-only sample data lives, and small generated images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("ARTSIM_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if not (root / "wikiart").is_dir():
        pytest.skip(f"sample data not found at {root} (set ARTSIM_DATA)")
    return root


# ---------------------------------------------------------------------- the server's tests
# (tests/test_server*.py, tests/test_routes_*.py; the helpers are in tests/server_support.py)
@pytest.fixture(scope="session")
def real_catalog(tmp_path_factory) -> Path:
    """A real catalog of 14 generated paintings (the default aspects: global and local),
    built once per session."""
    from tests.server_support import build_real_catalog

    return build_real_catalog(tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="module")
def client(real_catalog):
    """The app over real_catalog; uploads run in a worker process, stopped with the app."""
    from fastapi.testclient import TestClient

    from artsim.server.app import create_app
    from tests.server_support import upload_workers

    # answer_within: the shared 2-core test machine can take seconds per upload; the time
    # limit itself is tested on the executor (tests/test_server_uploads.py)
    with TestClient(create_app(real_catalog, upload_answer_within=120)) as c:
        yield c
    assert not [p for p in upload_workers() if p.is_running() and p.status() != "zombie"]


@pytest.fixture
def fake(tmp_path):
    from tests.server_support import FakeCatalog

    return FakeCatalog(tmp_path / "fake", n=40)


@pytest.fixture
def fake_client(fake):
    from fastapi.testclient import TestClient

    from artsim.server.app import create_app

    with TestClient(create_app(fake.path, catalog=fake), raise_server_exceptions=False) as c:
        yield c
