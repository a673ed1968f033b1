"""JSON errors ({"error": message}) for every failure, without stack traces or server paths."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from artsim.errors import ArtsimError

log = logging.getLogger("artsim.server")

# an absolute path (POSIX, or a Windows drive): shown by its file name only
_ABS_PATH = re.compile(r"(?<![\w.:/])(?:[A-Za-z]:[\\/]|/)(?:[^\s'\"/\\]+[\\/])*([^\s'\"/\\]+)")


def scrub(message: str, catalog_path: Path) -> str:
    """Error messages name files, never the server's folders: the catalog folder becomes its
    name, any other absolute path its file name ('/data/images/x.jpg' -> 'x.jpg')."""
    for p in sorted({str(catalog_path.resolve()), str(catalog_path)}, key=len, reverse=True):
        if p and p not in (".", "/"):
            message = message.replace(p, catalog_path.name or "catalog")
    return _ABS_PATH.sub(lambda m: m.group(1), message)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_message(errors: Sequence[Any]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "body"))
        parts.append(f"{loc}: {e.get('msg', 'invalid')}" if loc else str(e.get("msg", "invalid")))
    return "invalid request: " + "; ".join(parts)


def install(app: FastAPI, catalog_path: Path) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, validation_message(exc.errors()))

    @app.exception_handler(ValidationError)
    async def model_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        return error(422, validation_message(exc.errors()))

    @app.exception_handler(ArtsimError)
    async def artsim_error(request: Request, exc: ArtsimError) -> JSONResponse:
        return error(400, scrub(str(exc), catalog_path))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, "internal server error (details are in the server log)")
