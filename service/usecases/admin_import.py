"""Imports of customers and cards as chains have them (SPEC §12): CSV exported by 1C or
Excel (UTF-8 with or without a BOM, or Windows-1251; comma, semicolon or tab; dates as
1985-05-05 or 05.05.1985) or an XLSX workbook's first sheet. Each row is checked on its
own; a bad row is reported by its line and reason, and a dry run reports them all before
anything is written. Columns the import does not know become the customer's custom
attributes (a clothing size, a loyalty club), or are mapped to known ones by the header
mapping given with the upload."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from service.domain.card_numbers import check_card_number
from service.domain.errors import DomainError, NotFound, invalid_field
from service.usecases.admin_cards import Welcome, refresh, welcome_for
from service.usecases.ports import CardStates, Programs

M = TypeVar("M", bound=BaseModel)

# What a customers row may name; any other column becomes an attribute.
CUSTOMER_FIELDS = ("name", "phone", "email", "birthday", "segments", "card")
_DOTTED_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_XLSX = b"PK\x03\x04"  # a zip archive: an Office Open XML workbook


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
    imported: int  # rows written anew
    unchanged: int  # rows already in the ledger as they are (a file imported again)
    rejected: list[Rejected]  # by line
    dry_run: bool = False  # nothing was written: what an import would do


class ImportJobs(Protocol):
    async def create(self, kind: str, dry_run: bool, author: str, total: int) -> int: ...

    async def progress(self, job_id: int, done: int) -> None: ...

    async def finish(self, job_id: int, report: dict[str, Any]) -> None: ...

    async def fail(self, job_id: int, error: str) -> None: ...

    async def get(self, job_id: int) -> dict[str, Any] | None: ...


class RowImporter(Protocol):
    async def import_rows(
        self,
        kind: str,
        rows: Sequence[tuple[int, dict[str, Any]]],
        welcome: Welcome | None,
        author: str,
        dry_run: bool = False,
    ) -> tuple[list[str], list[tuple[int, str]], int]:
        """Write each row on its own (or only try, with ``dry_run``); the card numbers
        touched, the (line, reason) of each row the database refused, and how many rows
        were there already."""
        ...


def decode(body: bytes) -> str:
    """UTF-8 (a BOM dropped), else Windows-1251, what 1C and Russian Excel write."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("cp1251")
    except UnicodeDecodeError as error:
        raise invalid_field(
            "body", f"neither UTF-8 nor Windows-1251 text (byte {error.start})"
        ) from None


def table(body: bytes) -> Iterator[tuple[int, list[str]]]:
    """The upload's rows with their line numbers: an XLSX workbook's first sheet, or CSV
    in whichever encoding and delimiter it was written."""
    if body.startswith(_XLSX):
        yield from _sheet(body)
        return
    text = decode(body)
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t|", key=first.count) if first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for cells in reader:
        yield reader.line_num, cells


def _sheet(body: bytes) -> Iterator[tuple[int, list[str]]]:
    import openpyxl  # only for workbooks

    try:
        book = openpyxl.load_workbook(io.BytesIO(body), read_only=True, data_only=True)
    except Exception:  # a damaged archive, or not a workbook: openpyxl raises many kinds
        raise invalid_field("body", "not a readable XLSX workbook") from None
    for line, values in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1):
        yield line, ["" if v is None else _cell_text(v) for v in values]


def _cell_text(value: object) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone or a card number Excel stored as a number
    return str(value)


def column_mapping(columns: str | None) -> dict[str, str]:
    """``Телефон=phone;ФИО=name``: the upload's own column names for the known ones."""
    if not columns:
        return {}
    pairs = [pair.partition("=") for pair in columns.split(";") if pair.strip()]
    if any(not sep or not theirs.strip() or not ours.strip() for theirs, sep, ours in pairs):
        raise invalid_field("columns", "write it as Their name=our name;Other=other")
    return {theirs.strip(): ours.strip() for theirs, _, ours in pairs}


def _reason(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in error.errors()
    )


