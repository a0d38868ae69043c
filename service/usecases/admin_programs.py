"""Use cases of the back office over program versions: drafts, validation, dry runs,
publication (now or scheduled), rollback.

Publishing is one database transaction (the version becomes current), then an
announcement that makes every worker of every pod load it; a lost announcement costs
only the delay of the workers' periodic re-read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from service.domain.errors import Conflict, NotFound, ProgramInvalid
from service.domain.receipt import Receipt
from service.i18n import reason_text
from service.rules.compiler import compile_program
from service.rules.document import ProgramDocument, parse_program
from service.usecases.calculate import SalePorts, evaluate


@dataclass(frozen=True, slots=True)
class DeclaredCode:
    """A promo code declared in a program document; its limits are enforced by the ledger."""

    code: str
    rule_ids: tuple[str, ...]
    max_uses: int | None
    per_card_limit: int | None


def declared_codes(document: ProgramDocument) -> list[DeclaredCode]:
    return [
        DeclaredCode(
            code=promo.code.strip().upper(),
            rule_ids=tuple(promo.rules),
            max_uses=promo.total_limit,
            per_card_limit=promo.per_card_limit,
        )
        for promo in document.promo_codes
    ]


_log = logging.getLogger(__name__)


class ProgramStore(Protocol):
    async def create_draft(self, document: Mapping[str, Any], author: str) -> int: ...

    async def update_draft(
        self, version: int, document: Mapping[str, Any], author: str
    ) -> None: ...

    async def schedule(self, version: int, publish_at: datetime | None, author: str) -> None: ...

    async def publish(self, version: int, author: str, codes: Sequence[DeclaredCode]) -> None: ...

    async def roll_back(self, version: int, author: str, codes: Sequence[DeclaredCode]) -> None: ...

    async def delete_draft(self, version: int, author: str) -> None: ...

    async def document(self, version: int) -> dict[str, Any] | None: ...

    async def due_drafts(self, now: datetime) -> list[int]: ...

    async def get(self, version: int) -> dict[str, Any] | None:
        """The version's row (status, dates, document), or None if there is none."""
        ...

    async def summaries(self, *, before: int | None, limit: int) -> list[dict[str, Any]]: ...


class ProgramSwitch(Protocol):
    async def announce(self, version: int) -> None:
        """Tell every worker that ``version`` is now current."""
        ...


def checked(document: Mapping[str, Any]) -> ProgramDocument:
    """The parsed document, or ``ProgramInvalid`` naming each field as the request does
    (``document.rules[2].effect.percent``)."""
    try:
        return parse_program(document)
    except ProgramInvalid as invalid:
        errors = [{**e, "field": f"document.{e['field']}"} for e in invalid.errors]
        error = ProgramInvalid(invalid.message, errors)
        error.extra["fields"] = errors
        raise error from None


def validation_report(document: Mapping[str, Any]) -> dict[str, Any]:
    try:
        checked(document)
    except ProgramInvalid as invalid:
        return {"valid": False, "errors": invalid.errors}
    return {"valid": True, "errors": []}


def _not_found(version: int) -> NotFound:
    return NotFound(f"program version {version} does not exist", code="program_not_found")


async def _document(store: ProgramStore, version: int) -> dict[str, Any]:
    document = await store.document(version)
    if document is None:
        raise _not_found(version)
    return document


async def version_row(store: ProgramStore, version: int) -> dict[str, Any]:
    """One version: its status, schedule, authorship and document."""
    row = await store.get(version)
    if row is None:
        raise _not_found(version)
    return row


async def versions(store: ProgramStore, before: int | None, limit: int) -> list[dict[str, Any]]:
    """Versions newest first below ``before``, without their documents."""
    return await store.summaries(before=before, limit=limit)


async def create_draft(
    store: ProgramStore, document: Mapping[str, Any], author: str
) -> dict[str, Any]:
    """A new draft of a valid document (not yet in force); the draft as recorded."""
    checked(document)
    return await version_row(store, await store.create_draft(document, author))


async def update_draft(
    store: ProgramStore, version: int, document: Mapping[str, Any], author: str
) -> dict[str, Any]:
    checked(document)
    await store.update_draft(version, document, author)
    return await version_row(store, version)


async def delete_draft(store: ProgramStore, version: int, author: str) -> None:
    """Delete a draft; a version once published stays."""
    await store.delete_draft(version, author)


async def schedule(
    store: ProgramStore, version: int, publish_at: datetime | None, author: str
) -> dict[str, Any]:
    """Publish the draft at ``publish_at`` (None: unschedule it); the draft as recorded."""
    await store.schedule(version, publish_at, author)
    return await version_row(store, version)


async def _announce(switch: ProgramSwitch, version: int) -> None:
    try:
        await switch.announce(version)
    except Exception:  # committed already; workers re-read the current version anyway
        _log.warning("program switch not announced", exc_info=True)


async def publish(
    store: ProgramStore, switch: ProgramSwitch, version: int, author: str
) -> dict[str, Any]:
    """Make the draft current now and tell every worker; the version as recorded."""
    codes = declared_codes(checked(await _document(store, version)))
    await store.publish(version, author, codes)
    await _announce(switch, version)
    return await version_row(store, version)


async def roll_back(
    store: ProgramStore, switch: ProgramSwitch, version: int, author: str
) -> dict[str, Any]:
    """Make an earlier published version current again; the version as recorded."""
    codes = declared_codes(checked(await _document(store, version)))
    await store.roll_back(version, author, codes)
    await _announce(switch, version)
    return await version_row(store, version)


async def publish_due(store: ProgramStore, switch: ProgramSwitch, now: datetime) -> list[int]:
    """Publish the drafts scheduled up to ``now``, in their order; returns those published."""
    published = []
    for version in await store.due_drafts(now):
        codes = declared_codes(checked(await _document(store, version)))
        try:
            await store.publish(version, "scheduler", codes)
        except Conflict:  # another worker published it first
            continue
        published.append(version)
    if published:
        await _announce(switch, published[-1])
    return published


async def dry_run(
    store: ProgramStore,
    version: int,
    receipt: Receipt,
    *,
    now: datetime,
    ports: SalePorts,
    language: str = "en",
) -> dict[str, Any]:
    """What ``version`` (a draft, typically) would answer for ``receipt``; writes nothing.
    For the marketer trying it, each rule that did not apply says why in words
    (``reason_text``, in ``language``)."""
    parsed = checked(await _document(store, version))
    program = await asyncio.to_thread(compile_program, parsed, version)
    card = None if receipt.card is None else await ports.cards.load(receipt.card, now, program)
    calc = await evaluate(receipt, card, program, now=now, ports=ports)
    view = calc.view(language)
    for verdict in view["rules"]:
        verdict["reason_text"] = reason_text(language, verdict["reason"])
    return view
