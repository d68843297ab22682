"""/docs: Swagger UI from the swagger-ui-bundle-v2 package, started by a script file.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script; the
Content-Security-Policy (services/api/security.py) allows neither. ReDoc has no packaged
build, so /redoc is off. ``VERKOSTO_DOCS_ENABLED=false`` turns /docs off too (the
OpenAPI document itself stays at /openapi.json).
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from services.settings import Settings

STATIC = Path(__file__).parent.parent / "static"


def install(api: FastAPI, settings: Settings) -> None:
    if not settings.docs_enabled or api.openapi_url is None:
        return
    page = (STATIC / "docs.html").read_text().replace("{openapi_url}", html.escape(api.openapi_url))

    @api.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @api.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> FileResponse:
        return FileResponse(STATIC / "docs-init.js", media_type="text/javascript")

    api.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