def _records(
    body: bytes, required: Sequence[str], mapping: Mapping[str, str]
) -> Iterator[tuple[int, dict[str, str] | None]]:
    """(line, cells by column) per row; None for a row with more cells than columns."""
    rows = table(body)
    try:
        _, header = next(rows)
    except StopIteration:
        raise invalid_field("body", "the upload is empty") from None
    names = [mapping.get(name.strip(), name.strip()) for name in header]
    missing = [name for name in required if name not in names]
    if missing:
        raise invalid_field("body", f"the header lacks column(s): {', '.join(missing)}")
    for line, cells in rows:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, as spreadsheets leave at the end
        yield line, None if len(cells) > len(names) else dict(zip(names, cells, strict=False))


def parse_rows(
    body: bytes,
    model: type[M],
    required: Sequence[str],
    max_rows: int,
    mapping: Mapping[str, str] | None = None,
    known: Sequence[str] | None = None,
) -> tuple[list[Row[M]], list[Rejected]]:
    """Rows of the upload (a header, then a row per line) as ``model``; blank cells are
    absent fields, dates may be written 05.05.1985, and where ``known`` names the model's
    columns, any other column goes into the row's ``attributes``."""
    rows: list[Row[M]] = []
    rejected: list[Rejected] = []
    for line, record in _records(body, required, mapping or {}):
        if len(rows) + len(rejected) >= max_rows:
            raise invalid_field("body", f"at most {max_rows} rows per import")
        if record is None:
            rejected.append(Rejected(line, "more cells than columns"))
            continue
        cells = {k: v.strip() for k, v in record.items() if v.strip()}
        try:
            rows.append(Row(line, model.model_validate(_shaped(cells, known))))
        except ValidationError as error:
            rejected.append(Rejected(line, _reason(error)))
    return rows, rejected


def _shaped(cells: Mapping[str, str], known: Sequence[str] | None) -> dict[str, Any]:
    """Lists are written ``a;b`` in a cell; a date ``05.05.1985`` is 1985-05-05; columns
    outside ``known`` are attributes."""
    shaped: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for name, value in cells.items():
        if known is not None and name not in known:
            attributes[name] = value
        elif name == "segments":
            shaped[name] = value.split(";")
        elif name == "birthday" and (dotted := _DOTTED_DATE.match(value)):
            day, month, year = dotted.groups()
            shaped[name] = f"{year}-{int(month):02d}-{int(day):02d}"
        else:
            shaped[name] = value
    if attributes:
        shaped["attributes"] = attributes
    return shaped


async def import_rows(
    repo: RowImporter,
    cards: CardStates,
    programs: Programs,
    kind: str,
    rows: Sequence[Row[M]],
    rejected: Sequence[Rejected],
    author: str,
    now: datetime,
    dry_run: bool = False,
) -> ImportReport:
    """Import the parsed ``rows`` of ``kind`` ("customers" or "cards"); registered cards
    get the welcome points. The report counts the rows imported and those already there,
    and lists, by line, those rejected when parsed and those the database refused. A dry
    run writes nothing and reports the same."""
    rows, rejected, welcome = _under_program(rows, rejected, programs, now)
    values = [(row.line, row.value.model_dump(exclude_none=True)) for row in rows]
    touched, refused, unchanged = await repo.import_rows(kind, values, welcome, author, dry_run)
    if not dry_run:
        await refresh(cards, programs, touched, now)
    report = sorted([(r.line, r.reason) for r in rejected] + refused)
    return ImportReport(
        len(rows) - len(refused) - unchanged,
        unchanged,
        [Rejected(*entry) for entry in report],
        dry_run,
    )


CHUNK = 2_000  # rows per transaction in a long import: its progress moves as it goes,
# and no lock is held for the whole of it


