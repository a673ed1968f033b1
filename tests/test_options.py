"""SearchOptions: one validation for the Python API, the CLI and the HTTP API."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from artsim.catalog import Catalog
from artsim.records import SourceItem
from artsim.search.options import OptionError, SearchOptions
from artsim.server.app import create_app
from tests.images_factory import gradient


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("options")
    items = []
    for i in range(4):
        path = root / f"{i}.jpg"
        gradient(96, 80, seed=i).save(path)
        meta = {
            "title": f"Study {i}",
            "artist": "Alice; Bob" if i % 2 else "Carla",
            "year": 1600 + i,
        }
        items.append(SourceItem(f"{i}.jpg", str(path), meta))
    cat = Catalog.create(root / "cat")
    cat.add(items)
    return root / "cat"


BAD = [
    # (options as the CLI flags, as HTTP / Python keyword values, the message)
    (
        ["--aspect", "fused", "--weights", "global=nan"],
        {"aspect": "fused", "weights": "global=nan"},
        "weights 'global=nan': weights must be finite numbers >= 0",
    ),
    (
        ["--aspect", "fused", "--weights", "global=1,colour=2"],
        {"aspect": "fused", "weights": "global=1,colour=2"},
        "weights 'global=1,colour=2': unknown aspect 'colour' (global, face, pose)",
    ),
    (
        ["--where", "year>=12abc"],
        {"where": "year>=12abc"},
        "bad filter 'year>=12abc': '12abc' is not a number",
    ),
    (
        ["--where", "artist"],
        {"where": "artist"},
        "bad filter 'artist': expected FIELD=VALUE, FIELD>=N or FIELD=LOW..HIGH "
        "(e.g. artist=rembrandt, year=1600..1650)",
    ),
    (
        ["--aspect", "face", "--box", "1,2,3"],
        {"aspect": "face", "box": "1,2,3"},
        "box '1,2,3': expected x,y,w,h in pixels",
    ),
    (
        ["--aspect", "colour"],
        {"aspect": "colour"},
        "unknown aspect 'colour'; choose from global, face, pose, fused",
    ),
]


@pytest.mark.parametrize(("flags", "values", "message"), BAD)
def test_same_error_from_cli_python_and_http(catalog, flags, values, message):
    from artsim.cli import app

    res = CliRunner().invoke(app, ["search", str(catalog), "0.jpg", *flags])
    assert res.exit_code == 2 and f"artsim: error: {message}\n" in res.output, res.output
    assert "Traceback" not in res.output

    cat = Catalog.open(catalog)
    with pytest.raises(OptionError) as err:
        cat.search("0.jpg", **values)
    assert str(err.value) == message
    with pytest.raises(OptionError) as err:
        SearchOptions.parse(**values)
    assert str(err.value) == message

    with TestClient(create_app(catalog, catalog=cat)) as client:
        r = client.get("/api/search", params={"id": "0.jpg", **values})
    assert r.status_code == 400 and r.json() == {"error": message}


def test_python_values_and_strings_give_the_same_options():
    a = SearchOptions.parse(aspect="fused", k="5", weights="global=1,face=2", mirror="true",
                            box="1,2,3,4", figure="0", where="artist=a;year=1600..1700")  # fmt: skip
    b = SearchOptions.parse(aspect="fused", k=5, weights={"global": 1, "face": 2.0}, mirror=True,
                            box=(1, 2, 3, 4), figure=0, where=["artist=a", "year=1600..1700"])  # fmt: skip
    assert a == b
    assert a.aspect_options() == {"weights": {"global": 1.0, "face": 2.0}, "mirror": True,
                                  "face": None, "box": (1.0, 2.0, 3.0, 4.0), "figure": 0}  # fmt: skip


@pytest.mark.parametrize(
    ("values", "option"),
    [
        ({"k": 0}, "k"),
        ({"k": "2.5"}, "k"),
        ({"k": True}, "k"),
        ({"aspect": "pose", "min_score": "nan"}, "min_score"),
        ({"aspect": "pose", "min_score": 1.5}, "min_score"),
        ({"aspect": "pose", "mirror": "maybe"}, "mirror"),
        ({"aspect": "face", "face": -1}, "face"),
        ({"aspect": "fused", "weights": {"global": float("inf")}}, "weights"),
        ({"aspect": "fused", "weights": "global=0,face=0"}, "weights"),
        ({"aspect": "face", "box": "1,2,inf,4"}, "box"),
    ],
)
def test_bad_values_name_their_option(values, option):
    with pytest.raises(OptionError) as err:
        SearchOptions.parse(**values)
    assert err.value.option == option and str(err.value).startswith(option)


def test_strict_refuses_options_the_aspect_does_not_read():
    assert SearchOptions.parse(aspect="global", mirror=True).mirror is False  # HTTP: ignored
    with pytest.raises(OptionError, match="mirror applies only with aspect pose or fused"):
        SearchOptions.parse(aspect="global", mirror=True, strict=True)


def test_joined_names_in_a_where_string_work_from_python(catalog):
    # `where="artist==A; B"` worked over HTTP and raised in parse_where
    hits = Catalog.open(catalog).search("0.jpg", k=5, where="artist==Alice; Bob")
    assert sorted(r.id for r in hits) == ["1.jpg", "3.jpg"]


def test_options_cross_process_boundaries():
    import pickle

    opts = SearchOptions.parse(aspect="face", box="1,2,3,4")
    assert pickle.loads(pickle.dumps(opts)) == opts
    err = pickle.loads(pickle.dumps(OptionError("k", "k 0: must be from 1 to 100", named=True)))
    assert err.option == "k" and str(err) == "k 0: must be from 1 to 100"
