"""``loyalty simulate``: a receipts file under a draft beside the demo, files written."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from service import cli
from service.rules.demo import demo_program
from tests.unit.simulation.generated import generated
from tests.unit.simulation.test_engine import START, write_csv


def test_simulate_writes_both_programs_and_their_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipts = tmp_path / "receipts.csv"
    write_csv(generated(150, seed=19, start=START), receipts)
    draft = copy.deepcopy(demo_program())
    draft["points"]["accrual_percent"] = "3"
    draft["tiers"]["levels"][0]["accrual_percent"] = "3"
    (tmp_path / "draft.json").write_text(json.dumps(draft))
    code = cli.main([
        "simulate", "--receipts", str(receipts), "--draft", str(tmp_path / "draft.json"),
        "--current", "demo", "--out", str(tmp_path / "out"), "--breakage-percent", "20",
    ])  # fmt: skip
    assert code == 0
    shown = capsys.readouterr()
    assert "simulating" in shown.err  # the progress bar
    assert "points_earned" in shown.out
    result = json.loads((tmp_path / "out" / "simulation.json").read_text())
    assert result["current"]["receipts"] == result["draft"]["receipts"] == 150
    assert result["difference"]["points_earned"] > 0
    assert result["draft"]["breakage_rate_bp"] == 2000
    assert (tmp_path / "out" / "simulation.csv").read_text().startswith("section,key,figure")
    for chart in ("liability", "cost-per-rule", "tier-mix-current", "tier-mix-draft"):
        assert (tmp_path / "out" / f"{chart}.png").read_bytes().startswith(b"\x89PNG")


def test_a_refused_input_is_said_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "draft.json").write_text(json.dumps({"format": 1}))
    receipts = tmp_path / "receipts.csv"
    receipts.write_text("receipt_id,timestamp\n")
    code = cli.main([
        "simulate", "--receipts", str(receipts), "--draft", str(tmp_path / "draft.json"),
        "--current", "demo",
    ])  # fmt: skip
    assert code == 2
    assert "loyalty simulate:" in capsys.readouterr().err


def test_from_the_ledger_needs_the_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "draft.json").write_text(json.dumps(demo_program()))
    code = cli.main([
        "simulate", "--from-ledger", "--since", "2025-03-01T00:00:00+00:00",
        "--draft", str(tmp_path / "draft.json"), "--current", "demo",
    ])  # fmt: skip
    assert code == 2
    assert "--from-ledger needs --since and --until" in capsys.readouterr().err
