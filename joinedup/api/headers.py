"""Security headers on every answer of the lookup API, errors included.

Every response may carry personal data (or say that a person exists), so nothing may be
cached by a browser or a proxy (``Cache-Control: no-store``), no browser may guess another
content type from it (``nosniff``), frame it, or send its address on as a referrer. The API
sends JSON only, so its content security policy allows nothing to load; the interactive
documentation page (``/api/v1/docs``) needs Swagger UI's script and style, and gets a policy
of its own. This is a plain ASGI middleware (no per-request task or body copy).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=31536000",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
DOCS_POLICY = ("default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
               "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
               "connect-src 'self'; frame-ancestors 'none'")


def security_header_list(path: str, docs_path: str | None) -> list[tuple[bytes, bytes]]:
    headers = dict(SECURITY_HEADERS)
    if docs_path is not None and path == docs_path:
        headers["Content-Security-Policy"] = DOCS_POLICY
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class SecurityHeaders:
    """Sets ``SECURITY_HEADERS`` on every HTTP response (replacing any the route set)."""

    def __init__(self, app: ASGIApp, docs_path: str | None = None) -> None:
        self.app, self.docs_path = app, docs_path

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_header_list(scope.get("path", ""), self.docs_path)
        names = {k for k, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)
