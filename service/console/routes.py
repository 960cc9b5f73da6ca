"""Routes for the merchant console: the page at ``/console`` and its assets.

Pure starlette on purpose: the console depends on no other module of the service, only on the
GraphQL API it calls from the browser.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The page runs only its own script and styles, talks only to its own origin, and cannot be
# framed; product images may come from the merchant's image host.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    # Revalidate on every load (ETag makes that cheap), so an upgrade never mixes versions.
    "cache-control": "no-cache",
}


async def console_page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)


async def to_console(request: Request) -> Response:
    # Relative, so the console also works behind a reverse proxy's path prefix.
    return RedirectResponse("../console", status_code=308)


class _Assets:
    """`StaticFiles` with the console's security headers on every answer."""

    def __init__(self, directory: Path) -> None:
        self._files = StaticFiles(directory=directory)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()),
                ]
            await send(message)

        await self._files(scope, receive, with_headers)


def console_routes() -> list[BaseRoute]:
    """The console's routes, to add to the application's route list."""
    return [
        Route("/console", console_page, methods=["GET", "HEAD"]),
        Route("/console/", to_console, methods=["GET", "HEAD"]),
        Mount("/console/static", app=_Assets(STATIC_DIR), name="console-static"),
    ]
