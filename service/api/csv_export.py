"""CSV exports streamed page by page (keyset pagination), so that a report of millions
of rows never sits in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any

from starlette.responses import StreamingResponse

# A page of rows and the cursor of the next page (None: the last page).
PageFetcher = Callable[[Any], Awaitable[tuple[list[dict[str, Any]], Any]]]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return value


def _line(values: Sequence[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


async def _lines(
    columns: Sequence[str], fetch: PageFetcher, first: tuple[list[dict[str, Any]], Any]
) -> AsyncIterator[str]:
    yield _line(columns)
    rows, cursor = first
    while True:
        yield "".join(_line([row.get(c) for c in columns]) for row in rows)
        if cursor is None:
            return
        rows, cursor = await fetch(cursor)


async def csv_response(
    filename: str, columns: Sequence[str], fetch: PageFetcher
) -> StreamingResponse:
    """The first page is read before the answer starts: a refusal (an unknown card, a bad
    cursor) is still a clean 4xx, not a stream cut after its headers (the OpenAPI fuzz
    found one: an unknown card's history as CSV)."""
    first = await fetch(None)
    return StreamingResponse(
        _lines(columns, fetch, first),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def csv_content(example: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a CSV answer, with its example."""
    return {200: {"content": {"text/csv": {"schema": {"type": "string"}, "example": example}}}}
