"""Use cases: wallets (SPEC §4 item 34), gift certificates and e-wallets holding money.

At the till a wallet is sold (a certificate comes alive with its money), topped up (an
e-wallet), read, and spent as a tender on calculate and commit beside points
(``pay_from_wallet``); a return gives the money it paid back to it. The back office
issues wallets one by one or in batches (with a file for the printer), blocks, unblocks
and replaces them, reads their history, and the expiry job closes the expired ones.
Every movement is an entry of the wallet's ledger (storage/postgres/wallets.py), under
the wallet's row lock: concurrent spends never overdraw it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from service.domain.errors import Conflict, InvalidInput
from service.domain.wallet import (
    WalletAsk,
    WalletState,
    points_without_wallet,
    split_payment,
    wallet_payment,
)
from service.kernels import Answer
from service.rules.compiler import CompiledProgram
from service.usecases.ports import Wallets


def pay_from_wallet(
    result: Answer,
    ask: WalletAsk,
    wallet: WalletState | None,
    program: CompiledProgram,
    now: datetime,
) -> Answer:
    """The answer with what the wallet pays of it: split over the lines by what each still
    costs, and the points shrunk where the program's wallet money earns none."""
    due = result.totals.amount_due
    paid = wallet_payment(ask, wallet, due, now)
    assert wallet is not None  # wallet_payment refuses an unknown wallet
    lines = split_payment(paid, result.finals)
    earned, rules = result.points_earned, result.rules
    if paid and not program.document.wallets.earn_points:
        earned, kept = points_without_wallet(
            result.points_earned, [verdict[5] for verdict in result.rules], paid, due
        )
        rules = [(*verdict[:5], points) for verdict, points in zip(rules, kept, strict=True)]
    totals = dataclasses.replace(result.totals, points_earned=sum(earned))
    return result._replace(
        points_earned=earned,
        rules=rules,
        totals=totals,
        wallet_paid=lines,
        wallet=(wallet.number, paid, wallet.spendable(now)),
    )


async def sell(
    wallets: Wallets,
    program: CompiledProgram,
    number: str,
    store_id: str,
    transaction_id: str,
    amount: int | None,
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    """A certificate sold at the till: it comes alive holding its face value (or
    ``amount`` for one without), living its own validity or the program's from now.
    Idempotent by (store, transaction): the same sale again answers the same; returns
    (the wallet's view, replayed)."""
    return await wallets.sell(
        number, store_id, transaction_id, amount, now, program.document.wallets.validity_days
    )


async def top_up(
    wallets: Wallets,
    program: CompiledProgram,
    number: str,
    store_id: str,
    transaction_id: str,
    amount: int,
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    """Money added to an e-wallet at the till, up to the program's largest balance.
    Idempotent by (store, transaction)."""
    limit = program.document.wallets.max_balance
    return await wallets.top_up(number, store_id, transaction_id, amount, limit, now)


def check_new_wallet(kind: str, nominal: int | None, card: str | None) -> None:
    """A certificate may carry a face value; an e-wallet belongs to a card and has none."""
    if kind == "ewallet" and card is None:
        raise InvalidInput("an e-wallet belongs to a card: name it", code="wallet_needs_card")
    if kind == "ewallet" and nominal is not None:
        raise InvalidInput(
            "an e-wallet has no face value: money goes in by top-ups", code="invalid_input"
        )
    if kind == "certificate" and card is not None:
        raise InvalidInput("a certificate belongs to no card", code="invalid_input")


def refuse_status_change(wallet: WalletState, status: str) -> None:
    """Blocking and unblocking move only live wallets: an issued, replaced or expired one
    stays as it is."""
    allowed = {"blocked": ("active",), "active": ("blocked",)}[status]
    if wallet.status not in allowed:
        raise Conflict(
            f"wallet {wallet.number} is {wallet.status}",
            code="wallet_not_active",
            extra={"status": wallet.status},
        )
