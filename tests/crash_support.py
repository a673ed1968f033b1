"""A kill -9 in the middle of a run, in-process: the nth catalog write raises, and the run's
clean-up is skipped, as it would be for a killed process (tests/test_catalog.py, test_local.py)."""

from __future__ import annotations

from artsim.catalog import Catalog, store


class Killed(BaseException):
    """Not an Exception: nothing in artsim may catch it, as nothing survives a kill."""


def kill_at_write(monkeypatch, n: int) -> None:
    """Make the nth `store.atomic_write_table` of this test raise Killed before writing."""
    real_write = store.atomic_write_table
    writes = []

    def write(where, table):
        writes.append(where)
        if len(writes) == n:
            raise Killed
        real_write(where, table)

    monkeypatch.setattr(store, "atomic_write_table", write)
    monkeypatch.setattr(Catalog, "_finish_run", lambda self, **kw: None)  # as kill -9: no clean-up
