"""The app (artsim.server.app): how create_app wires routes, limits and the upload executor.

Each route, the middleware, the errors and the upload executor have their own test modules
(tests/test_routes_*.py, tests/test_server_*.py); their fixtures are in tests/conftest.py."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from artsim.errors import ArtsimError
from artsim.server.app import DEFAULT_MAX_UPLOAD_BYTES, create_app
from tests.server_support import FakeCatalog


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    for route in (
        "/api/search",
        "/api/items/{item_id}",
        "/api/items/{item_id}/thumbnail",
        "/api/map",
        "/api/facets",
        "/healthz",
    ):
        assert route in spec["paths"], route
    assert "post" in spec["paths"]["/api/search"] and "get" in spec["paths"]["/api/search"]
    assert client.get("/docs").status_code == 200


def test_bad_catalog_path_fails_early(tmp_path):
    with pytest.raises(ArtsimError, match="no artsim catalog"):
        create_app(tmp_path / "nothing-here")


def test_limits_and_executor_follow_the_arguments(tmp_path):
    fake = FakeCatalog(tmp_path / "f", n=3)
    app = create_app(
        fake.path, catalog=fake, max_upload_bytes=1234, max_pixels=99, max_concurrent_uploads=3
    )
    state = app.state.artsim
    assert state.limits == {"max_upload_bytes": 1234, "max_pixels": 99}
    # an injected catalog is searched in threads of this process, on the object itself
    assert state.uploads.processes == 3 and state.upload_target is fake
    with TestClient(app) as c:
        info = c.get("/api/info").json()
    assert info["limits"] == {"max_upload_bytes": 1234, "max_pixels": 99}
    assert info["uploads"]["workers"] == 3 and info["uploads"]["in_flight"] == 0
    default = create_app(fake.path, catalog=fake).state.artsim
    assert default.limits["max_upload_bytes"] == DEFAULT_MAX_UPLOAD_BYTES
    assert default.uploads.processes >= 1


def test_a_catalog_path_is_opened_at_startup_not_before(real_catalog):
    app = create_app(real_catalog)
    state = app.state.artsim
    assert state.catalog is None and state.upload_target == str(real_catalog)
    with TestClient(app) as c:
        assert state.catalog is not None and len(state.catalog) == 14
        assert c.get("/healthz").json() == {"status": "ok", "items": 14}
