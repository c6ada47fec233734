"""The customer pages' static files (`/static/…`: stylesheets, scripts, the vendored challenge widget).

Served by a handler of their own rather than aiohttp's `add_static`, whose answer for a missing file is a
`FileResponse` that turns into an empty 404 only when it is sent, after every middleware has seen it: here a
missing file, a directory or a path that leads out of the directory is `HTTPNotFound` raised, so that
`error_pages` answers it as for any other address (the page for a browser that opened the address, a short
text for a file a page loads).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

DIRECTORY = (Path(__file__).parent / "static").resolve()


def file_of(name: str) -> Path | None:
    """The file `name` names inside the static directory, or None: missing, a directory, or outside it (`..`,
    an absolute path, a link that leads out)."""
    try:
        path = (DIRECTORY / name).resolve(strict=True)
    except (OSError, ValueError, RuntimeError):  # missing, a NUL byte, a loop of links
        return None
    return path if path.is_relative_to(DIRECTORY) and path.is_file() else None


async def static_file(request: web.Request) -> web.StreamResponse:
    path = file_of(request.match_info["filename"])
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path)
