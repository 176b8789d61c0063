"""The browser's files, only from terradream/frontend: the viewer (GET /, /static/, /vendor/leaflet/) and the API
docs (GET /docs with Swagger UI from /vendor/swagger-ui/), so nothing is fetched from a CDN.

GET / is also the OGC API landing page for clients that ask for JSON; URLs handed out start with the public base URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from terradream.api.dependencies import public_base_url
from terradream.api.routes.ogcapi import landing_page, wants_json
from terradream.frontend import LEAFLET_DIST_DIR, STATIC_DIR, SWAGGER_UI_DIST_DIR


class FrontendFiles(StaticFiles):
    """StaticFiles that answers 404 (not 500) when its directory is missing, e.g. before `npm install`.

    Starlette's lookup already refuses paths that resolve outside the directory (.., symlinks, encoded slashes).
    """

    async def check_config(self) -> None:
        """Accept a missing directory: every lookup in it is then a plain 404."""
        if self.directory is not None and os.path.isdir(self.directory):
            await super().check_config()


@dataclass
class FrontendFactory:
    """Mounts the viewer on an app (mounts cannot be carried by an APIRouter)."""

    static_dir: Path = STATIC_DIR
    leaflet_dir: Path = LEAFLET_DIST_DIR
    swagger_ui_dir: Path = SWAGGER_UI_DIST_DIR

    def register(self, app: FastAPI) -> None:
        """GET / serves index.html and GET /docs the Swagger UI page (create the app with docs_url=None);
        /static/, /vendor/leaflet/ and /vendor/swagger-ui/ serve their directories."""
        index = self.static_dir / "index.html"

        @app.get("/", include_in_schema=False)
        def viewer(request: Request) -> Response:
            """The Leaflet viewer; the OGC API landing page (JSON) for ?f=json or an Accept without text/html."""
            vary = {"Vary": "Accept"}  # one URL, two representations: shared caches must key on Accept
            if wants_json(request):
                return JSONResponse(landing_page(public_base_url(request)), headers=vary)
            if not index.is_file():
                raise HTTPException(404, "the viewer is not installed (terradream/frontend/static/index.html)")
            return FileResponse(index, media_type="text/html", headers=vary)

        @app.get("/docs", include_in_schema=False)
        def docs(request: Request) -> HTMLResponse:
            """Interactive API documentation for /openapi.json (every URL under the public base, proxy prefix
            included)."""
            base = public_base_url(request)
            return get_swagger_ui_html(openapi_url=base + (app.openapi_url or "/openapi.json"),
                                       title=f"{app.title} API",
                                       swagger_js_url=f"{base}/vendor/swagger-ui/swagger-ui-bundle.js",
                                       swagger_css_url=f"{base}/vendor/swagger-ui/swagger-ui.css",
                                       swagger_favicon_url=f"{base}/vendor/swagger-ui/favicon-32x32.png")

        app.mount("/static", FrontendFiles(directory=self.static_dir, check_dir=False), name="static")
        app.mount("/vendor/leaflet", FrontendFiles(directory=self.leaflet_dir, check_dir=False), name="leaflet")
        app.mount("/vendor/swagger-ui", FrontendFiles(directory=self.swagger_ui_dir, check_dir=False),
                  name="swagger-ui")
