"""The tests' clock: every time a test sends to the service is relative to now.

The service stamps what it writes with the real time (``datetime.now`` in Python,
``now()`` in Postgres), so a receipt dated on a fixed day ages: two weeks later its
accrual has become active, a year later its points have expired. Tests take their
receipt times from here instead, so they read the same on any day they run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.rules.demo import demo_program

MOSCOW = ZoneInfo("Europe/Moscow")


def last_friday_noon(now: datetime | None = None) -> datetime:
    """The latest Friday 12:00 in Moscow at least an hour before ``now``: a weekday
    outside happy hours, in the past, and recent enough that a sale made then still
    has its points pending (the demo's return window is 14 days)."""
    local = (now or datetime.now(UTC)).astimezone(MOSCOW) - timedelta(hours=1)
    friday = local - timedelta(days=(local.weekday() - 4) % 7)
    noon = friday.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon if noon <= local else noon - timedelta(days=7)


FRIDAY_NOON_AT = last_friday_noon()
FRIDAY_NOON = FRIDAY_NOON_AT.isoformat()
# The Moscow day of FRIDAY_NOON, as a report period.
FRIDAY = {
    "since": FRIDAY_NOON_AT.replace(hour=0).isoformat(),
    "until": (FRIDAY_NOON_AT.replace(hour=0) + timedelta(days=1)).isoformat(),
}


def campaign_around_now(today: date | None = None) -> tuple[date, date]:
    """AUTUMN10's dates moved to cover the tests' sales: from a month before today to a
    month after it."""
    today = today or datetime.now(MOSCOW).date()
    return today - timedelta(days=30), today + timedelta(days=30)


def demo_program_now() -> dict[str, Any]:
    """The demo program as the test session loads it: SPEC §9's, with AUTUMN10 running now."""
    return demo_program(campaign_around_now())
