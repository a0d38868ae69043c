"""The console's pure parts: every rule of the demo program and of the templates goes
through the rule form and back unchanged (as the program document reads it), the
templates make valid programs, errors land at the form's fields, and the console's
Russian catalogue holds every text its pages show and no other."""

from __future__ import annotations

import copy
import re
import string
import typing
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from service.console import forms, presets, program_pages, web
from service.rules.demo import demo_program
from service.rules.document import (
    Conditions,
    Effect,
    Exclusion,
    PointSettings,
    Rule,
    Target,
    parse_program,
)
from service.usecases.admin_programs import validation_report

CONSOLE = Path(web.__file__).parent
_MARKED = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)""")


def _submitted(values: dict[str, Any]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The form's values as a browser submits them: checked boxes "on", groups as lists."""
    single = {k: "on" if v is True else v for k, v in values.items()
              if v is not False and not isinstance(v, list)}  # fmt: skip
    lists = {k: v for k, v in values.items() if isinstance(v, list)}
    return single, lists


def _as_read(rule: dict[str, Any]) -> Any:
    document = copy.deepcopy(demo_program())
    document["rules"] = [rule]
    document["promo_codes"] = []
    return parse_program(document).rules[0]


SUIT_TIE = {  # service/rules/README.md's worked example of required goods
    "id": "suit-tie", "name": "Ties at half price with a suit", "priority": 40,
    "target": {"categories": ["ties"]},
    "conditions": {"requires": [{"categories": ["suits"]},
                                {"brands": ["levis"], "min_quantity": "2", "min_amount": 150_000}]},
    "effect": {"type": "percent", "percent": "50"},
}  # fmt: skip
RULES = [*demo_program()["rules"], *presets.RULES.values(), SUIT_TIE]


@pytest.mark.parametrize("rule", RULES, ids=[r["id"] for r in RULES])
def test_a_rule_goes_through_the_form_and_back(rule: dict[str, Any]) -> None:
    single, lists = _submitted(forms.form_from_rule(rule))
    again = forms.rule_from_form(single, lists, rule)
    assert _as_read(again) == _as_read(rule)


@pytest.mark.parametrize("template", list(presets.PROGRAMS))
def test_each_template_makes_a_valid_program(template: str) -> None:
    assert validation_report(presets.applied(template, demo_program()))["valid"]
    assert validation_report(presets.applied(template, None))["valid"]


def test_money_is_typed_in_roubles_and_sent_in_kopecks() -> None:
    assert forms.kopecks("1500") == 150_000 and forms.kopecks("1 500,50") == 150_050
    assert forms.kopecks("a lot") == "a lot"  # sent as typed: the API refuses it at the field
    assert forms.roubles(150_000) == "1500" and forms.roubles(150_050) == "1500.50"


def test_the_apis_errors_land_at_the_forms_fields() -> None:
    errors = [
        {"field": "document.rules[2].effect.percent", "message": "bad percent"},
        {"field": "document.rules[0].name", "message": "another rule's"},
        {"field": "document.points.max_share_percent", "message": "too much"},
        {"field": "document.groups[0].id", "message": "a group's"},
        {"field": "document.wallets.max_balance", "message": "a wallet's"},
        {"field": "document.holidays[1]", "message": "not a date"},
        {"field": "document.description", "message": "elsewhere"},
    ]
    at_fields, others = forms.field_errors(errors, rule_at=2)
    assert at_fields == {"effect.percent": "bad percent", "points.max_share_percent": "too much",
                         "groups[0].id": "a group's", "wallets.max_balance": "a wallet's",
                         "holidays": "not a date"}  # fmt: skip
    assert [e["field"] for e in others] == ["document.rules[0].name", "document.description"]


def _shown_texts() -> set[str]:
    texts = set()
    for source in [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("*.py")]:
        texts |= {a or b for a, b in _MARKED.findall(source.read_text(encoding="utf-8"))}
    return (
        texts
        | set(web.WORDS)
        | set(presets.TITLES.values())
        | {t for _, t, _ in web.MENU}
        | set(program_pages.FIGURES.values())
        | {label for _, _, label in forms.POINT_SETTINGS}
        | {label for _, _, label in forms.OTHER_SETTINGS}
    )


def test_the_russian_catalogue_holds_every_text_and_no_other() -> None:
    # An escaped quote would be looked up with its backslash, which the page never sends.
    assert not [text for text in _shown_texts() if "\\" in text]
    assert set(web.catalogue("ru")) == _shown_texts()
    po_file = web._CATALOGUES / "ru" / "LC_MESSAGES" / "console.po"
    with po_file.open("rb") as po:
        for message in read_po(po):
            if message.id:
                assert _fields(str(message.id)) == _fields(str(message.string)), message.id


def _fields(template: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(template) if name)


