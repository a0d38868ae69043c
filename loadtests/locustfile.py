"""POS traffic replaying real baskets (Complete Journey), headless, from the repo root:

    LOADTEST_POS_KEY=... python -m locust -f loadtests/locustfile.py --headless \\
        --host http://127.0.0.1:8000 -u 8 -r 4 --run-time 60s

Each simulated sale calculates the basket two or three times as it grows (half the
lines, maybe three quarters, all), the last time with the points the customer spends
(some redeem "max" or half their balance when the first answer showed one), then
commits with the last ``calculation_id`` and its own ``transaction_id``; a few percent
of sales are then partly returned. Some sales are anonymous.

Every 4xx/5xx is a failure except ``409 insufficient_points`` on a commit that spends
points (another till of the same card spent them first): those are counted apart and
printed at the end. ``make loadtest`` starts the service and prepares the database.

Environment: ``LOADTEST_POS_KEY`` (required), ``LOADTEST_BASKETS`` (how many baskets of
the year, from its start, to draw from; default 5000), ``LOADTEST_WAIT_S`` (pause
between sales per user; default 0).
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections import Counter
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.env import Environment

from loadtests.dataset import PosReceipt, load_receipts
from loadtests.pos import SalePlan, commit_body, expected_refusal, receipt_body, refund_body

BASKETS = int(os.environ.get("LOADTEST_BASKETS", "5000"))
WAIT_S = float(os.environ.get("LOADTEST_WAIT_S", "0"))
RUN_TAG = f"lt{int(time.time()):x}{os.getpid() % 1000:03d}"  # unique transaction ids per run

HEADERS = {"Authorization": f"Bearer {os.environ.get('LOADTEST_POS_KEY', '')}"}

_receipts: list[PosReceipt] = []
_sale_numbers = itertools.count(1)
refusals: Counter[str] = Counter()


@events.init.add_listener
def _load_baskets(environment: Environment, **_: Any) -> None:
    if not os.environ.get("LOADTEST_POS_KEY"):
        raise SystemExit("set LOADTEST_POS_KEY (python -m loadtests.setup prints one)")
    _receipts.extend(load_receipts(limit=BASKETS))
    print(f"loadtest: {len(_receipts)} baskets, {sum(len(r.lines) for r in _receipts)} lines")


@events.quitting.add_listener
def _print_refusals(environment: Environment, **_: Any) -> None:
    counts = ", ".join(f"{code}: {n}" for code, n in refusals.items()) or "none"
    print(f"loadtest: expected refusals (not failures): {counts}")


class Till(FastHttpUser):
    """One cash register of the chain selling the year's baskets at random."""

    wait_time = constant(WAIT_S)

    def on_start(self) -> None:
        self.rng = random.Random()

    def _post(self, path: str, body: dict[str, Any], name: str | None = None) -> tuple[int, Any]:
        """POST; every 4xx/5xx is a failure but an expected refusal, which is counted."""
        with self.client.post(
            path, json=body, headers=HEADERS, name=name, catch_response=True
        ) as response:
            try:
                payload = response.json()
            except ValueError:  # not JSON: a proxy's error page, a dropped connection
                payload = None
            code = None if response.ok else expected_refusal(response.status_code, payload)
            if response.ok or code is not None:
                response.success()
                if code is not None:
                    refusals[code] += 1
            else:
                response.failure(f"{response.status_code} {(response.text or '')[:300]}")
            return response.status_code, payload

    @task
    def sell(self) -> None:
        receipt = self.rng.choice(_receipts)
        plan = SalePlan.draw(receipt, self.rng)
        answer, redeem = self._scan(receipt, plan)
        if answer is None:
            return
        transaction_id = f"{RUN_TAG}-{next(_sale_numbers)}"
        body = commit_body(
            receipt,
            plan,
            transaction_id=transaction_id,
            calculation_id=answer["calculation_id"],
            redeem=redeem,
        )
        name = "/v1/commit (with points)" if redeem else None  # its own row in the summary
        status, _ = self._post("/v1/commit", body, name)
        if status == 200 and plan.refund:
            refund = refund_body(
                receipt,
                transaction_id=transaction_id,
                refund_id=f"{transaction_id}-r",
                rng=self.rng,
            )
            self._post("/v1/refund", refund)

    def _scan(self, receipt: PosReceipt, plan: SalePlan) -> tuple[Any, int | str]:
        """Calculate as the basket grows; the last time with the points to spend, which
        the customer decides on from the balance the first answer showed."""
        balance, answer = 0, None
        redeem: int | str = 0
        for step, lines in enumerate(plan.steps):
            if step == len(plan.steps) - 1:
                redeem = plan.redemption(balance)
            body = receipt_body(receipt, plan, lines=lines, redeem=redeem)
            status, answer = self._post("/v1/calculate", body)
            if status != 200:
                return None, 0
            # What the customer may spend: the balance, within what the receipt allows.
            balance = min(
                (answer.get("card") or {}).get("balance", 0),
                answer["totals"]["points_redeemable_max"],
            )
        if isinstance(redeem, int) and answer["totals"]["points_redeemed"] < redeem:
            redeem = answer["totals"]["points_redeemed"]  # as shown: a commit over-asking is 422
        return answer, redeem
