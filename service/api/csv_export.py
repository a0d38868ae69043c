"""CSV exports streamed page by page (keyset pagination), so that a report of millions
of rows never sits in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from service.i18n import MONEY_COLUMNS, column_header, money_text, negotiate

# A page of rows and the cursor of the next page (None: the last page).
PageFetcher = Callable[[Any], Awaitable[tuple[list[dict[str, Any]], Any]]]


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
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
    columns: Sequence[str],
    fetch: PageFetcher,
    first: tuple[list[dict[str, Any]], Any],
    language: str | None,
) -> AsyncIterator[str]:
    if language is None:
        yield _line(columns)
    else:
        yield _line([column_header(language, c) for c in columns])
    rows, cursor = first
    while True:
        if language is None:
            yield "".join(_line([row.get(c) for c in columns]) for row in rows)
        else:
            yield "".join(_line([_for_people(language, c, row.get(c)) for c in columns])
                          for row in rows)  # fmt: skip
        if cursor is None:
            return
        rows, cursor = await fetch(cursor)


def _for_people(language: str, column: str, value: Any) -> Any:
    if column in MONEY_COLUMNS and isinstance(value, int):
        return money_text(language, value)
    return value


def people_language(request: Request, default: str) -> str | None:
    """The language a CSV is read in by people: the one ``Accept-Language`` asks for (a
    browser, a spreadsheet's download), else the chain's when not English; None: a
    program's download, in the columns' own names and kopecks."""
    asked = request.headers.get("accept-language")
    if asked:
        return negotiate(asked, default)
    return None if default == "en" else default


async def csv_response(
    filename: str, columns: Sequence[str], fetch: PageFetcher, language: str | None = None
) -> StreamingResponse:
    """The first page is read before the answer starts: a refusal (an unknown card, a bad
    cursor) is still a clean 4xx, not a stream cut after its headers (the OpenAPI fuzz
    found one: an unknown card's history as CSV). With a ``language``, the headers are
    its, and money is in roubles as it writes them (``service.i18n``)."""
    first = await fetch(None)
    return StreamingResponse(
        _lines(columns, fetch, first, language),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def csv_content(example: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a CSV answer, with its example."""
    return {200: {"content": {"text/csv": {"schema": {"type": "string"}, "example": example}}}}
