"""The artsim web server: an HTTP API over one catalog and a single-page browser for it.

    from artsim.server import create_app
    app = create_app("my-catalog")          # a FastAPI app; serve with uvicorn

or from the command line: `artsim serve my-catalog` (binds 127.0.0.1:8000).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app"]

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(catalog_path: Any, **kwargs: Any) -> FastAPI:
    """See artsim.server.app.create_app (imported lazily: FastAPI is not needed to import artsim)."""
    from artsim.server.app import create_app as _create_app

    return _create_app(catalog_path, **kwargs)
