"""The dashboard's web app (Starlette): one page and its script and style, and one JSON endpoint
the page polls. The endpoint answers ``{"version": V}`` alone while nothing changed since the
version the page already has, else the whole snapshot. Only these routes exist: files are served
from a fixed list in the package, and a grid cell is reached by its id in the grid spec, so no
request can read a path outside the directory being watched. Store text goes out as JSON and the
page inserts it as text; the Content-Security-Policy forbids inline and foreign scripts as well."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from promptclimb.dashboard import snapshot

STATIC = {"": ("index.html", "text/html; charset=utf-8"),
          "dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
          "dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}
HEADERS = {"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' "
                                      "data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def create_app(path: Path, allowed_hosts: list[str] | None = None) -> Starlette:
    """The app for a run directory or a bench grid directory (checked now, one-line error).
    Requests must name one of ``allowed_hosts`` in their Host header (default: loopback names), so
    a web page elsewhere cannot read the runs through DNS rebinding."""
    root = path.resolve()
    kind = snapshot.kind_of(root)
    files = {name: (resources.files("promptclimb.dashboard") / "static" / file).read_bytes()
             for name, (file, _) in STATIC.items()}

    async def page(request: Request) -> Response:
        name = request.path_params.get("name", "")
        if name not in STATIC:
            return Response("not found", status_code=404, headers=HEADERS)
        return Response(files[name], media_type=STATIC[name][1], headers=HEADERS)

    def state(request: Request) -> Response:  # sync: Starlette runs it in a worker thread
        cell = request.query_params.get("cell")
        target = root
        if cell:
            found = snapshot.cell_run_dir(root, cell) if kind == "grid" else None
            if found is None:
                return JSONResponse({"error": f"no cell {cell!r} with a store in this grid"}, 404, HEADERS)
            target = found
        current = snapshot.version(target)
        if request.query_params.get("v") == current:
            return JSONResponse({"version": current}, headers=HEADERS)
        data: dict[str, Any] = (snapshot.run_snapshot(target) if cell or kind == "run"
                                else snapshot.grid_snapshot(root))
        return JSONResponse({"version": current, "path": str(target), "cell": cell, **data}, headers=HEADERS)

    return Starlette(routes=[Route("/api/state", state), Route("/", page), Route("/{name}", page)],
                     middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK_NAMES)])