def test_the_tiers_go_through_the_form_and_back() -> None:
    document = demo_program()
    values = forms.tiers_form(document)
    assert values["tiers.levels[1].threshold"] == "10000"  # roubles on the form
    assert forms.tiers_from_form(document, values)["tiers"] == document["tiers"]
    emptied = {k: "" for k in values}
    assert "tiers" not in forms.tiers_from_form(document, emptied)


def test_the_groups_go_through_the_form_and_back() -> None:
    document = demo_program()
    values = forms.groups_form(document)
    assert forms.groups_from_form(document, values)["groups"] == document["groups"]


def test_the_declared_promo_codes_go_through_the_form_and_back() -> None:
    document = demo_program()
    single, _ = _submitted(forms.codes_form(document))
    assert forms.codes_from_form(document, single)["promo_codes"] == document["promo_codes"]


def test_an_error_in_a_list_typed_in_one_field_lands_at_that_field() -> None:
    errors = [
        {"field": "document.promo_codes[0].rules[0]", "message": "unknown rule"},
        {"field": "document.rules[1].target.categories[2]", "message": "too long"},
    ]
    at_fields, _ = forms.field_errors(errors, rule_at=1)
    assert at_fields == {"promo_codes[0].rules": "unknown rule", "target.categories": "too long"}
    assert "target.categories" in forms.rule_field_names()


def test_every_points_setting_goes_through_the_form_and_back() -> None:
    document = demo_program()
    document["points"] |= {"fiscal_mode": "tender", "max_redeem_per_receipt": 900,
                           "min_receipt_to_spend": 50_050}  # fmt: skip
    values = forms.points_form(document)
    assert values["points.min_receipt_to_spend"] == "500.50"  # roubles on the form
    assert forms.points_from_form(document, values)["points"] == document["points"]
    names = {name for name, _, _ in forms.POINT_SETTINGS}
    assert names == set(PointSettings.model_fields)  # every one is there


def test_wallets_events_and_holidays_go_through_the_form_and_back() -> None:
    document = demo_program()
    document |= {"wallets": {"earn_points": False, "validity_days": 365, "max_balance": 1_500_050},
                 "events": {"birthday_days_ahead": 3}, "holiday_calendar": "RU",
                 "holidays": ["2026-03-08", "2026-05-09"]}  # fmt: skip
    values = forms.points_form(document)
    assert values["wallets.max_balance"] == "15000.50" and values["wallets.earn_points"] == "false"
    assert values["holidays"] == "2026-03-08, 2026-05-09"
    back = forms.points_from_form(document, values)
    for name in ("wallets", "events", "holiday_calendar", "holidays"):
        assert back[name] == document[name], name
    parse_program(back)
    cleared = forms.points_from_form(
        document, {**values, "wallets.validity_days": "", "holidays": "", "holiday_calendar": ""}
    )
    assert "validity_days" not in cleared["wallets"] and "holidays" not in cleared
    assert "holiday_calendar" not in cleared
    plain = demo_program()  # no section made for settings left empty
    assert forms.points_from_form(plain, forms.points_form(plain)).keys() == plain.keys()


def test_required_goods_beyond_the_forms_rows_are_kept() -> None:
    rule = {**SUIT_TIE, "conditions": {"requires": [{"skus": [f"S{i}"]} for i in range(5)]}}
    single, lists = _submitted(forms.form_from_rule(rule))
    assert forms.rule_from_form(single, lists, rule)["conditions"] == rule["conditions"]


def test_the_script_shows_the_effect_fields_the_form_reads() -> None:
    """The script disables the effect fields it hides (they are not sent): its table is
    ``forms.EFFECT_FIELDS``, or a setting would be dropped on a save."""
    script = (CONSOLE / "static" / "console.js").read_text(encoding="utf-8")
    table = script[script.index("const FIELDS = {") : script.index("};")]
    shown = {kind: tuple(re.findall(r'"(\w+)"', fields))
             for kind, fields in re.findall(r"(\w+): \[([^\]]*)\]", table)}  # fmt: skip
    assert shown == forms.EFFECT_FIELDS


def test_the_rule_form_has_every_setting_of_the_program_document() -> None:
    """A setting of a rule the form lacked would be dropped when the form saves it."""
    names = forms.rule_field_names()
    tops = {name.split(".")[0] for name in names}
    assert set(Rule.model_fields) <= tops | {"target", "conditions", "effect"}
    conditions = {name.split(".")[1].partition("[")[0] for name in names
                  if name.startswith("conditions.")}  # fmt: skip
    assert set(Conditions.model_fields) <= conditions, set(Conditions.model_fields) - conditions
    targets = {name.removeprefix("target.") for name in names if name.startswith("target.")}
    assert {*Target.model_fields} - {"exclude"} <= targets
    assert {f"exclude.{n}" for n in Exclusion.model_fields} <= targets
    for model in typing.get_args(typing.get_args(Effect)[0]):
        kind = model.model_fields["type"].annotation.__args__[0]
        wanted = tuple(f for f in model.model_fields if f != "type")
        assert set(forms.EFFECT_FIELDS.get(kind, ())) == set(wanted), kind
