"""HTTP API and web page over one catalog.

Routes (all JSON errors are {"error": message}; see docs/web.md):
  GET  /                                   the web page (static files, no build step, no CDN)
  GET  /api/info                           catalog name, size, aspects, limits
  GET  /api/search?id=...&aspect=...&k=... search from a catalog painting
  POST /api/search                         search from an uploaded image (multipart field `file`)
  GET  /api/items?offset=&limit=&where=    browse the collection
  GET  /api/items/{id}                     one painting: metadata, faces, poses
  GET  /api/items/{id}/thumbnail?size=     JPEG thumbnail from the disk cache
  GET  /api/map                            2-D coordinates of the whole collection
  GET  /api/facets                         artists and year range for the filter controls
  GET  /healthz

The routes live in server/routes/ (meta, search, items, maps); uploads run on the executor of
server/uploads.py; middleware.py and errors.py hold the limits, headers and error replies.

Security choices: ids are only ever looked up in the catalog (never joined to a path), uploads
are identified by their sha256, the server never fetches URLs, request bodies are capped before
they are read, decoded pixels are capped before decoding, CORS is off unless origins are
configured, only the allowed Host names are answered (when given), and errors never carry a
stack trace or a server path.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from artsim.errors import CatalogError
from artsim.server import errors, middleware
from artsim.server.routes import items, maps, meta, search
from artsim.server.state import STATIC_DIR, State
from artsim.server.uploads import ANSWER_WITHIN_S, UploadExecutor

log = logging.getLogger("artsim.server")

DEFAULT_MAX_UPLOAD_BYTES = 20_000_000
# ~8,200 x 6,100: a phone's 48-megapixel photo (8,064 x 6,048) and any museum JPEG a visitor
# uploads; far below bombs
DEFAULT_MAX_PIXELS = 50_000_000
FORM_OVERHEAD_BYTES = 256 * 1024  # multipart boundaries and the small form fields around the file


def create_app(
    catalog_path: str | Path,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    cors_origins: Sequence[str] | None = None,
    allowed_hosts: Sequence[str] | None = None,
    catalog: Any | None = None,
    map_method: str = "auto",
    warm: bool = False,
    max_concurrent_uploads: int | None = None,
    upload_answer_within: float = ANSWER_WITHIN_S,
) -> FastAPI:
    """The FastAPI app serving one catalog.

    catalog: an already opened Catalog (or a stand-in with the same interface, for tests);
    by default the catalog at catalog_path is opened at startup, and uploads are analysed in
    worker processes (with an injected catalog, in threads of this process). warm: start the
    upload workers (models loaded) and compute the collection map right after startup, so the
    first upload and map are fast. max_concurrent_uploads: uploaded images analysed at once,
    one worker process each (default: half the CPU cores). upload_answer_within: seconds within
    which an accepted upload is answered; more uploads than can be are refused at once with 503
    and Retry-After. allowed_hosts: Host header names answered (others get 400), e.g.
    ["localhost", "127.0.0.1"]; None answers any (`artsim serve` sets it, see --allowed-hosts).
    """
    path = Path(catalog_path)
    if catalog is None and not (path / "manifest.json").is_file():
        raise CatalogError(f"{path}: no artsim catalog here (missing manifest.json)")
    if max_concurrent_uploads is None:
        max_concurrent_uploads = max(1, (os.cpu_count() or 2) // 2)
    if catalog is None:
        uploads = UploadExecutor.in_processes(
            path, max_concurrent_uploads, answer_within=upload_answer_within
        )
    else:
        uploads = UploadExecutor.in_threads(
            catalog, max_concurrent_uploads, answer_within=upload_answer_within
        )
    limits = {"max_upload_bytes": int(max_upload_bytes), "max_pixels": int(max_pixels)}
    state = State(path, catalog, map_method, uploads, limits)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(state.load)
        if warm:
            threading.Thread(target=_warm, args=(state,), name="artsim-warm", daemon=True).start()
        try:
            yield
        finally:
            await run_in_threadpool(state.uploads.close)

    app = FastAPI(
        title="artsim",
        summary="Find similar paintings: overall look, faces and poses.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.artsim = state
    app.state.limits = limits
    errors.install(app, path)
    app.include_router(meta.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(search.router)
    app.include_router(items.router)
    app.include_router(maps.router)
    middleware.install(
        app,
        body_limit=int(max_upload_bytes) + FORM_OVERHEAD_BYTES,
        cors_origins=cors_origins,
        allowed_hosts=allowed_hosts,
    )
    return app


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("artsim")
    except Exception:
        return "0"


def _warm(state: State) -> None:
    """Start the upload workers (catalog and models loaded) and compute the map, in the
    background after startup."""
    try:
        state.load()
        state.uploads.warm_up()
        maps.map_payload(state)
    except Exception:
        log.exception("warm-up failed (the server still works; first requests will be slower)")
