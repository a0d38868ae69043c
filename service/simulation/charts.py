"""Charts of a simulation, a forecast and a pilot (SPEC §10.3), rendered server-side.

matplotlib's object API on the Agg canvas: no pyplot, so no global figure state shared
between requests or threads and no display needed. Each function returns the image's
bytes, PNG or SVG. Money is shown in roubles (SPEC §12: amounts people read).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from service.domain.errors import InvalidInput

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from service.simulation.pilot import PilotReport
    from service.simulation.report import Comparison, Summary
    from service.simulation.uplift import Forecast

Format = Literal["png", "svg"]
FORMATS = ("png", "svg")
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
KOPECKS = 100


def preload() -> None:
    """Import matplotlib now: ``loyalty serve`` does it once before it forks its workers,
    which share it. Imported by a worker's first chart request instead, it took 3.7 s of
    that request on the 2-core box under load (0.1 s to draw), and a chart asked for
    during ``make fuzz`` ran past the client's 10 s."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


def _figure(width: float = 8.0, height: float = 4.5) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _render(figure: Figure, fmt: Format) -> bytes:
    if fmt not in FORMATS:
        raise InvalidInput(f"a chart is png or svg, not {fmt!r}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    out = io.BytesIO()
    figure.savefig(out, format=fmt, dpi=100)
    return out.getvalue()


def _paired_bars(
    axes: Axes, labels: Sequence[str], first: Sequence[float], second: Sequence[float]
) -> None:
    positions = range(len(labels))
    axes.bar([p - 0.2 for p in positions], first, width=0.4, label="current")
    axes.bar([p + 0.2 for p in positions], second, width=0.4, label="draft")
    axes.set_xticks(list(positions), list(labels), rotation=45, ha="right")
    axes.legend()


def liability_by_month(comparison: Comparison, fmt: Format = "png") -> bytes:
    """Points owed at the period's end, by the month they expire, both programs."""
    current, draft = comparison.current, comparison.draft
    months = sorted(set(current.liability_by_expiry_month) | set(draft.liability_by_expiry_month))
    figure = _figure()
    axes = figure.add_subplot()
    _paired_bars(
        axes,
        months,
        [current.liability_by_expiry_month.get(m, 0) for m in months],
        [draft.liability_by_expiry_month.get(m, 0) for m in months],
    )
    axes.set_title("Points liability by expiry month")
    axes.set_ylabel("points")
    return _render(figure, fmt)


def tier_mix(summary: Summary, fmt: Format = "png") -> bytes:
    """Cards that bought each month, stacked by their tier."""
    months = list(summary.tier_mix)
    present = {t for counts in summary.tier_mix.values() for t in counts}
    tiers = [t for t in summary.tier_codes if t in present]  # the ladder's order
    figure = _figure()
    axes = figure.add_subplot()
    bottom = [0] * len(months)
    positions = list(range(len(months)))  # not the month texts: they read as dates
    for tier in tiers:
        heights = [summary.tier_mix[m].get(tier, 0) for m in months]
        axes.bar(positions, heights, bottom=bottom, label=tier)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axes.set_xticks(positions, months, rotation=45, ha="right")
    axes.set_title(f"Tier mix, program version {summary.program_version}")
    axes.set_ylabel("cards that bought")
    axes.legend()
    return _render(figure, fmt)


def cost_per_rule(comparison: Comparison, fmt: Format = "png") -> bytes:
    """Each rule's cost over the period (discount plus the points' value), both programs."""
    from service.simulation.report import rules_side_by_side

    rows = rules_side_by_side(comparison.current, comparison.draft)
    point_value = comparison.current.point_value  # a rule's points, valued as the current's

    def cost(effect: dict[str, int]) -> float:
        return (effect["discount"] + effect["points"] * point_value) / KOPECKS

    figure = _figure(height=max(3.0, 0.4 * len(rows) + 1.5))
    axes = figure.add_subplot()
    positions = range(len(rows))
    axes.barh(
        [p - 0.2 for p in positions],
        [cost(r["current"]) for r in rows],
        height=0.4,
        label="current",
    )
    axes.barh(
        [p + 0.2 for p in positions], [cost(r["draft"]) for r in rows], height=0.4, label="draft"
    )
    axes.set_yticks(list(positions), [r["rule_id"] for r in rows])
    axes.set_title("Cost per rule: discount and points, roubles")
    axes.legend()
    return _render(figure, fmt)


def before_after(report: PilotReport, fmt: Format = "png") -> bytes:
    """Average receipt of the pilot and control groups before and after the start."""
    figure = _figure(6.0, 4.0)
    axes = figure.add_subplot()
    labels = ["before", "after"]
    pilot = [
        report.pilot_before.average_receipt / KOPECKS,
        report.pilot_after.average_receipt / KOPECKS,
    ]
    control = [
        report.control_before.average_receipt / KOPECKS,
        report.control_after.average_receipt / KOPECKS,
    ]
    axes.plot(labels, pilot, marker="o", label="pilot")
    axes.plot(labels, control, marker="o", label="control")
    estimate = report.average_receipt
    axes.set_title(
        f"Average receipt: uplift {estimate.uplift_bp / 100:+.1f}% "
        f"({estimate.low_bp / 100:+.1f}% .. {estimate.high_bp / 100:+.1f}%)"
    )
    axes.set_ylabel("roubles")
    axes.legend()
    return _render(figure, fmt)


def uplift(forecast: Forecast, fmt: Format = "png") -> bytes:
    """Cumulative uplift by month, one line per scenario and channel."""
    figure = _figure()
    axes = figure.add_subplot()
    series: dict[tuple[str, str], dict[int, int]] = {}
    for row in forecast.rows:
        month = series.setdefault((row.scenario, row.channel), {})
        month[row.month] = month.get(row.month, 0) + row.uplift
    for (scenario, channel), by_month in sorted(series.items()):
        total, points = 0, []
        for m in sorted(by_month):
            total += by_month[m]
            points.append(total / KOPECKS)
        axes.plot(sorted(by_month), points, marker=".", label=f"{scenario}, {channel}")
    axes.set_title("Uplift forecast, cumulative")
    axes.set_xlabel("month")
    axes.set_ylabel("roubles")
    axes.legend()
    return _render(figure, fmt)
