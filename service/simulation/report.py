"""What a simulation's runs add up to, per program and side by side (SPEC §10.1).

Money is kopecks and points are points, integers throughout; a share is basis points.
Months are store-local for sales and UTC for lot expiry (a lot expires at an instant).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from service.rules.compiler import CompiledProgram
from service.simulation import _returns, _state
from service.simulation.engine import Assumptions, Prepared, Progress, Run, simulate

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
BP = 10_000


@dataclass(frozen=True, slots=True)
class RuleEffect:
    rule_id: str
    name: str
    discount: int  # kopecks
    points: int
    receipts: int  # sales it applied to


@dataclass(frozen=True, slots=True)
class Slice:
    """The sales of one store, or of one month."""

    receipts: int
    sales: int  # kopecks before discounts
    discount: int
    points_earned: int
    points_redeemed: int


@dataclass(frozen=True, slots=True)
class Summary:
    """One program over the period; ``*_value`` fields are kopecks (points x point value)."""

    program_version: int
    point_value: int  # kopecks a point pays for
    receipts: int
    receipts_with_card: int
    sales: int
    discount: int
    points_earned: int
    points_earned_value: int
    points_redeemed: int
    points_redeemed_value: int  # kopecks paid with points
    points_expired: int  # in the period: breakage already realised
    liability_points: int  # pending and active at the period's end
    liability_value: int
    liability_by_expiry_month: dict[str, int]  # points, by the month their lot expires
    breakage_rate_bp: int  # the assumed share of the liability never to be spent
    expected_breakage_points: int  # of the net liability
    receipts_touched: int  # a rule applied
    customers_touched: int  # cards with such a sale
    tier_mix: dict[str, dict[str, int]]  # month -> tier -> cards that bought in the month
    tier_codes: list[str]  # the ladder, lowest first ("none": below it)
    per_rule: list[RuleEffect]
    per_store: dict[str, Slice]
    per_month: dict[str, Slice]
    # the period's returns (``ReceiptSet.returns``), as the ledger reverses them
    returns: int = 0
    returned_money: int = 0  # kopecks the customers had paid in money for what went back
    points_taken_back: int = 0  # earned points reversed (from lots, or owed)
    points_given_back: int = 0  # redeemed points given back to the cards
    points_owed: int = 0  # of those taken back, the points the cards had already spent
    # at the period's end: points still owed (not yet repaid from later accruals), and
    # the liability net of them: per card its points less what it owes, never below 0
    points_owed_at_end: int = 0
    liability_net_points: int = 0
    liability_net_value: int = 0


def summarize(prepared: Prepared, run: Run, breakage_rate_bp: int | None = None) -> Summary:
    """``breakage_rate_bp`` None: the period's own, 1 - redeemed / earned."""
    receipts, rows, program = prepared.receipts, run.per_receipt, run.program
    point_value = program.settings.point_value
    earned, redeemed = int(rows[:, _state.P_EARNED].sum()), int(rows[:, _state.P_REDEEMED].sum())
    lots = run.lots
    live = (lots[:, _state.LOT_LEFT] > 0) & (lots[:, _state.LOT_EXPIRES] > run.ends_at)
    expired = int(lots[:, _state.LOT_EXPIRED].sum() + lots[~live, _state.LOT_LEFT].sum())
    liability = int(lots[live, _state.LOT_LEFT].sum())
    net = _net_liability(receipts.card, lots, live, run.debt)
    rate = (
        breakage_rate_bp if breakage_rate_bp is not None else _observed_breakage(earned, redeemed)
    )
    touched = rows[:, _state.P_TOUCHED] == 1
    subtotals = _receipt_sums(prepared)
    return Summary(
        program_version=program.version,
        point_value=point_value,
        receipts=len(receipts),
        receipts_with_card=int((receipts.card >= 0).sum()),
        sales=int(subtotals.sum()),
        discount=int(rows[:, _state.P_DISCOUNT].sum()),
        points_earned=earned,
        points_earned_value=earned * point_value,
        points_redeemed=redeemed,
        points_redeemed_value=int(rows[:, _state.P_PAID].sum()),
        points_expired=expired,
        liability_points=liability,
        liability_value=liability * point_value,
        liability_by_expiry_month=_by_expiry_month(lots[live]),
        breakage_rate_bp=rate,
        expected_breakage_points=net * rate // BP,
        receipts_touched=int(touched.sum()),
        customers_touched=len(np.unique(receipts.card[touched & (receipts.card >= 0)])),
        tier_mix=_tier_mix(prepared, run),
        tier_codes=[*program.tier_codes, "none"],
        per_rule=[
            RuleEffect(rule_id, name, *(int(v) for v in row))
            for rule_id, name, row in zip(
                program.rule_ids, program.rule_names, run.per_rule.tolist(), strict=True
            )
        ],
        per_store=_slices(rows, subtotals, receipts.store, [s.store_id for s in receipts.stores]),
        per_month=_slices(rows, subtotals, *_months(prepared.local_date)),
        **_returned(run),
        points_owed_at_end=int(run.debt.sum()),
        liability_net_points=net,
        liability_net_value=net * point_value,
    )


