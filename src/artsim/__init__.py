"""artsim: find similar paintings in a museum collection.

The pipeline follows the data: sources -> images -> detectors -> encoders ->
catalog -> search -> evaluation / visualisation -> CLI and server.
"""

from __future__ import annotations

from typing import Any

from artsim import facades as _facades

__version__ = "0.1.0"
__all__ = ["ArtsimError", "Catalog", "Face", "Pose", "SearchResult", "SourceItem"]


def __getattr__(name: str) -> Any:
    # Lazy so that `import artsim` (and `artsim --help`) does not pull in torch.
    if name == "Catalog":
        from artsim.catalog import Catalog

        return Catalog
    if name == "ArtsimError":
        from artsim.errors import ArtsimError

        return ArtsimError
    if name in ("Face", "Pose", "SearchResult", "SourceItem"):
        from artsim import records

        return getattr(records, name)
    raise AttributeError(name)


def _search(catalog: Any, query: Any, **options: Any) -> Any:
    from artsim.search import search

    return search(catalog, query, **options)


# the package root wires the search stage into Catalog.search (artsim/facades.py says why)
_facades.search = _search
