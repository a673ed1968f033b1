"""JSON errors without stack traces or server paths (artsim.server.errors)."""

from __future__ import annotations


def test_unknown_routes_and_methods_are_json(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and "error" in r.json()
    r = client.delete("/api/search")
    assert r.status_code == 405 and "error" in r.json()
