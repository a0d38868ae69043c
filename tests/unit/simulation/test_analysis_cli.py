"""``loyalty forecast`` and ``loyalty pilot`` from files: the table, the JSON, the chart."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service import cli
from tests.unit.simulation.test_pilot import PILOT, START, STORES, receipts


def test_forecast_of_the_worked_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    groups = tmp_path / "groups.csv"
    groups.write_text(
        "channel,kind,customers,average_receipt,threshold,purchases_per_month\n"
        "online,loyal,1000,203000,300000,2\n"
    )
    code = cli.main(["forecast", "--groups", str(groups), "--out", str(tmp_path / "out")])
    assert code == 0
    shown = capsys.readouterr().out
    assert '"addon_share_bp": 8000' in shown and '"delivery_cost": 35000' in shown
    # moderate: 5% of 2,000 receipts a month, 470 roubles each, 12 months
    assert f"moderate     uplift over 12 months, kopecks: total {12 * 100 * 47_000:,}" in shown
    result = json.loads((tmp_path / "out" / "forecast.json").read_text())
    assert result["totals"]["moderate"]["online"] == 12 * 100 * 47_000
    assert (tmp_path / "out" / "forecast.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "out" / "forecast.csv").read_text().startswith("scenario,month")


def test_pilot_from_a_receipts_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    occurred, store, sales = receipts(1, 0.05)
    path = tmp_path / "receipts.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["receipt_id", "timestamp", "store_id", "sku", "quantity", "unit_price"])
        for b, (t, s, amount) in enumerate(zip(occurred, store, sales, strict=True)):
            stamp = datetime.fromtimestamp(int(t), UTC).isoformat()
            writer.writerow([b, stamp, STORES[s], "X", "1", int(amount)])
    code = cli.main([
        "pilot", "--receipts", str(path), "--pilot", ",".join(PILOT),
        "--control", ",".join(s for s in STORES if s not in PILOT),
        "--starts", START.isoformat(), "--out", str(tmp_path / "out"),
    ])  # fmt: skip
    assert code == 0
    shown = capsys.readouterr().out
    assert "average_receipt: uplift +" in shown and ": found" in shown
    report = json.loads((tmp_path / "out" / "pilot.json").read_text())
    assert report["average_receipt"]["low_bp"] > 0
    assert (tmp_path / "out" / "pilot.png").read_bytes().startswith(b"\x89PNG")


def test_analytics_per_store_from_a_receipts_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.simulation.generated import generated
    from tests.unit.simulation.test_engine import START as PERIOD
    from tests.unit.simulation.test_engine import write_csv

    path = tmp_path / "receipts.csv"
    write_csv(generated(200, seed=31, start=PERIOD), path)
    groups = tmp_path / "groups.csv"
    groups.write_text("store_id,group\nmsk-001,moscow\nweb,moscow\n")
    code = cli.main([
        "analytics", "--receipts", str(path), "--current", "demo", "--by", "group",
        "--groups", str(groups), "--out", str(tmp_path / "out"),
    ])  # fmt: skip
    assert code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("slice,receipts,")
    result = json.loads((tmp_path / "out" / "analytics.json").read_text())
    assert {row["slice"] for row in result["slices"]} == {"moscow", "other"}
    assert sum(row["receipts"] for row in result["slices"]) == 200
    assert (tmp_path / "out" / "analytics.csv").read_text() == shown
