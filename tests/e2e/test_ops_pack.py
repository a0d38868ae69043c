"""The ops pack (SPEC §6): every declared metric is emitted, and the alert rules and the
Grafana dashboard ask only for series that /metrics exposes."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import RedisError

from service import background
from service.api.metrics import Metrics, multiprocess_dir
from service.api.state import Services
from service.storage.card_states import CachedCardStates
from service.storage.postgres import expiry
from service.usecases import admin_webhooks
from service.usecases.admin_webhooks import Delivery, RetryPolicy
from tests.conftest import POS
from tests.e2e.admin_helpers import new_card
from tests.e2e.test_pos_api import receipt

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMTOOL = ROOT / ".venv" / "promtool" / "usr" / "bin" / "promtool"  # `make ops-check`'s
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"

# --- PromQL: the metric names an expression reads --------------------------------------

PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2",
}  # fmt: skip
# Series Prometheus writes itself for every target it scrapes.
PROMETHEUS_OWN = {"up"}
FAMILY_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` reads: identifiers that stand bare or before ``{`` or
    ``[``, once strings, label matchers, ranges and ``by (...)``-style label lists are
    out, less function calls (a name before ``(``) and keywords."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "{}", expr)
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        name, call = match.groups()
        if call is None and name.lower() not in PROMQL_KEYWORDS:
            names.add(name)
    return names


def family_of(name: str) -> str:
    for suffix in FAMILY_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in _panels(json.loads(path.read_text())["panels"]):
            for target in panel.get("targets", ()):
                found.append((f"{path.name}: {panel['title']}", target["expr"]))
    return found


def _panels(panels: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", ()))


def test_metric_names_are_read_out_of_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route="/v1/x", le=~"1e3"}'
        "[5m]))) / scalar(sum without (pid) (b_total offset 5m)) > 0.02 and on (instance) c"
        " or vector(0) unless d[1h:5m]"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "d"}
    assert family_of("a_bucket") == "a" and family_of("c") == "c"


# --- /metrics after the requests that make the labelled series ------------------------


async def _drive(client: httpx.AsyncClient) -> None:
    """A calculate, its commit, a refund and a cancel, and a few error answers."""
    number = await new_card(client, points=1000)
    lines = [
        {"line_id": "1", "sku": "460001", "category": "dresses", "quantity": "1",
         "unit_price": 349900},
        {"line_id": "2", "sku": "MOJITO", "category": "drinks", "quantity": "2",
         "unit_price": 45000},
    ]  # fmt: skip
    sale = receipt(card=number, redeem_points=300, lines=lines)
    calculated = await client.post("/v1/calculate", json=sale, headers=POS)
    assert calculated.status_code == 200, calculated.text
    transaction_id = f"OPS-{uuid.uuid4().hex[:12]}"
    commit = {
        **sale,
        "transaction_id": transaction_id,
        "calculation_id": calculated.json()["calculation_id"],
    }
    committed = await client.post("/v1/commit", json=commit, headers=POS)
    assert committed.status_code == 200, committed.text
    assert committed.json()["totals"]["points_redeemed"] == 300
    # The same transaction id with another receipt: a commit conflict (409).
    other = {**commit, "calculation_id": None, "lines": lines[:1]}
    conflict = await client.post("/v1/commit", json=other, headers=POS)
    assert conflict.status_code == 409, conflict.text
    refund = {
        "store_id": "msk-001",
        "transaction_id": transaction_id,
        "refund_id": f"R-{transaction_id}",
        "lines": [{"line_id": "2", "quantity": "1"}],
    }
    refunded = await client.post("/v1/refund", json=refund, headers=POS)
    assert refunded.status_code == 200, refunded.text
    cancel = {"store_id": "msk-001", "transaction_id": transaction_id}
    cancelled = await client.post("/v1/cancel", json=cancel, headers=POS)
    assert cancelled.status_code == 200, cancelled.text
    unauthenticated = await client.post("/v1/calculate", json=sale)
    assert unauthenticated.status_code == 401
    assert (await client.get("/v1/nowhere")).status_code == 404


async def _scrape(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def _value(families: dict[str, Any], sample: str, **labels: str) -> float:
    family = families.get(family_of(sample))
    return sum(
        s.value
        for s in (family.samples if family is not None else ())
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def declared_families() -> set[str]:
    """The families the Metrics class declares (its own registry: one process)."""
    assert multiprocess_dir() is None, "the tests run the app in one process"
    metrics = Metrics()
    families = {
        metric._name  # the name the wrapper was declared with
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
    }
    assert families == {family.name for family in metrics.registry.collect()}
    return families


async def test_every_declared_metric_is_emitted(client: httpx.AsyncClient, app: FastAPI) -> None:
    services: Services = app.state.services
    before = await _scrape(client)
    await _drive(client)
    await background.run_back_office_jobs(services, datetime.now(UTC))
    after = await _scrape(client)
    for name in sorted(declared_families()):
        assert name in after, f"{name} is declared but not in /metrics"
        assert after[name].samples, f"{name} is declared but has no series"

    def grew(sample: str, **labels: str) -> float:
        return _value(after, sample, **labels) - _value(before, sample, **labels)

    assert grew("loyalty_errors_total", code="idempotency_conflict") == 1
    assert grew("loyalty_errors_total", code="unauthenticated") == 1
    assert grew("loyalty_errors_total", code="not_found") == 1
    assert grew("loyalty_commit_conflicts_total", reason="idempotency_conflict") == 1
    assert grew("loyalty_returns_total", kind="refund") == 1
    assert grew("loyalty_returns_total", kind="cancel") == 1
    assert grew("loyalty_points_redeemed_total") == 300
    # The refund gave back its share of the spent points, the cancel the rest.
    returned = sum(
        grew("loyalty_return_points_total", kind=kind, flow="returned")
        for kind in ("refund", "cancel")
    )
    assert returned == 300
    assert _value(after, "loyalty_program_version") == services.programs.version
    assert _value(after, "loyalty_webhook_backlog") >= 0
    assert _value(after, "loyalty_outbox_oldest_age_seconds") >= 0


async def test_alerts_and_dashboard_read_only_exposed_series(
    client: httpx.AsyncClient,
) -> None:
    await _drive(client)
    families = await _scrape(client)
    samples = {sample.name for family in families.values() for sample in family.samples}
    expressions = alert_expressions() + dashboard_expressions()
    assert len(alert_expressions()) >= 8 and len(dashboard_expressions()) >= 20
    for where, expr in expressions:
        names = metric_names(expr)
        assert names, f"{where}: no metric read out of {expr!r}"
        for name in names - PROMETHEUS_OWN:
            assert family_of(name) in families, f"{where}: {name} is not in /metrics"
            assert name in samples, f"{where}: {name} has no series of that name"
    used = {family_of(n) for _, expr in expressions for n in metric_names(expr)}
    assert declared_families() <= used, "a declared metric no panel or alert shows"


# --- the rule file, the dashboard and their wiring --------------------------------------

DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
LABEL_NAME = re.compile(r"^[A-Za-z_]\w*$")
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
GROUP_KEYS = {"name", "interval", "limit", "query_offset", "rules"}


def _check_rule(rule: dict[str, Any]) -> None:
    assert set(rule) <= RULE_KEYS and {"alert", "expr"} <= set(rule), rule
    assert LABEL_NAME.fullmatch(rule["alert"]), rule["alert"]
    assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule["alert"]
    for brackets in ("()", "{}", "[]"):
        assert rule["expr"].count(brackets[0]) == rule["expr"].count(brackets[1]), rule["alert"]
    if "for" in rule:
        assert DURATION.fullmatch(str(rule["for"])), rule["alert"]
    for field in ("labels", "annotations"):
        values = rule.get(field, {})
        assert isinstance(values, dict), rule["alert"]
        for key, value in values.items():
            assert LABEL_NAME.fullmatch(key) and isinstance(value, str), (rule["alert"], key)
    assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}
    assert rule.get("annotations", {}).get("summary"), rule["alert"]


def test_alert_rules_are_what_prometheus_loads() -> None:
    """The structure ``promtool check rules`` holds (`make ops-check` runs promtool itself)."""
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names))
    alerts: list[str] = []
    for group in document["groups"]:
        assert set(group) <= GROUP_KEYS and group["rules"], group["name"]
        for rule in group["rules"]:
            _check_rule(rule)
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts))


def test_dashboard_queries_are_promql(tmp_path: Path) -> None:
    """Each panel's query parses: promtool checks them as recording rules."""
    promtool = shutil.which("promtool") or str(PROMTOOL)
    if not os.access(promtool, os.X_OK):
        pytest.skip("no promtool: `make ops-check` unpacks one into .venv")
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, (_, expr) in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's bind mounts: container path -> host path (relative to deploy/)."""
    mounts = {}
    for volume in service.get("volumes", ()):
        host, container, *_ = volume.split(":")
        mounts[container] = host
    return mounts


