"""Entry points a lower stage offers for a higher one, bound late so that imports point one way.

`Catalog.search` reads well for users, but the search stage depends on the catalog, so the
catalog may not import search. `Catalog.search` calls `facades.search`, which the package root
(`artsim/__init__.py`, run before any artsim module) binds to `artsim.search.search`, imported
on first use. tests/test_imports.py checks that the import graph has no circle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _unbound(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("artsim.facades.search is bound by the artsim package root")


search: Callable[..., Any] = _unbound  # rebound by artsim/__init__.py
