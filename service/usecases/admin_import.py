"""CSV import of customers and cards. Each row is checked on its own; a bad row is
reported by its line and reason and the good rows are imported all the same."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from service.domain.errors import invalid_field
from service.usecases.admin_cards import Welcome, refresh, welcome_for
from service.usecases.ports import CardStates, Programs

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Row(Generic[M]):
    line: int
    value: M


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: int
    rejected: list[Rejected]  # by line


class RowImporter(Protocol):
    async def import_rows(
        self,
        kind: str,
        rows: Sequence[tuple[int, dict[str, Any]]],
        welcome: Welcome | None,
        author: str,
    ) -> tuple[list[str], list[tuple[int, str]]]:
        """Write each row on its own; the card numbers touched and the (line, reason) of
        each row the database refused."""
        ...


def decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise invalid_field("body", f"not UTF-8 text (byte {error.start})") from None


def _reason(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in error.errors()
    )


def _records(text: str, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or ()]
    missing = [name for name in required if name not in header]
    if missing:
        raise invalid_field("body", f"the header lacks column(s): {', '.join(missing)}")
    reader.fieldnames = header
    for record in reader:
        yield reader.line_num, record


def parse_rows(
    text: str, model: type[M], required: Sequence[str], max_rows: int
) -> tuple[list[Row[M]], list[Rejected]]:
    """Rows of ``text`` (CSV with a header) as ``model``; blank cells are absent fields."""
    rows: list[Row[M]] = []
    rejected: list[Rejected] = []
    for line, record in _records(text, required):
        if len(rows) + len(rejected) >= max_rows:
            raise invalid_field("body", f"at most {max_rows} rows per import")
        if None in record:
            rejected.append(Rejected(line, "more cells than columns"))
            continue
        cells = {k: v.strip() for k, v in record.items() if v is not None and v.strip()}
        try:
            rows.append(Row(line, model.model_validate(_shaped(cells))))
        except ValidationError as error:
            rejected.append(Rejected(line, _reason(error)))
    return rows, rejected


def _shaped(cells: Mapping[str, str]) -> dict[str, Any]:
    """Lists are written ``a;b`` in a cell."""
    return {k: v.split(";") if k == "segments" else v for k, v in cells.items()}


async def import_rows(
    repo: RowImporter,
    cards: CardStates,
    programs: Programs,
    kind: str,
    rows: Sequence[Row[M]],
    rejected: Sequence[Rejected],
    author: str,
    now: datetime,
) -> ImportReport:
    """Import the parsed ``rows`` of ``kind`` ("customers" or "cards"); registered cards
    get the welcome points. The report counts the rows imported and lists, by line,
    those rejected when parsed and those the database refused."""
    values = [(row.line, row.value.model_dump(exclude_none=True)) for row in rows]
    welcome = welcome_for(programs.current, now)
    touched, refused = await repo.import_rows(kind, values, welcome, author)
    await refresh(cards, programs, touched, now)
    report = sorted([(r.line, r.reason) for r in rejected] + refused)
    return ImportReport(len(rows) - len(refused), [Rejected(*entry) for entry in report])