def _net_liability(card: IntArray, lots: IntArray, live: BoolArray, debt: IntArray) -> int:
    """Live points less what each card owes, per card never below zero (a card that owes
    more than it holds repays from accruals to come: no negative liability)."""
    if not len(debt):
        return int(lots[live, _state.LOT_LEFT].sum())
    mine = live & (card >= 0)
    held = np.zeros(len(debt), dtype=np.int64)
    np.add.at(held, card[mine], lots[mine, _state.LOT_LEFT])
    anonymous = int(lots[live & (card < 0), _state.LOT_LEFT].sum())
    return anonymous + int(np.maximum(held - debt, 0).sum())


def _returned(run: Run) -> dict[str, int]:
    back = run.per_return.sum(axis=0).tolist() if len(run.per_return) else [0] * 5
    return {
        "returns": len(run.per_return),
        "returned_money": int(back[_returns.RT_MONEY]),
        "points_taken_back": int(back[_returns.RT_POINTS_TAKEN]),
        "points_given_back": int(back[_returns.RT_POINTS_BACK]),
        "points_owed": int(back[_returns.RT_DEBT]),
    }


def _observed_breakage(earned: int, redeemed: int) -> int:
    """The share of points earned in the period that were not spent in it, in bp."""
    if earned <= 0:
        return 0
    return max(0, BP - redeemed * BP // earned)


def _receipt_sums(prepared: Prepared) -> IntArray:
    if not len(prepared.receipts):
        return np.zeros(0, dtype=np.int64)
    return np.add.reduceat(prepared.amounts, prepared.receipts.line_ptr[:-1])


def _months(local_date: IntArray) -> tuple[IntArray, list[str]]:
    """Each receipt's month index and the months' names ("2026-03"), in order."""
    days, where = np.unique(local_date, return_inverse=True)
    names = [date.fromordinal(int(d)).strftime("%Y-%m") for d in days.tolist()]
    months = sorted(set(names))
    position = {m: i for i, m in enumerate(months)}
    return np.array([position[n] for n in names], dtype=np.int64)[where.reshape(-1)], months


def _slices(
    rows: IntArray, subtotals: IntArray, key: IntArray, names: list[str]
) -> dict[str, Slice]:
    size = len(names)

    def total(values: IntArray) -> list[int]:
        sums = np.zeros(size, dtype=np.int64)  # integers: kopecks are never floats (SPEC §2)
        np.add.at(sums, key, values)
        return sums.tolist()

    columns = (
        np.bincount(key, minlength=size).tolist(),
        total(subtotals),
        total(rows[:, _state.P_DISCOUNT]),
        total(rows[:, _state.P_EARNED]),
        total(rows[:, _state.P_REDEEMED]),
    )
    return {name: Slice(*(int(c[i]) for c in columns)) for i, name in enumerate(names)}


def _by_expiry_month(lots: IntArray) -> dict[str, int]:
    """Points left, by the UTC month their lot expires ("never" for points that do not)."""
    expires, left = lots[:, _state.LOT_EXPIRES], lots[:, _state.LOT_LEFT]
    never = expires == _state.NEVER
    days, where = np.unique(expires[~never] // _state.DAY_S, return_inverse=True)
    names = [_utc_month(int(d) * _state.DAY_S) for d in days.tolist()]
    per_day = np.zeros(len(days), dtype=np.int64)
    np.add.at(per_day, where.reshape(-1), left[~never])
    months: dict[str, int] = {}
    for name, points in zip(names, per_day.tolist(), strict=True):
        months[name] = months.get(name, 0) + points
    if never.any():
        months["never"] = int(left[never].sum())
    return dict(sorted(months.items()))


def _utc_month(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m")


def _tier_mix(prepared: Prepared, run: Run) -> dict[str, dict[str, int]]:
    """Per month, the cards that bought in it by the tier after their last sale in it."""
    receipts = prepared.receipts
    month, names = _months(prepared.local_date)
    with_card = np.flatnonzero(receipts.card >= 0)
    key = month[with_card] * max(len(receipts.cards), 1) + receipts.card[with_card]
    _, last_from_end = np.unique(key[::-1], return_index=True)
    last = with_card[len(with_card) - 1 - last_from_end]
    codes = [*run.program.tier_codes, "none"]  # index -1 reads "none"
    mix: dict[str, dict[str, int]] = {name: {} for name in names}
    for m, tier in zip(
        month[last].tolist(), run.per_receipt[last, _state.P_TIER_AFTER].tolist(), strict=True
    ):
        counts = mix[names[m]]
        counts[codes[tier]] = counts.get(codes[tier], 0) + 1
    return mix


_NOT_SUMMED = ("program_version", "point_value", "breakage_rate_bp")


@dataclass(frozen=True, slots=True)
class Comparison:
    current: Summary
    draft: Summary

    def difference(self) -> dict[str, int]:
        """Draft less current, for every whole-period figure."""
        now, then = asdict(self.draft), asdict(self.current)
        return {
            k: v - then[k] for k, v in now.items() if isinstance(v, int) and k != "program_version"
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "current": asdict(self.current),
            "draft": asdict(self.draft),
            "difference": self.difference(),
            "per_rule": rules_side_by_side(self.current, self.draft),
        }

    def as_csv(self) -> str:
        """One row per figure: ``section,key,figure,current,draft,difference``."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["section", "key", "figure", "current", "draft", "difference"])
        for figure, delta in self.difference().items():
            writer.writerow(
                [
                    "total",
                    "",
                    figure,
                    getattr(self.current, figure),
                    getattr(self.draft, figure),
                    delta,
                ]
            )
        for row in rules_side_by_side(self.current, self.draft):
            for figure in ("discount", "points", "receipts"):
                c, d = row["current"][figure], row["draft"][figure]
                writer.writerow(["rule", row["rule_id"], figure, c, d, d - c])
        for section in ("per_store", "per_month"):
            mine, theirs = getattr(self.current, section), getattr(self.draft, section)
            for key in sorted(set(mine) | set(theirs)):
                for figure in ("receipts", "sales", "discount", "points_earned", "points_redeemed"):
                    c = getattr(mine[key], figure) if key in mine else 0
                    d = getattr(theirs[key], figure) if key in theirs else 0
                    writer.writerow([section.removeprefix("per_"), key, figure, c, d, d - c])
        return out.getvalue()


_NO_EFFECT = {"discount": 0, "points": 0, "receipts": 0}


def rules_side_by_side(current: Summary, draft: Summary) -> list[dict[str, Any]]:
    """Every rule of either program, its effect under each (none where it is absent)."""
    mine = {r.rule_id: r for r in current.per_rule}
    theirs = {r.rule_id: r for r in draft.per_rule}
    ids = [r.rule_id for r in current.per_rule] + [i for i in theirs if i not in mine]

    def effect(rule: RuleEffect | None) -> dict[str, int]:
        if rule is None:
            return dict(_NO_EFFECT)
        return {"discount": rule.discount, "points": rule.points, "receipts": rule.receipts}

    return [
        {
            "rule_id": i,
            "name": (theirs.get(i) or mine[i]).name,
            "current": effect(mine.get(i)),
            "draft": effect(theirs.get(i)),
        }
        for i in ids
    ]


def compare(
    prepared: Prepared,
    current: CompiledProgram,
    draft: CompiledProgram,
    assumptions: Assumptions | None = None,
    progress: Progress | None = None,
    breakage_rate_bp: int | None = None,
) -> Comparison:
    """The period under the current program, then under the draft, the same assumptions
    for both; ``progress`` is told receipts done of twice the period's."""
    size = len(prepared.receipts)

    def second_half(done: int) -> None:
        if progress is not None:
            progress(size + done)

    runs = (
        simulate(prepared, current, assumptions, progress),
        simulate(prepared, draft, assumptions, second_half),
    )
    first, second = (summarize(prepared, run, breakage_rate_bp) for run in runs)
    return Comparison(first, second)


def comparison_from_json(data: dict[str, Any]) -> Comparison:
    """A comparison back from ``Comparison.as_json`` (a stored job's result)."""

    def summary(fields: dict[str, Any]) -> Summary:
        return Summary(
            **{
                **fields,
                "per_rule": [RuleEffect(**r) for r in fields["per_rule"]],
                "per_store": {k: Slice(**v) for k, v in fields["per_store"].items()},
                "per_month": {k: Slice(**v) for k, v in fields["per_month"].items()},
            }
        )

    return Comparison(summary(data["current"]), summary(data["draft"]))
