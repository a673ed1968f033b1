"""JSON errors without stack traces or server paths (artsim.server.errors)."""

from __future__ import annotations


def test_unknown_routes_and_methods_are_json(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and "error" in r.json()
    r = client.delete("/api/search")
    assert r.status_code == 405 and "error" in r.json()


def test_scrub_names_files_never_server_folders(tmp_path):
    from artsim.server.errors import scrub

    cat = tmp_path / "museum-cat"
    assert scrub(f"{cat}/items/part-000001.parquet: truncated", cat) == (
        "museum-cat/items/part-000001.parquet: truncated"
    )
    assert scrub("/data/images/x.jpg: cannot open", cat) == "x.jpg: cannot open"
    assert scrub(r"C:\data\images\y.png: cannot open", cat) == "y.png: cannot open"
    # relative names and ratios are left alone
    assert scrub("images/z.jpg and 3/4 of it", cat) == "images/z.jpg and 3/4 of it"


def test_validation_message_lists_where_and_what():
    from artsim.server.errors import validation_message

    errors = [
        {"loc": ("query", "limit"), "msg": "Input should be greater than or equal to 1"},
        {"loc": ("body", "file"), "msg": "Field required"},
        {"loc": (), "msg": "bad"},
    ]
    assert validation_message(errors) == (
        "invalid request: limit: Input should be greater than or equal to 1; "
        "file: Field required; bad"
    )
    many = [{"loc": ("query", f"p{i}"), "msg": "x"} for i in range(9)]
    assert validation_message(many).count("x") == 5  # at most five, the message stays one line


def test_validation_errors_are_422_json(fake_client):
    r = fake_client.get("/api/items", params={"limit": 0})
    assert r.status_code == 422
    assert r.json()["error"].startswith("invalid request: limit:")
