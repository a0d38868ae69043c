"""The receipt's bounds have one definition (service/domain/receipt.py): the settings
refuse a limit the engine cannot honour, and the API's schemas take the same bounds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from service.api.schemas import CalculateRequest
from service.domain import receipt
from service.settings import Settings


def test_a_line_limit_beyond_the_engines_is_refused_at_start() -> None:
    assert Settings(max_lines=receipt.MAX_LINES).max_lines == receipt.MAX_LINES
    with pytest.raises(ValidationError):
        Settings(max_lines=2000)


def _body(**line: object) -> dict[str, object]:
    base = {"line_id": "1", "sku": "a", "quantity": "1", "unit_price": 100}
    return {"store_id": "s", "timestamp": "2026-01-01T12:00:00+03:00",
            "lines": [{**base, **line}]}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "largest"),
    [
        ("unit_price", receipt.MAX_UNIT_PRICE),
        ("quantity", str(Decimal(receipt.MAX_QUANTITY) / 1000)),
    ],
)
def test_the_schema_takes_the_engines_bounds(field: str, largest: object) -> None:
    CalculateRequest.model_validate(_body(**{field: largest}))
    beyond = largest + 1 if isinstance(largest, int) else str(Decimal(str(largest)) + 1)
    with pytest.raises(ValidationError):
        CalculateRequest.model_validate(_body(**{field: beyond}))
    lines = [
        {"line_id": str(i), "sku": "a", "quantity": "1", "unit_price": 1}
        for i in range(receipt.MAX_LINES + 1)
    ]
    with pytest.raises(ValidationError):
        CalculateRequest.model_validate({**_body(), "lines": lines})
