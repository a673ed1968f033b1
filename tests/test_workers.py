"""Worker pools whose processes die with their parent; native stderr kept quiet."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from artsim.workers import (
    VERBOSE_ENV,
    native_stderr_silenced,
    process_pool,
    set_verbose,
    verbose,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")

# A parent that starts two real workers (a cheap task; no model) and then waits to be killed.
PARENT = """
import sys, time
{make_pool}
list(pool.map(time.sleep, [0.3] * 4))
print("ready", flush=True)
time.sleep(120)
"""
POOLS = {
    "watcher thread": "from artsim.workers import process_pool\npool = process_pool(2)",
    "death signal": "from artsim.workers import process_pool\n"
    "pool = process_pool(2, death_signal=True)",
    "detector pool": "from artsim.catalog.parallel import DetectorPool\npool = DetectorPool(2)",
}


def _gone(proc: psutil.Process) -> bool:
    try:
        # PID 1 in a container may not reap orphans: a zombie holds no memory
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("kind", list(POOLS))
def test_workers_and_resource_tracker_exit_when_the_parent_is_killed(kind: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT.format(make_pool=POOLS[kind])],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    children: list[psutil.Process] = []
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready"
        children = psutil.Process(parent.pid).children(recursive=True)
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2, [c.cmdline() for c in children]
        # spawn starts multiprocessing's resource_tracker too; it lives while any worker does
        assert any("resource_tracker" in " ".join(c.cmdline()) for c in children)
        parent.send_signal(signal.SIGKILL)  # as the out-of-memory killer would
        parent.wait(10)
        deadline = time.monotonic() + 10
        while not all(_gone(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = [c.cmdline() for c in children if not _gone(c)]
        assert not alive, f"still running after the parent was killed: {alive}"
    finally:
        parent.kill()
        for c in children:  # the orphans of a failed run, and only those
            with contextlib.suppress(psutil.NoSuchProcess):
                c.kill()


def test_a_pool_still_shuts_down_normally() -> None:
    with process_pool(2, death_signal=True) as pool:
        pids = set(pool.map(_ppid, range(4)))
    assert pids == {os.getpid()}


def _ppid(_item: object) -> int:
    return os.getppid()


def test_native_stderr_silenced_hides_fd_2_and_restores_it(
    capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VERBOSE_ENV, "0")
    with native_stderr_silenced():
        os.write(2, b"native noise\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
    set_verbose(True)  # monkeypatch restores the variable afterwards
    assert verbose()
    with native_stderr_silenced():
        os.write(2, b"shown with --verbose\n")
    assert capfd.readouterr().err == "shown with --verbose\n"


def test_an_error_inside_the_silenced_block_still_propagates(
    capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VERBOSE_ENV, "0")
    with pytest.raises(ValueError, match="visible"), native_stderr_silenced():
        raise ValueError("visible")
    os.write(2, b"restored\n")
    assert capfd.readouterr().err == "restored\n"


NATIVE_LINES = ("XNNPACK", "inference_feedback_manager", "absl::InitializeLog")


@pytest.mark.slow
def test_cli_hides_native_log_lines_unless_verbose(tmp_path: Path, data_dir: Path) -> None:
    from artsim.catalog import Catalog

    Catalog.create(tmp_path / "cat")
    painting = str(data_dir / "nga" / "images" / "11.jpg")  # figures and faces
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    env.pop(VERBOSE_ENV, None)

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "artsim.cli", *args, str(tmp_path / "cat"), painting],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    quiet = run("pose")  # pose detection also runs the face detector for figure proposals
    assert not [k for k in NATIVE_LINES if k in quiet], quiet
    loud = run("--verbose", "faces")
    assert "XNNPACK" in loud and "inference_feedback_manager" in loud, loud
