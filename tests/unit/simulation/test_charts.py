"""Every chart renders, as PNG and as SVG, and draws what it was given."""

from __future__ import annotations

import copy
import functools
import re

import pytest

from service.domain.errors import InvalidInput
from service.rules.compiler import compile_program
from service.rules.demo import demo_program
from service.rules.document import parse_program
from service.simulation import charts
from service.simulation.engine import prepare
from service.simulation.report import Comparison, compare
from service.simulation.uplift import CustomerGroup, UpliftAssumptions, forecast
from tests.unit.simulation.generated import generated
from tests.unit.simulation.test_engine import START
from tests.unit.simulation.test_pilot import report as pilot


@functools.cache
def comparison() -> Comparison:
    doc = copy.deepcopy(demo_program())
    doc["rules"].append(
        {"id": "tops-10", "name": "Tops -10%", "priority": 1, "stacking": "additive",
         "target": {"categories": ["tops"]}, "effect": {"type": "percent", "percent": "10"}}
    )  # fmt: skip
    draft = compile_program(parse_program(doc), 2)
    current = compile_program(parse_program(demo_program()), 1)
    return compare(prepare(generated(200, seed=23, start=START)), current, draft)


def rendered(image: bytes, fmt: str) -> str:
    if fmt == "png":
        assert image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 5_000
        return ""
    text = image.decode()
    assert "<svg" in text and text.rstrip().endswith("</svg>")
    return text


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_liability_by_month(fmt: str) -> None:
    result = comparison()
    text = rendered(charts.liability_by_month(result, fmt), fmt)  # type: ignore[arg-type]
    if text:
        assert "Points liability by expiry month" in text
        months = set(result.current.liability_by_expiry_month)
        assert months and all(month in text for month in months)


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_tier_mix(fmt: str) -> None:
    summary = comparison().draft
    text = rendered(charts.tier_mix(summary, fmt), fmt)  # type: ignore[arg-type]
    if text:
        tiers = {t for counts in summary.tier_mix.values() for t in counts}
        assert tiers and all(tier in text for tier in tiers)


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_cost_per_rule(fmt: str) -> None:
    text = rendered(charts.cost_per_rule(comparison(), fmt), fmt)  # type: ignore[arg-type]
    if text:
        assert "tops-10" in text and "happy-hours" in text
        # one bar per rule and program: the axes' patches besides the frame
        assert len(re.findall(r'id="patch_', text)) >= 2 * len(comparison().current.per_rule)


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_before_after(fmt: str) -> None:
    text = rendered(charts.before_after(pilot(1, 0.05), fmt), fmt)  # type: ignore[arg-type]
    if text:
        assert "Average receipt: uplift +" in text


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_uplift(fmt: str) -> None:
    result = forecast(
        [CustomerGroup("online", "loyal", 1_000, 203_000, 300_000, 2_000)], UpliftAssumptions()
    )
    text = rendered(charts.uplift(result, fmt), fmt)  # type: ignore[arg-type]
    if text:
        assert "moderate, online" in text


def test_other_formats_are_refused() -> None:
    with pytest.raises(InvalidInput):
        charts.tier_mix(comparison().current, "gif")  # type: ignore[arg-type]
