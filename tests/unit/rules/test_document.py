"""Validation of the program document: each error names its field and why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.domain.errors import ProgramInvalid
from service.rules.compiler import compile_program
from service.rules.demo import demo_program
from service.rules.document import parse_program


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ProgramInvalid) as caught:
        parse_program(data)
    return {error["field"]: error["message"] for error in caught.value.errors}


def with_rules(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "test", "rules": list(rules), **extra}


def rule(rule_id: str = "r", **fields: Any) -> dict[str, Any]:
    return {"id": rule_id, "name": rule_id, "effect": {"type": "percent", "percent": "5"}, **fields}


def test_demo_round_trips_through_json() -> None:
    document = parse_program(demo_program())
    again = parse_program(json.loads(json.dumps(document.model_dump(mode="json", by_alias=True))))
    assert again == document
    assert document.rules[0].effect.percent == 2_000  # type: ignore[union-attr]


def test_percent_decimal_places_and_range() -> None:
    bad = rule(effect={"type": "percent", "percent": "12.345"})
    assert "rules[0].effect.percent" in errors_of(with_rules(bad))
    over = rule(effect={"type": "percent", "percent": "101"})
    assert "rules[0].effect.percent" in errors_of(with_rules(over))
    floating = rule(effect={"type": "percent", "percent": 5.5})
    assert "decimal" in errors_of(with_rules(floating))["rules[0].effect.percent"]


def test_cross_field_checks() -> None:
    errors = errors_of(
        with_rules(
            rule("a", stacking="best_of", group="nope"),
            rule("a"),
            rule("b", stacking="best_of"),
            rule("c", conditions={"tiers": ["gold"]}),
            rule("d", effect={"type": "gift", "sku": "X"}, budget=5),
        )
    )
    assert errors["rules[0].group"] == "unknown group 'nope'"
    assert errors["rules[1].id"] == "duplicate rule id 'a'"
    assert "name one" in errors["rules[2].group"]
    assert errors["rules[3].conditions.tiers[0]"] == "unknown tier 'gold'"
    assert "not meaningful" in errors["rules[4].budget"]


def test_reversed_ranges_and_unknown_effects() -> None:
    errors = errors_of(
        with_rules(
            rule(conditions={"dates": {"from": "2026-12-01", "to": "2026-11-01"}}),
            rule("x", effect={"type": "teleport"}),
        )
    )
    assert errors["rules[0].conditions.dates"] == "'from' is after 'to'"
    assert "rules[1].effect" in errors


def test_promo_code_checks() -> None:
    promo = {"code": "ABC", "rules": ["ghost", "r"]}
    promo |= {"valid_from": "2026-02-01", "valid_to": "2026-01-01"}
    errors = errors_of(with_rules(rule(), promo_codes=[promo, {"code": "abc", "rules": ["r"]}]))
    assert errors["promo_codes[0].rules[0]"] == "unknown rule 'ghost'"
    assert "lacks conditions.promo_code" in errors["promo_codes[0].rules[1]"]
    assert errors["promo_codes[0].valid_from"] == "valid_from is after valid_to"
    assert errors["promo_codes[1].code"] == "duplicate promo code 'ABC'"


def test_tier_thresholds_must_ascend() -> None:
    tiers = {
        "levels": [
            {"code": "a", "name": "A", "threshold": 5},
            {"code": "b", "name": "B", "threshold": 5},
        ]
    }
    assert "tiers" in errors_of({"name": "t", "tiers": tiers})


def test_compiled_tier_helpers() -> None:
    program = compile_program(parse_program(demo_program()), version=7)
    assert program.version == 7
    assert program.tier_for_spend(0) == "base"
    assert program.tier_for_spend(999_999) == "base"
    assert program.tier_for_spend(1_000_000) == "silver"
    assert [r.id for r in program.rules][:2] == ["happy-hours", "mojito-points"]
