"""What people read, in Russian and English (SPEC §12): every catalogue complete, the
language negotiated from Accept-Language, the codes the same in every language."""

from __future__ import annotations

import re
import string
from pathlib import Path

from babel.messages.pofile import read_po

from service.i18n import (
    _LOCALE,
    CASHIER,
    COLUMNS,
    ERRORS,
    LANGUAGES,
    REASONS,
    WORDS,
    cashier_text,
    catalogue,
    error_text,
    negotiate,
    reason_text,
)
from service.rules.codes import REASONS as REASON_CODES


def test_every_catalogue_translates_every_text_and_no_other() -> None:
    wanted = {*CASHIER.values(), *WORDS, *ERRORS.values(), *COLUMNS.values(), *REASONS.values()}
    for language in LANGUAGES:
        if language == "en":
            continue
        assert set(catalogue(language)) == wanted, language
        with (_LOCALE / language / "LC_MESSAGES" / "loyalty.po").open("rb") as po:
            for message in read_po(po):
                if message.id:  # the same placeholders, so that every template formats
                    assert sorted(_fields(message.id)) == sorted(_fields(message.string))


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def test_the_language_comes_from_accept_language_else_the_chains() -> None:
    assert negotiate("ru-RU,ru;q=0.9,en;q=0.8", "en") == "ru"
    assert negotiate("en-GB,en;q=0.9", "ru") == "en"
    assert negotiate("de-DE,fr;q=0.5", "ru") == "ru"
    assert negotiate("fr;q=0.9,ru;q=0.1", "en") == "ru"
    assert negotiate(None, "ru") == "ru" and negotiate("", "en") == "en"
    assert negotiate("ru;q=bogus,,;", "en") == "en"


def test_a_message_reads_in_either_language() -> None:
    params = (("max", 120), ("wanted", 500))
    assert cashier_text("en", "points_limited", params) == (
        "At most 120 of the 500 points asked for can be spent."
    )
    assert cashier_text("ru", "points_limited", params) == (
        "Списать можно не более 120 из запрошенных 500 баллов."
    )
    assert cashier_text("ru", "card_inactive", (("status", "blocked"),)).startswith(
        "Карта заблокирована"
    )


def test_every_error_code_the_service_raises_has_its_sentence() -> None:
    service = Path(__file__).parents[2] / "service"
    raised = {
        code
        for source in service.rglob("*.py")
        for code in re.findall(r'code="([a-z_]+)"', source.read_text(encoding="utf-8"))
    }
    classes = set(
        re.findall(r'    code = "([a-z_]+)"', (service / "domain" / "errors.py").read_text())
    )
    assert raised | classes - {"error"} <= set(ERRORS), sorted((raised | classes) - set(ERRORS))
    assert (
        error_text("ru", "card_not_found", "no such loyalty card") == "Такой карты лояльности нет."
    )
    assert error_text("en", "card_not_found", "no such loyalty card") == "no such loyalty card"
    assert error_text("ru", "no_such_code", "as it is") == "as it is"


def test_every_reason_a_rule_may_not_apply_for_has_its_sentence() -> None:
    assert set(REASONS) == set(REASON_CODES) - {""}
    assert reason_text("ru", "uses_exhausted") == "Лимит применений акции исчерпан."
    assert reason_text("en", None) is None