def test_prometheus_and_grafana_are_wired_in_compose() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    prometheus = _mounts(compose["prometheus"])
    assert prometheus["/etc/prometheus/prometheus.yml"] == "./prometheus.yml"
    for rule_file in config["rule_files"]:  # relative to the configuration file, both sides
        assert (DEPLOY / rule_file).resolve() == ALERTS
        assert prometheus[f"/etc/prometheus/{rule_file}"] == f"./{rule_file}"
    assert compose["grafana"]["image"].startswith("grafana/grafana")
    grafana = _mounts(compose["grafana"])
    provisioning = DEPLOY / grafana["/etc/grafana/provisioning"]
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "loyalty.yml").read_text())[
        "providers"
    ]
    assert (DEPLOY / grafana[provider["options"]["path"]]).resolve() == DASHBOARDS
    for path in DASHBOARDS.glob("*.json"):
        for panel in _panels(json.loads(path.read_text())["panels"]):
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == source["uid"], panel["title"]


# --- the emission points away from the request path -------------------------------------


async def test_ledger_jobs_are_timed_by_outcome(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    services: Services = app.state.services
    before = {o: _count(services.metrics, o) for o in ("done", "skipped", "failed")}

    async def another_worker_has_them(*_: object) -> None:
        return None

    async def nothing_due(*_: object) -> list[str]:
        return []

    async def database_down(*_: object) -> list[str]:
        raise OSError("connection refused")

    now = datetime.now(UTC)
    for job in (nothing_due, another_worker_has_them):
        monkeypatch.setattr(expiry, "run_ledger_jobs", job)
        await background.run_ledger_jobs(services, now)
    monkeypatch.setattr(expiry, "run_ledger_jobs", database_down)
    with pytest.raises(OSError):
        await background.run_ledger_jobs(services, now)
    after = {o: _count(services.metrics, o) for o in before}
    assert {k: after[k] - before[k] for k in before} == {"done": 1, "skipped": 1, "failed": 1}


def _count(metrics: Metrics, outcome: str) -> float:
    """How many ledger-job runs of ``outcome`` the app's registry holds."""
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "loyalty_expiry_job_duration_seconds_count" and sample.labels == {
                "outcome": outcome
            }:
                return float(sample.value)
    raise AssertionError(f"no {outcome} runs in the registry")


class _BrokenCache:
    """A card cache whose Redis is down."""

    async def get(self, number: str, day: object) -> None:
        raise RedisError("down")

    async def put(self, state: object, day: object) -> bool:
        raise RedisError("down")


async def test_redis_failures_are_counted_as_fallbacks(app: FastAPI) -> None:
    services: Services = app.state.services
    counted: list[tuple[str, int]] = []
    cards = CachedCardStates(
        services.pool, _BrokenCache(), lambda result: None, lambda op, n: counted.append((op, n))
    )
    state = await cards.get("2000000000015", datetime.now(UTC), services.programs.current)
    assert state is not None and state.number == "2000000000015"  # read from Postgres
    assert counted == [("read", 1), ("write", 1)]
    # The app's own adapters count into its metrics, by cache.
    assert services.cards.count_fallback.args == ("card_state",)
    assert services.calculations.count_fallback.args == ("calculation",)


class _Deliveries:
    def __init__(self, deliveries: list[Delivery]) -> None:
        self.deliveries = deliveries
        self.settled: list[str] = []

    async def fan_out(self, limit: int = 1000) -> int:
        return 0

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Delivery]:
        return self.deliveries

    async def settle(
        self, delivery: Delivery, *, status: str, error: str | None, retry_at: datetime | None
    ) -> None:
        self.settled.append(status)


class _Receiver:
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        return 200 if url.endswith("/ok") else 500


async def test_a_round_of_deliveries_says_what_became_of_each() -> None:
    def delivery(url: str, attempts: int, active: bool = True) -> Delivery:
        event_id = next(events)
        return Delivery(1, event_id, "accrual", attempts, url, "s", active, {}, datetime.now(UTC))

    events = itertools.count(1)

    store = _Deliveries(
        [
            delivery("http://crm/ok", 1),
            delivery("http://crm/down", 1),
            delivery("http://crm/down", 3),
            delivery("http://crm/ok", 1, active=False),
        ]
    )
    policy = RetryPolicy(timeout_s=1, max_attempts=3, backoff_s=1, backoff_max_s=60)
    done = await admin_webhooks.deliver_due(store, _Receiver(), policy, datetime.now(UTC))
    assert (done.delivered, done.retried, done.failed) == (1, 1, 2)
    assert sorted(store.settled) == ["delivered", "failed", "failed", "pending"]
