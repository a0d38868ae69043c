"""Swagger UI at /docs and ReDoc at /redoc, every asset served by the service itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, their favicon from its site and
ReDoc's fonts from Google; these load the copies the fastapi-offline wheel ships (a
dependency, so a release of it brings newer ones), so the documentation works on a
machine with no network beyond the service. The pages are FastAPI's with their asset
URLs changed, sent with a Content-Security-Policy that keeps the browser on the service's
origin: ReDoc's menu shows a logo from cdn.redoc.ly that no option turns off (it hides
itself when the image fails). Building them costs a mount and three routes.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
_ASSETS = ("fastapi_offline", "static")  # the package's folder of Swagger UI and ReDoc files
_SWAGGER_JS = "swagger-ui-bundle.js"
_SWAGGER_CSS = "swagger-ui.css"
_REDOC_JS = "redoc.standalone.js"
_FAVICON = "favicon.png"
# Swagger UI sends the document's URL to validator.swagger.io for a badge unless told not to.
_SWAGGER_PARAMETERS = {"validatorUrl": None}
SAME_ORIGIN_ONLY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",  # FastAPI's page starts Swagger UI inline
        "style-src 'self' 'unsafe-inline'",  # ReDoc styles its components inline
        "img-src 'self' data:",  # Swagger UI's icons are data: URIs
        "font-src 'self' data:",
        "worker-src 'self' blob:",  # ReDoc's search index
    )
)


def _same_origin_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
    return page


def install_offline_docs(app: FastAPI) -> None:
    """Serve /docs (with its OAuth2 redirect page) and /redoc for ``app``, created with
    ``docs_url=None, redoc_url=None``, from assets under ``ASSETS_URL``."""
    openapi_url = app.openapi_url
    if openapi_url is None:  # no document, nothing to show
        return
    redirect_url = app.swagger_ui_oauth2_redirect_url
    app.mount(ASSETS_URL, StaticFiles(packages=[_ASSETS]), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/{_SWAGGER_JS}",
            swagger_css_url=f"{root}{ASSETS_URL}/{_SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{ASSETS_URL}/{_FAVICON}",
            oauth2_redirect_url=root + redirect_url if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), **_SWAGGER_PARAMETERS},
        )
        return _same_origin_only(page)

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/{_REDOC_JS}",
            redoc_favicon_url=f"{root}{ASSETS_URL}/{_FAVICON}",
            with_google_fonts=False,
        )
        return _same_origin_only(page)

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return _same_origin_only(get_swagger_ui_oauth2_redirect_html())

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    if redirect_url:
        app.add_route(redirect_url, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
