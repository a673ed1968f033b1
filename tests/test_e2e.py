"""End to end on real paintings from ../shared/data: index 200, search, resume after kill -9,
add incrementally, and a source full of bad files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artsim.catalog import Catalog
from tests.images_factory import write_awkward_set

pytestmark = pytest.mark.slow


def _link_sample(data_dir: Path, dest: Path, n: int, offset: int = 0) -> list[str]:
    """A folder of n real WikiArt paintings (symlinks, nothing copied)."""
    files = sorted((data_dir / "wikiart" / "images" / "Baroque").glob("*.jpg"))[offset : offset + n]
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        (dest / f.name).symlink_to(f)
    return [f.name for f in files]


def _index_cmd(src: Path, cat: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "artsim.cli", "index", str(src), "--catalog", str(cat), *extra]


def test_index_200_search_and_incremental(data_dir, tmp_path):
    src = tmp_path / "src"
    names = _link_sample(data_dir, src, 200)
    cat = Catalog.create(tmp_path / "cat")
    summary = cat.add(src, batch_size=32)
    assert summary.added == 200 and summary.failed == 0
    # each painting finds itself first when queried by file bytes under another name
    probe = tmp_path / "probe.jpg"
    probe.write_bytes((src / names[17]).read_bytes())
    hits = cat.search(str(probe), k=5)
    assert hits[0].id == names[17] and hits[0].score > 0.99
    # and an id query returns 5 others, best first
    hits = cat.search(names[17], k=5)
    assert len(hits) == 5 and names[17] not in [h.id for h in hits]
    # incremental: 20 more, only those embedded
    _link_sample(data_dir, src, 20, offset=200)
    again = Catalog.open(tmp_path / "cat").add(src)
    assert again.added == 20 and again.skipped_existing == 200
    assert len(Catalog.open(tmp_path / "cat")) == 220


def test_kill_9_mid_index_leaves_valid_catalog_and_resumes(data_dir, tmp_path):
    src = tmp_path / "src"
    _link_sample(data_dir, src, 200, offset=300)
    cat_dir = tmp_path / "cat"
    proc = subprocess.Popen(
        _index_cmd(src, cat_dir, "--batch-size", "8"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    parts_dir = cat_dir / "vectors" / "global" / "efficientnet-lite2"
    while time.time() < deadline and proc.poll() is None:
        if len(list(parts_dir.glob("part-*.parquet"))) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "indexing finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = Catalog.open(cat_dir)  # valid after kill -9
    n_partial = len(partial)
    assert 0 < n_partial < 200
    assert len(partial.search(partial.ids[0], k=3)) == 3
    res = subprocess.run(_index_cmd(src, cat_dir), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    assert (
        f"{n_partial} already in the catalog" in res.stdout
        or "already in the catalog" in res.stdout
    )
    final = Catalog.open(cat_dir)
    assert len(final) == 200
    assert len(set(final.aspect("global").row_ids)) == 200


def test_sigint_saves_progress(data_dir, tmp_path):
    src = tmp_path / "src"
    _link_sample(data_dir, src, 120, offset=600)
    cat_dir = tmp_path / "cat"
    proc = subprocess.Popen(
        _index_cmd(src, cat_dir, "--batch-size", "8"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a runner started in the background (nohup, &) ignores SIGINT and children inherit
        # that; what is simulated here is Ctrl-C in a terminal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    parts_dir = cat_dir / "vectors" / "global" / "efficientnet-lite2"
    deadline = time.time() + 600
    while (
        time.time() < deadline
        and len(list(parts_dir.glob("part-*.parquet"))) < 2
        and proc.poll() is None
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "re-run" in err
    assert 0 < len(Catalog.open(cat_dir)) < 120


def test_awkward_inputs_next_to_real_ones(data_dir, tmp_path):
    src = tmp_path / "src"
    _link_sample(data_dir, src, 10, offset=900)
    write_awkward_set(src / "awkward")
    big = data_dir / "nga" / "images_fullres"
    for f in sorted(big.glob("*.jpg"))[:2]:
        (src / f"full-{f.name}").symlink_to(f)
    cat = Catalog.create(tmp_path / "cat")
    summary = cat.add(src)
    assert summary.failed == 5
    assert summary.added == 10 + 8 + 2
    assert (tmp_path / "cat" / "failures.csv").read_text().count("\n") == 6
