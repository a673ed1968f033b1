"""Worker processes that die with their parent, and native log lines kept off the terminal.

`process_pool(workers, initializer)` is the one way artsim starts model-holding worker
processes (the catalog's detector pool, the server's upload workers): a standard
`concurrent.futures.ProcessPoolExecutor` on the "spawn" context (MediaPipe and torch keep
threads, so forking a process that loaded them is unsafe), whose workers exit when the parent
dies, even by kill -9 or the out-of-memory killer. Without that, each orphaned worker kept its
~700 MB of models, and multiprocessing's resource_tracker (whose pipe the workers hold) stayed
too. Two mechanisms, because each alone has a gap:

- every platform: a daemon thread in the worker waits on multiprocessing's parent sentinel (a
  pipe whose other end only the parent holds) and exits the worker when it closes;
- Linux, on request: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, which also kills a worker busy in C++
  code that holds the GIL. The kernel sends it when the *thread* that started the worker exits,
  so use it only when that thread lives as long as the pool (the catalog's indexing thread does;
  a server's request threads do not).

`native_stderr_silenced()` sends what C/C++ libraries write to file descriptor 2 (TFLite's
"Created TensorFlow Lite XNNPACK delegate", absl's "W0000 … inference_feedback_manager") to
/dev/null for the duration of a block, unless ``ARTSIM_VERBOSE`` is set (`artsim --verbose`).
Environment variables such as GLOG_minloglevel do not reach those lines; only the file
descriptor does. Spawned workers inherit the variable, so they follow the parent's choice.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

VERBOSE_ENV = "ARTSIM_VERBOSE"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# fd 2 is one per process: redirections from two threads must not interleave (the second would
# save /dev/null as "the original" and leave stderr silenced for good)
_STDERR_LOCK = threading.RLock()


def verbose() -> bool:
    """True when native libraries' log lines should reach the terminal (`artsim --verbose`)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def set_verbose(on: bool) -> None:
    """Show (True) or hide native log lines in this process and the workers it starts later."""
    if on:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null inside the block (no-op with --verbose or without /dev/null).

    Keep blocks short: Python's own writes to stderr from other threads are lost meanwhile.
    Exceptions raised inside still propagate, so errors stay visible.
    """
    if verbose():
        yield
        return
    with _STDERR_LOCK:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all (a detached process): nothing to silence
            saved = -1
        try:
            if saved >= 0:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 2)
                os.close(null)
            yield
        finally:
            if saved >= 0:
                os.dup2(saved, 2)
                os.close(saved)


def die_with_parent(parent_pid: int, *, death_signal: bool = False) -> None:
    """Make this (worker) process exit when its parent process does.

    Call it in the worker, first thing. `death_signal` adds Linux's PR_SET_PDEATHSIG (see the
    module docstring for when that is safe); elsewhere it is a no-op.
    """
    if death_signal and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_exit_when_done, args=(parent,), name="artsim-parent-watch", daemon=True
        ).start()
    # the parent may have died before the signal or the thread were in place
    if os.getppid() != parent_pid:
        os._exit(1)


def _exit_when_done(parent: Any) -> None:
    parent.join()  # returns when the parent's end of the sentinel pipe closes: it has exited
    os._exit(1)


def _init_worker(
    parent_pid: int,
    death_signal: bool,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
) -> None:
    die_with_parent(parent_pid, death_signal=death_signal)
    if initializer is not None:
        initializer(*initargs)


def process_pool(
    workers: int,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    *,
    death_signal: bool = False,
    max_tasks_per_child: int | None = None,
) -> ProcessPoolExecutor:
    """A spawn-context ProcessPoolExecutor whose workers exit when this process dies.

    `initializer(*initargs)` runs once in each worker (load models there, so that each worker
    loads them once); it must be importable (a module-level function). Workers start on the
    first submit, from the submitting thread. `death_signal`: see `die_with_parent`.
    """
    return ProcessPoolExecutor(
        max_workers=max(1, int(workers)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(), death_signal, initializer, tuple(initargs)),
        max_tasks_per_child=max_tasks_per_child,
    )