async def import_in_chunks(
    repo: RowImporter,
    kind: str,
    rows: Sequence[Row[M]],
    rejected: Sequence[Rejected],
    welcome: Welcome | None,
    author: str,
    *,
    dry_run: bool = False,
    progress: Callable[[int], Awaitable[None]] | None = None,
) -> tuple[ImportReport, list[str]]:
    """A long import (the command line's, a background job's): the rows written a chunk
    per transaction, ``progress`` told the rows done after each; the report, and the
    card numbers touched (their cached states to refresh)."""
    imported = unchanged = 0
    refused: list[tuple[int, str]] = []
    touched: list[str] = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        values = [(row.line, row.value.model_dump(exclude_none=True)) for row in chunk]
        cards, no, same = await repo.import_rows(kind, values, welcome, author, dry_run)
        touched += cards
        refused += no
        unchanged += same
        imported += len(chunk) - len(no) - same
        if progress is not None:
            await progress(start + len(chunk))
    report = sorted([(r.line, r.reason) for r in rejected] + refused)
    rejected_rows = [Rejected(*entry) for entry in report]
    return ImportReport(imported, unchanged, rejected_rows, dry_run), touched


def well_numbered(
    rows: Sequence[Row[M]], number_format: str
) -> tuple[list[Row[M]], list[Rejected]]:
    """The rows whose card number (``number`` or ``card``) the program's format allows,
    and the others, rejected by line (SPEC §12: EAN-13 numbers checked on every input)."""
    kept: list[Row[M]] = []
    refused: list[Rejected] = []
    for row in rows:
        number = getattr(row.value, "number", None) or getattr(row.value, "card", None)
        try:
            if number is not None:
                check_card_number(number, number_format)
        except DomainError as error:
            refused.append(Rejected(row.line, f"card: {error.message}"))
            continue
        kept.append(row)
    return kept, refused


def _under_program(
    rows: Sequence[Row[M]], rejected: Sequence[Rejected], programs: Programs, now: datetime
) -> tuple[list[Row[M]], list[Rejected], Welcome | None]:
    """The rows the current program's card number format allows, the rejected ones with
    those it does not, and the welcome points registered cards get."""
    program = programs.current
    kept, misnumbered = well_numbered(rows, program.document.card_number_format)
    return kept, [*rejected, *misnumbered], welcome_for(program, now)


def report_view(report: ImportReport) -> dict[str, Any]:
    """The report as the back office reads it (``ImportOut``)."""
    return {
        "imported": report.imported,
        "unchanged": report.unchanged,
        "rejected": [{"line": r.line, "reason": r.reason} for r in report.rejected],
        "dry_run": report.dry_run,
    }


async def start_job(
    jobs: ImportJobs,
    repo: RowImporter,
    cards: CardStates,
    programs: Programs,
    kind: str,
    rows: Sequence[Row[M]],
    rejected: Sequence[Rejected],
    author: str,
    now: datetime,
    *,
    dry_run: bool,
    spawn: Callable[[Coroutine[Any, Any, None]], object],
) -> dict[str, Any]:
    """A long import in the background: the job, at once; its progress and report in
    ``jobs`` (``job_view``), a chunk at a time."""
    rows, rejected, welcome = _under_program(rows, rejected, programs, now)
    job_id = await jobs.create(kind, dry_run, author, len(rows))

    async def run() -> None:
        try:
            report, touched = await import_in_chunks(
                repo, kind, rows, rejected, welcome, author, dry_run=dry_run,
                progress=lambda done: jobs.progress(job_id, done),
            )  # fmt: skip
            if not dry_run:
                await refresh(cards, programs, touched, now)
            await jobs.finish(job_id, report_view(report))
        except Exception as exc:  # the job says so; nothing else is waiting for it
            await jobs.fail(job_id, f"{type(exc).__name__}: {exc}")

    spawn(run())
    return {"job_id": job_id, "status": "running", "total": len(rows), "done": 0}


async def job_view(jobs: ImportJobs, job_id: int) -> dict[str, Any]:
    job = await jobs.get(job_id)
    if job is None:
        raise NotFound("no such import job", code="import_job_not_found")
    report = job.pop("report") or {}
    return {**job, **report}
