"""The command line: help on every command, one-line errors, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from artsim.cli import app
from tests.images_factory import gradient

runner = CliRunner()


@pytest.mark.parametrize(
    "cmd", [[], ["index"], ["search"], ["info"], ["models"], ["nga", "index"], ["nga", "show"]]
)
def test_help(cmd):
    result = runner.invoke(app, [*cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "artsim.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_user_errors_are_one_line_no_traceback(tmp_path):
    res = _run("search", str(tmp_path / "nocat"), "x")
    assert res.returncode == 2
    assert res.stderr.strip().startswith("artsim: error:") and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = _run("index", str(tmp_path / "missing"), "--catalog", str(tmp_path / "c"))
    assert res.returncode == 2 and "no such file" in res.stderr


def test_input_size_is_chosen_when_a_catalog_is_created(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        gradient(90, 120, seed=i).save(src / f"{i}.jpg")
    cat = str(tmp_path / "cat")
    args = ["index", str(src), "--catalog", cat, "--aspects", "global"]
    res = runner.invoke(app, [*args, "--input-size", "240"])
    assert res.exit_code == 0, res.output
    assert (
        json.loads((tmp_path / "cat" / "manifest.json").read_text())["model"]["preprocess"]["crop"]
        == 240
    )
    info = runner.invoke(app, ["info", cat])
    assert "240 px" in info.output
    # another size for the same catalog: refused, naming the catalog's own
    res = _run(*args, "--input-size", "224")
    assert res.returncode == 2 and "runs at 240 px, not 224" in res.stderr
    res = _run(*args, "--input-size", "64")
    assert res.returncode == 2 and "--input-size" in res.stderr and "128" in res.stderr


def test_index_search_info_json(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        gradient(100, 100, seed=i).save(src / f"{i}.jpg")
    (src / "broken.jpg").write_bytes(b"")
    res = _run("index", str(src), "--catalog", str(tmp_path / "cat"), "--batch-size", "2")
    assert res.returncode == 0, res.stderr
    assert "indexed 5 new images" in res.stdout and "1 unreadable" in res.stdout
    res = _run("search", str(tmp_path / "cat"), "0.jpg", "-k", "3", "--json")
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)
    assert len(hits) == 3 and {"id", "score", "image"} <= set(hits[0])
    res = _run("info", str(tmp_path / "cat"))
    assert "paintings 5" in res.stdout and "failures  1" in res.stdout
    res = _run("search", str(tmp_path / "cat"), "0.jpg", "--where", "bogus")
    assert res.returncode == 2 and "bad filter" in res.stderr


def test_models_lists_offline_status():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    line = next(ln for ln in result.output.splitlines() if ln.startswith("efficientnet-lite2"))
    assert "1400" in line and "yes" in line
    assert "dinov2-small" in result.output
    assert "this CPU: " in result.output and "backend auto here: " in result.output


def test_options_of_another_aspect_and_bad_output_paths_are_errors(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        gradient(64, 64, seed=i).save(src / f"{i}.jpg")
    assert (
        runner.invoke(app, ["index", str(src), "--catalog", str(tmp_path / "cat")]).exit_code == 0
    )
    cat = str(tmp_path / "cat")
    for args, message in (
        (["--face", "1"], "--face applies only with --aspect face"),
        (["--aspect", "face", "--figure", "2"], "--figure applies only with --aspect pose"),
        (["--aspect", "face", "--mirror"], "--mirror applies only with --aspect pose or"),
        (["--aspect", "pose", "--box", "1,2,3,4"], "--box applies only with --aspect face"),
        (["--weights", "face=2"], "--weights applies only with --aspect fused"),
        (["--min-score", "0.4"], "--min-score applies only with --aspect pose"),
        (["--aspect", "face", "--box", "10,10,0,0"], "width and height must be positive"),
        (["--aspect", "face", "--box", "1,2,nan,5"], "finite numbers"),
        (["--aspect", "Pose", "--figure", "1"], "unknown aspect 'Pose'"),
        (["--photo", "maybe"], "photo 'maybe': choose auto or off"),
    ):
        res = runner.invoke(app, ["search", cat, "0.jpg", *args])
        assert res.exit_code == 2 and message in res.output, (args, res.output)
    # refused before any detection runs, so no model is needed to see these
    res = runner.invoke(app, ["pose", cat, "0.jpg", "--draw", str(tmp_path / "out")])
    assert res.exit_code == 2 and "picture extension" in res.output
    res = runner.invoke(app, ["pose", cat, "0.jpg", "--draw", str(src)])
    assert res.exit_code == 2 and "picture extension" in res.output  # a folder has none either
    res = runner.invoke(app, ["pose", cat, "0.jpg", "--draw", str(tmp_path / "out.psd")])
    assert res.exit_code == 2 and "picture extension" in res.output  # Pillow reads PSD only
    (tmp_path / "crops.txt").write_text("x")
    res = runner.invoke(app, ["faces", cat, "0.jpg", "--save-crops", str(tmp_path / "crops.txt")])
    assert res.exit_code == 2 and "is a file; give a folder" in res.output
