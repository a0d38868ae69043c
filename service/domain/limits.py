"""Use caps of automatic rules (SPEC §4 item 30): how many sales a rule may apply to, in
total and per card, for good or per calendar day, week or month.

A use is a sale the rule applied to. Counts are kept per rule and period: the period a
receipt falls in is its store-local date's day, ISO week (from its Monday) or month, and
a key names it (``""`` for a cap with no period). A calculation reads the counts from a
view a few seconds old and the card's own uses from its state; the commit reserves each
use under lock (sql/loyalty_commit.sql), so a cap is never exceeded however many tills
sell at once, and a cancel or a full refund gives the use back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import NamedTuple

PERIODS = ("day", "week", "month")


class RuleCap(NamedTuple):
    """A rule's use caps as the program states them; None: no such cap."""

    rule_id: str
    max_uses: int | None
    max_uses_per_card: int | None
    period: str | None  # "day", "week", "month"; None: the caps count for good


class RuleUse(NamedTuple):
    """A use a sale takes of a capped rule, with the caps the commit holds it to."""

    rule_id: str
    period: str  # the period's key
    max_uses: int | None
    max_uses_per_card: int | None


def period_key(period: str | None, local_date: date) -> str:
    """The key of the period ``local_date`` falls in: ``""``, ``d2026-12-07``,
    ``w2026-12-07`` (the week's Monday) or ``m2026-12``."""
    if period is None:
        return ""
    if period == "day":
        return f"d{local_date.isoformat()}"
    if period == "week":
        return f"w{(local_date - timedelta(days=local_date.weekday())).isoformat()}"
    return f"m{local_date.year:04d}-{local_date.month:02d}"


def use_key(rule_id: str, period: str) -> str:
    """How counts are keyed in a view or a card's state: rule and period."""
    return f"{rule_id} {period}" if period else rule_id


def uses_taken(caps: Sequence[RuleCap], local_date: date) -> dict[str, RuleUse]:
    """Per capped rule, the use a sale on ``local_date`` would take."""
    return {
        cap.rule_id: RuleUse(
            cap.rule_id, period_key(cap.period, local_date), cap.max_uses, cap.max_uses_per_card
        )
        for cap in caps
    }


def used_up(
    uses: Mapping[str, RuleUse], total: Mapping[str, int], on_card: Mapping[str, int] | None
) -> frozenset[str]:
    """The rules whose caps leave no use for this sale: by the counts of every card
    (``total``) or this card's own (``on_card``; None without a card, which a per-card
    cap needs: the rule asks for a card, as any card condition does)."""
    return frozenset(use.rule_id for use in uses.values() if not _room(use, total, on_card))


def _room(use: RuleUse, total: Mapping[str, int], on_card: Mapping[str, int] | None) -> bool:
    key = use_key(use.rule_id, use.period)
    if use.max_uses is not None and total.get(key, 0) >= use.max_uses:
        return False
    if use.max_uses_per_card is None or on_card is None:
        return True
    return on_card.get(key, 0) < use.max_uses_per_card
