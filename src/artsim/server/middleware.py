"""ASGI middleware: request body limit, security headers, allowed Host names, CORS."""

from __future__ import annotations

import json
from collections.abc import Sequence

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def default_allowed_hosts(bind: str) -> list[str] | None:
    """Host names a server bound to `bind` answers: localhost names on a loopback address
    (against DNS rebinding: a page of evil.example resolving to 127.0.0.1 gets 400); any
    name otherwise (None), since only the operator knows the public one."""
    if bind in LOOPBACK_HOSTS or bind.startswith("127."):
        return ["localhost", "127.0.0.1", "::1", bind]
    return None


def install(
    app: FastAPI,
    *,
    body_limit: int,
    cors_origins: Sequence[str] | None,
    allowed_hosts: Sequence[str] | None,
) -> None:
    # added innermost first: security headers wrap everything, so 413s, 400s for a bad Host and
    # CORS replies carry them too
    app.add_middleware(BodyLimit, limit=body_limit)
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(
            TrustedHostMiddleware, allowed_hosts=list(allowed_hosts), www_redirect=False
        )
    app.add_middleware(SecurityHeaders)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413 before reading them: by Content-Length
    when the client sends one, else by counting the stream as it arrives."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await send_error(send, 400, "invalid Content-Length header")
                    return
        if length is not None and length > self.limit:
            await send_error(
                send, 413, f"request body of {length:,} bytes is over the limit of {self.limit:,}"
            )
            return
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    await send_error(
                        send, 413, f"request body is over the limit of {self.limit:,} bytes"
                    )
                    # the app stops parsing; its reply is dropped
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded_send)


class SecurityHeaders:
    """nosniff and no-referrer everywhere, and a strict Content-Security-Policy on the page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        page = path == "/" or path.startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                if page:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


async def send_error(send: Send, status: int, message: str) -> None:
    """A JSON error sent straight from middleware, closing the connection."""
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
