"""What people read, in Russian and English (SPEC §12): the cashier's messages in every
answer, chosen per request by ``Accept-Language`` with the chain's default in settings.
Codes stay as they are, language-free.

The English text is the message id, as gettext has it; the translations are gettext
catalogues (``locale/<language>/LC_MESSAGES/loyalty.po``), read once per process with
Babel. ``tests/unit/test_i18n.py`` holds every catalogue complete.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.messages.pofile import read_po

LANGUAGES = ("en", "ru")
DOMAIN = "loyalty"
_LOCALE = Path(__file__).parent / "locale"

# The cashier's messages (SPEC §3, ``messages``), by code: their English templates.
CASHIER = {
    "offer_card": "Offer the customer a loyalty card.",
    "card_inactive": "The card is {status}: it neither earns nor spends.",
    "birthday": "Happy birthday! Birthday offers apply.",
    "tier_upgrade": "After this sale the card moves up to {tier}.",
    "points_limited": "At most {max} of the {wanted} points asked for can be spent.",
}
# Words a message names: card statuses.
WORDS = ("active", "blocked", "inactive")


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(language: str) -> dict[str, str]:
    """The language's translations, message id to text (English: none needed)."""
    if language == "en":
        return {}
    with (_LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        return {m.id: m.string for m in read_po(po) if m.id and m.string}  # type: ignore[misc]


def gettext(language: str, message: str) -> str:
    return catalogue(language).get(message, message)


def cashier_text(language: str, code: str, params: tuple[tuple[str, str | int], ...]) -> str:
    """A cashier's message in ``language``, its words (a card status) translated too."""
    values = {name: gettext(language, v) if isinstance(v, str) else v for name, v in params}
    return gettext(language, CASHIER[code]).format(**values)


@lru_cache(maxsize=256)
def negotiate(accept_language: str | None, default: str) -> str:
    """The language of ``Accept-Language`` (``ru-RU,ru;q=0.9,en;q=0.8``) we speak, the
    default where it names none of them."""
    if not accept_language:
        return default
    weighted = []
    for part in accept_language.split(","):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weighted.append((float(quality) if quality else 1.0, tag.strip()))
        except ValueError:
            continue
    preferred = [tag for q, tag in sorted(weighted, key=lambda w: -w[0]) if q > 0 and tag]
    chosen = Locale.negotiate(preferred, list(LANGUAGES), sep="-")
    return chosen.language if chosen is not None else default
