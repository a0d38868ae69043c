"""Figures derived from report rows. Ratios are integer basis points and averages are
integer kopecks rounded down: no floats near money."""

from __future__ import annotations

from typing import Any


def ratio_bp(part: int, whole: int) -> int | None:
    """``part / whole`` in basis points, rounded down; None when ``whole`` is zero."""
    return None if whole == 0 else part * 10_000 // whole


def average(total: int, count: int) -> int | None:
    """The mean in kopecks, rounded down; None over nothing."""
    return None if count == 0 else total // count


def health(row: dict[str, Any]) -> dict[str, Any]:
    """Program health: participation, redeemed to earned, average receipt with and without
    a card."""
    with_card = row["receipts_with_card"]
    without_card = row["receipts"] - with_card
    return {
        **row,
        "participation_bp": ratio_bp(with_card, row["receipts"]),
        "redeemed_to_earned_bp": ratio_bp(row["points_redeemed"], row["points_earned"]),
        "average_receipt_with_card": average(row["sales_with_card"], with_card),
        "average_receipt_without_card": average(row["sales_without_card"], without_card),
    }


def valued(rows: list[dict[str, Any]], points_key: str, point_value: int) -> list[dict[str, Any]]:
    """Rows with the kopecks their points are worth at the program's point value."""
    return [{**row, "value": row[points_key] * point_value} for row in rows]
