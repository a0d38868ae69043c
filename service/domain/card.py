"""What the engine knows of a loyalty card when it calculates a receipt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType

CARD_STATUSES = ("active", "blocked", "inactive")

_NO_USES: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PointLot:
    """One accrual of points: ``points`` remaining, spendable in [activates_at, expires_at)."""

    lot_id: int
    points: int
    activates_at: datetime
    expires_at: datetime | None

    def is_active(self, now: datetime) -> bool:
        return self.activates_at <= now and (self.expires_at is None or now < self.expires_at)

    def is_pending(self, now: datetime) -> bool:
        return now < self.activates_at


@dataclass(frozen=True, slots=True)
class CardState:
    """A card's state as of processing time.

    ``tier`` None means: decide from ``tier_spend`` (kopecks within the program's tier
    window). Blocked and inactive cards neither earn nor spend. ``promo_uses`` maps a
    promo code to the times this card used it; ``rule_uses`` a capped rule's period
    (``limits.use_key``) to the sales of this card it applied to; ``holds`` the points
    held for calculations (SPEC §3.5), which other tills may not spend; ``stamps`` a
    stamp rule's id to the stamps the card has collected towards its next free item.
    """

    number: str
    status: str = "active"
    tier: str | None = None
    tier_spend: int = 0
    lots: tuple[PointLot, ...] = ()
    birthday: date | None = None
    segments: frozenset[str] = frozenset()
    purchase_count: int = 0
    personal_discount_bp: int = 0
    points_earned_today: int = 0
    promo_uses: Mapping[str, int] = field(default_factory=lambda: _NO_USES)
    rule_uses: Mapping[str, int] = field(default_factory=lambda: _NO_USES)
    stamps: Mapping[str, int] = field(default_factory=lambda: _NO_USES)
    holds: tuple[tuple[str, int, datetime], ...] = ()  # calculation, points, until
    customer_id: int | None = None
    ledger_version: int = 0
    debt: int = 0

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def active_points(self, now: datetime) -> int:
        """Spendable points: lots already active and not yet expired at ``now``.

        Pending or expired points never count, whether or not a job has moved them.
        """
        return sum(lot.points for lot in self.lots if lot.is_active(now))

    def balance(self, now: datetime) -> int:
        """Active points less the points the card owes (a return after spending them under
        the negative-balance policy); below zero while the debt exceeds the points."""
        return self.active_points(now) - self.debt

    def held_points(self, now: datetime, own: str | None = None) -> int:
        """Points held for calculations other than ``own`` (SPEC §3.5), not lapsed at
        ``now``; sql/loyalty_held.sql is the ledger's twin."""
        return sum(points for calc, points, until in self.holds if until > now and calc != own)

    def spendable_points(self, now: datetime, own: str | None = None) -> int:
        """What a redemption may take now: the balance less what other calculations hold
        (``own``: the one whose hold this redemption takes), never below zero."""
        if not self.holds:
            return max(self.balance(now), 0)
        return max(self.balance(now) - self.held_points(now, own), 0)

    def pending_points(self, now: datetime) -> int:
        """Points accrued but not yet active at ``now``."""
        return sum(lot.points for lot in self.lots if lot.is_pending(now))

    def expiring(self, now: datetime, within_days: int) -> list[tuple[date, int]]:
        """Active points that expire within ``within_days`` of ``now``, summed per expiry date."""
        horizon = now + timedelta(days=within_days)
        by_date: dict[date, int] = {}
        for lot in self.lots:
            if lot.expires_at is None or not lot.is_active(now) or lot.expires_at > horizon:
                continue
            day = lot.expires_at.date()
            by_date[day] = by_date.get(day, 0) + lot.points
        return sorted(by_date.items())


@dataclass(frozen=True, slots=True)
class PromoCodeState:
    """A promo code held in the database (batch generated), as of processing time.

    ``uses_left`` None means unlimited; ``per_card_limit`` None means no per-card limit.
    A coupon bought with points (SPEC §4 item 31) is bound to its ``card``.
    """

    code: str
    rule_id: str
    active: bool = True
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    uses_left: int | None = None
    per_card_limit: int | None = None
    card: str | None = None  # a reward's coupon: the one card that may use it


def day_start(now: datetime) -> datetime:
    """Start of the (UTC) day of ``now``: the per-card daily earning cap counts from here."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
