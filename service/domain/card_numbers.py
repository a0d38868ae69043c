"""Card numbers as a program prints them (SPEC §12): free digits, or EAN-13 whose last
digit checks the other twelve, so that a misread barcode is refused instead of found as
another card. Check digits come from python-stdnum, not from code of ours."""

from __future__ import annotations

from stdnum import ean

from service.domain.errors import InvalidInput

FORMATS = ("digits", "ean13")


def check_card_number(number: str, number_format: str) -> None:
    """Refuse a number the program's format does not allow (``card_number_invalid``)."""
    if number_format == "ean13" and not (len(number) == 13 and ean.is_valid(number)):
        raise InvalidInput(
            f"card {number} is not a valid EAN-13 number (13 digits, the last one checking"
            " the others)",
            code="card_number_invalid",
        )


def range_numbers(first: str, last: str, number_format: str) -> list[str]:
    """Every number from ``first`` to ``last``: as written for free digits; for EAN-13,
    the twelve-digit bodies from ``first``'s to ``last``'s (12 digits, or 13 whose last
    is ignored), each with its check digit."""
    if number_format != "ean13":
        width = len(first)
        return [str(n).zfill(width) for n in range(int(first), int(last) + 1)]
    low, high = int(first[:12]), int(last[:12])
    bodies = (f"{n:012d}" for n in range(low, high + 1))
    return [body + ean.calc_check_digit(body) for body in bodies]
