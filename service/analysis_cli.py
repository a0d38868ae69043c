"""``loyalty forecast`` and ``loyalty pilot``: the uplift forecast (SPEC §10.2) and the
pilot report (SPEC §10.3) from files, as a table on stdout and JSON, CSV and a chart
(PNG) in ``--out``.

    loyalty forecast --groups groups.csv [--addon-share 80] [--gift-share 5]
        [--gift-cap KOPECKS] [--discount 0] [--delivery 35000] [--months 12] [--out DIR]
    loyalty pilot --receipts FILE --pilot S1,S2 --control S3,S4 --starts 2026-03-01
        [--out DIR]
    loyalty analytics (--receipts FILE | --from-ledger --since ISO --until ISO)
        [--current FILE|demo] [--by store|group|channel|month] [--groups groups.csv]
        [--churn-days 90] [--out DIR]

``groups.csv``: ``channel,kind,customers,average_receipt,threshold,purchases_per_month``
(kopecks; purchases a decimal). Every assumption of the forecast is printed with the
value it took, the defaults included.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import asdict
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from service.domain.errors import DomainError, InvalidInput
from service.settings import Settings
from service.simulation import charts
from service.simulation.pilot import pilot_of_receipts
from service.simulation.receipts import read_receipts
from service.simulation.uplift import CustomerGroup, UpliftAssumptions, forecast

IntArray = npt.NDArray[np.int64]
GROUP_COLUMNS = ("channel", "kind", "customers", "average_receipt", "threshold",
                 "purchases_per_month")  # fmt: skip


def run_forecast(args: argparse.Namespace) -> int:
    try:
        assumptions = UpliftAssumptions(
            addon_share_bp=_bp(args.addon_share), gift_share_bp=_bp(args.gift_share),
            gift_cost_cap=args.gift_cap, discount_bp=_bp(args.discount),
            delivery_cost=args.delivery, months=args.months,
        )  # fmt: skip
        result = forecast(read_groups(args.groups.read_text(encoding="utf-8-sig")), assumptions)
    except (DomainError, OSError, ValueError) as exc:
        print(f"loyalty forecast: {exc}", file=sys.stderr)
        return 2
    print("assumptions: " + json.dumps(result.assumptions))
    for scenario, totals in result.totals().items():
        shown = ", ".join(f"{k} {v:,}" for k, v in totals.items())
        print(f"{scenario:<12} uplift over {assumptions.months} months, kopecks: {shown}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "forecast.json").write_text(json.dumps(result.as_json(), indent=1))
        table = io.StringIO()
        writer = csv.DictWriter(
            table, fieldnames=list(asdict(result.rows[0])) if result.rows else ["scenario"]
        )
        writer.writeheader()
        writer.writerows(asdict(row) for row in result.rows)
        (args.out / "forecast.csv").write_text(table.getvalue())
        (args.out / "forecast.png").write_bytes(charts.uplift(result))
    return 0


def read_groups(text: str) -> list[CustomerGroup]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in GROUP_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise InvalidInput(f"the groups file lacks the columns {', '.join(missing)}")
    return [
        CustomerGroup(
            channel=row["channel"],
            kind=row["kind"],
            customers=int(row["customers"]),
            average_receipt=int(row["average_receipt"]),
            threshold=int(row["threshold"]),
            purchases_per_month_milli=int(Decimal(row["purchases_per_month"]) * 1000),
        )
        for row in reader
    ]


def run_pilot(args: argparse.Namespace) -> int:
    try:
        report = pilot_of_receipts(
            read_receipts(args.receipts), pilot=args.pilot.split(","),
            control=args.control.split(","), starts=date.fromisoformat(args.starts),
        )  # fmt: skip
    except (DomainError, OSError, ValueError) as exc:
        print(f"loyalty pilot: {exc}", file=sys.stderr)
        return 2
    for name in ("average_receipt", "sales_per_store_day"):
        estimate = getattr(report, name)
        verdict = "found" if estimate.found else "not found"
        print(
            f"{name}: uplift {estimate.uplift_bp / 100:+.2f}% (99% interval"
            f" {estimate.low_bp / 100:+.2f}% .. {estimate.high_bp / 100:+.2f}%): {verdict}"
        )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "pilot.json").write_text(json.dumps(asdict(report), indent=1))
        (args.out / "pilot.png").write_bytes(charts.before_after(report))
    return 0


def _bp(percent: Decimal) -> int:
    return int(percent * 100)


def run_analytics(settings: Settings, args: argparse.Namespace) -> int:
    """``loyalty analytics``: a period's receipts (a file, or the ledger's own) simulated
    under the current program, then its figures per store, group, channel or month."""
    from service.simulate_cli import _current_program, _from_ledger
    from service.simulation.analytics import analytics, as_csv, as_rows
    from service.simulation.engine import prepare, simulate

    try:
        program = _current_program(settings, args.current)
        receipts = (
            _from_ledger(settings, args.since, args.until)
            if args.from_ledger
            else read_receipts(args.receipts)
        )
        groups = None if args.groups is None else read_store_groups(args.groups.read_text())
        prepared = prepare(receipts)
        figures = analytics(
            prepared, simulate(prepared, program).per_receipt, args.by, groups=groups,
            churn_days=args.churn_days,
        )  # fmt: skip
    except (DomainError, OSError, ValueError) as exc:
        print(f"loyalty analytics: {exc}", file=sys.stderr)
        return 2
    table = as_csv(figures)
    print(table, end="")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        rows = as_rows(figures)
        (args.out / "analytics.json").write_text(json.dumps({"by": args.by, "slices": rows}))
        (args.out / "analytics.csv").write_text(table)
    return 0


def read_store_groups(text: str) -> dict[str, str]:
    """``store_id,group`` rows: each store's group (``--by group``)."""
    reader = csv.DictReader(io.StringIO(text))
    if not {"store_id", "group"} <= set(reader.fieldnames or ()):
        raise InvalidInput("the store groups file needs the columns store_id and group")
    return {row["store_id"]: row["group"] for row in reader}
