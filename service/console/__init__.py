"""The marketing console at ``/console`` (SPEC §11): server-rendered pages (Jinja2) with
a little script, every asset in this package, in Russian and English, signed in with an
admin, marketing or analyst key. Each page calls the service's own API in process
(``api.py``), so that the roles, the validation and the errors are the API's.

``install_console(app)`` adds its routes (kept out of the OpenAPI document), its static
files and the handlers that turn a missing sign-in or a role's refusal into pages.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from service.console import analysis_pages, other_pages, program_pages, work_pages
from service.console.web import PREFIX, NotAllowed, SignInNeeded, redirect, render, session

STATIC = f"{PREFIX}/static"


async def _sign_in(request: Request, exc: Exception) -> Response:
    return redirect("/login")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return render(request, await session(request), "error.html", 403, answer=None)


async def _failed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, program_pages.Failed)
    return program_pages.failed_page(request, await session(request), exc.answer)


def install_console(app: FastAPI) -> None:
    app.mount(STATIC, StaticFiles(directory=Path(__file__).parent / "static"), name="console")
    app.include_router(other_pages.router)
    app.include_router(analysis_pages.router)
    app.include_router(program_pages.router)
    app.include_router(work_pages.router)
    app.add_exception_handler(SignInNeeded, _sign_in)
    app.add_exception_handler(NotAllowed, _not_allowed)
    app.add_exception_handler(program_pages.Failed, _failed)
