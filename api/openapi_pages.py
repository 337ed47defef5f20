"""The OpenAPI pages under /schema, served from our own files (contract §10): Swagger UI comes from the
`openapi-ui-bundles` package (PyPI) and is served at /schema/assets/, with no script, style or font from
another origin and no inline script, so the page runs under the app's Content-Security-Policy.

Litestar's own render plugins point at public CDNs and put the schema in an inline <script>; the plugin here
renders a page that loads only /schema/assets/ files, which fetch /schema/openapi.json themselves.

ReDoc is not served: its styled-components insert <style> elements at run time, which a `style-src 'self'`
policy refuses (the page stays blank), and opening the policy to 'unsafe-inline' for one page is not worth it.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import openapi_ui_bundles
from litestar import Request, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.response import File

SCHEMA_PATH = "/schema"
ASSETS = f"{SCHEMA_PATH}/assets"
OWN = Path(__file__).resolve().parent / "openapi_assets"
JS, CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
# Every file /schema/assets/ serves, by name: a fixed list, so nothing else of the packages is reachable.
ASSET_FILES: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (openapi_ui_bundles.swagger_ui.static_path / "swagger-ui-bundle.js", JS),
    "swagger-ui.css": (openapi_ui_bundles.swagger_ui.static_path / "swagger-ui.css", CSS),
    "swagger-init.js": (OWN / "swagger-init.js", JS),
    "schema.css": (OWN / "schema.css", CSS),
}


@get("/assets/{name:str}", include_in_schema=False, sync_to_thread=False,
     cache_control=CacheControlHeader(public=True, max_age=86400))
def asset(name: str) -> File:
    """One file of the OpenAPI pages (404 for any other name)."""
    if name not in ASSET_FILES:
        raise NotFoundException()
    path, media_type = ASSET_FILES[name]
    return File(path, media_type=media_type, content_disposition_type="inline")


def _page(title: str, head: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title><link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">"
        f"<link rel=\"stylesheet\" href=\"{ASSETS}/schema.css\">{head}</head><body>{body}</body></html>"
    ).encode()


class LocalSwagger(SwaggerRenderPlugin):
    """Swagger UI from /schema/assets/ (no OAuth2 redirect page: neira's API takes bearer tokens)."""

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        """The page: our copy of Swagger UI, started by swagger-init.js on /schema/openapi.json."""
        return _page(
            f"{openapi_schema['info']['title']} — Swagger UI",
            f"<link rel=\"stylesheet\" href=\"{ASSETS}/swagger-ui.css\">",
            f"<div id=\"swagger-ui\" data-spec-url=\"{escape(self.get_openapi_json_route(request))}\"></div>"
            f"<script src=\"{ASSETS}/swagger-ui-bundle.js\"></script><script src=\"{ASSETS}/swagger-init.js\"></script>",
        )

    def receive_router(self, router: Router) -> None:
        """No oauth2-redirect.html: it is an inline script, and nothing here signs in with OAuth2."""


def openapi_config() -> OpenAPIConfig:
    """OpenAPI at /schema: Swagger UI at /schema and /schema/swagger, the document at /schema/openapi.json, and
    the page's files at /schema/assets/."""
    return OpenAPIConfig(
        title="neira", version="0.1.0", path=SCHEMA_PATH,
        openapi_router=Router(SCHEMA_PATH, route_handlers=[asset], include_in_schema=False),
        render_plugins=[LocalSwagger(path=["/", "/swagger"]), JsonRenderPlugin()],
        operation_id_creator=operation_id,
    )


def operation_id(handler: Any, _method: Any, _path: Any) -> str:
    """An operation's id is its handler's name (`command`, `apply`, `build`, `status`, `run_organ`): short names
    for generated clients. tests/http/test_openapi.py checks that they stay unique."""
    return str(handler.handler_name)
