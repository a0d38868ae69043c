"""What every console page shares: the sign-in cookie, the page's language, the key's
permissions, the form parser, and the rendering of a template with all of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from service.console.api import Api
from service.domain.access import PERMISSIONS, Permission, Principal, Role
from service.domain.errors import Unauthenticated
from service.i18n import LANGUAGES, money_text, negotiate

PREFIX = "/console"
KEY_COOKIE = "loyalty_console_key"
LANGUAGE_COOKIE = "loyalty_console_language"
# The console's own files only: no inline script, no other host (the docs test's rule).
POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
CONSOLE_ROLES = frozenset({Role.ADMIN, Role.MARKETING, Role.ANALYST})
_HERE = Path(__file__).parent
_CATALOGUES = _HERE.parent / "i18n" / "locale"
TEMPLATES = Jinja2Templates(directory=_HERE / "templates")
TEMPLATES.env.filters["money"] = lambda kopecks, language: (
    "" if kopecks is None else money_text(language, int(kopecks))
)
# The menu: (path, title, the permission that shows it).
MENU = (
    ("/programs", "Programs", Permission.READ_PROGRAMS),
    ("/calendar", "Calendar", Permission.READ_PROGRAMS),
    ("/cards", "Cards and customers", Permission.READ_CARDS),
    ("/promo-codes", "Promo codes", Permission.PROMO_CODES),
    ("/reports", "Reports", Permission.REPORTS),
    ("/analytics", "Analytics", Permission.REPORTS),
    ("/import", "Import", Permission.IMPORT),
    ("/keys", "Keys", Permission.KEYS),
)


# Words the pages translate from the API's values (statuses, roles, days, channels,
# report names) and the sign-in's refusals: the catalogue's test reads these beside the
# texts the templates mark with ``_``.
WORDS = (
    "draft", "published", "retired", "running", "done", "failed", "active", "blocked",
    "inactive", "replaced", "admin", "marketing", "analyst", "pos", "mon", "tue", "wed", "thu",
    "fri", "sat", "sun", "offline", "online", "liability", "breakage", "promotions",
    "balances", "The key is not accepted.", "This key cannot use the console.",
)  # fmt: skip


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(language: str) -> dict[str, str]:
    """The console's texts in ``language`` (``console.po`` beside the service's
    ``loyalty.po``); English is the message id itself."""
    if language == "en":
        return {}
    with (_CATALOGUES / language / "LC_MESSAGES" / "console.po").open("rb") as po:
        return {m.id: m.string for m in read_po(po) if m.id and m.string}  # type: ignore[misc]


def translator(language: str) -> Callable[[str], str]:
    texts = catalogue(language)
    return lambda message: texts.get(message, message)


class SignInNeeded(Exception):
    """No key, or one the service no longer accepts: the page sends to the sign-in."""


class NotAllowed(Exception):
    """The key's role does not show this page."""


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    language: str
    api: Api

    def can(self, permission: Permission | str) -> bool:
        return Permission(permission) in PERMISSIONS[Role(self.principal.role)]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise NotAllowed(permission.value)


def language_of(request: Request) -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    services = getattr(request.app.state, "services", None)
    default = "en" if services is None else services.settings.language
    return negotiate(request.headers.get("accept-language"), default)


def principal_for(request: Request, key: str) -> Principal:
    """The principal of ``key`` (``Unauthenticated`` if the service does not accept it)."""
    principal = request.app.state.services.keyring.authenticate(f"Bearer {key}")
    assert isinstance(principal, Principal)
    return principal


async def session(request: Request) -> Session:
    """The signed-in key's session (a page's dependency)."""
    key = request.cookies.get(KEY_COOKIE, "")
    try:
        principal = principal_for(request, key)
    except Unauthenticated:
        raise SignInNeeded from None
    if principal.role not in CONSOLE_ROLES:
        raise SignInNeeded
    language = language_of(request)
    return Session(principal, language, Api(request.app, key, language))


@dataclass(frozen=True, slots=True)
class Form:
    """A submitted form: the first value of each field, every value of the repeated ones
    (checkbox groups), and the files' bytes."""

    values: dict[str, str]
    lists: dict[str, list[str]]
    files: dict[str, bytes] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)


async def form_of(request: Request) -> Form:
    """Starlette reads the form (python-multipart): urlencoded, or multipart with files."""
    submitted = await request.form()
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    files: dict[str, bytes] = {}
    for name, value in submitted.multi_items():
        if isinstance(value, str):
            values.setdefault(name, value)
            lists.setdefault(name, []).append(value)
        else:
            files[name] = await value.read()
    return Form(values, lists, files)


def render(
    request: Request, s: Session | None, template: str, status: int = 200, **context: Any
) -> Response:
    language = s.language if s is not None else language_of(request)
    _ = translator(language)
    menu = [(PREFIX + path, _(title)) for path, title, p in MENU if s is not None and s.can(p)]
    page = TEMPLATES.TemplateResponse(
        request,
        template,
        {"_": _, "lang": language, "session": s, "menu": menu, "prefix": PREFIX, **context},
        status_code=status,
    )
    secure_page(page)
    return page


def secure_page(page: Response) -> Response:
    page.headers["Content-Security-Policy"] = POLICY
    page.headers["Cache-Control"] = "no-store"
    page.headers["X-Content-Type-Options"] = "nosniff"
    page.headers["Referrer-Policy"] = "same-origin"
    return page


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(PREFIX + path, status_code=303)
