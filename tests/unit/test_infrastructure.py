"""Pure pieces of the service's plumbing: settings, error table, logs."""

import json
import logging

import pytest
from pydantic import ValidationError

from service.api.errors import status_for
from service.api.logs import JsonFormatter, card_ref, request_id_var
from service.domain import errors as e
from service.settings import Settings
from service.storage.postgres.migrate import sqlalchemy_url


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (e.QuantityExceeded("x"), 422),
        (e.ProgramInvalid("x", []), 422),
        (e.InvalidInput("x"), 422),
        (e.Unauthenticated("x"), 401),
        (e.Forbidden("x"), 403),
        (e.NotFound("x"), 404),
        (e.IdempotencyConflict("x"), 409),
        (e.InsufficientPoints("x"), 409),
        (e.Unavailable("x"), 503),
        (e.DomainError("x"), 400),
    ],
)
def test_every_domain_error_has_its_status(error: e.DomainError, status: int) -> None:
    assert status_for(error) == status


def test_settings_refuse_unsafe_values() -> None:
    with pytest.raises(ValidationError):
        Settings(db_pool_min=20, db_pool_max=5)
    with pytest.raises(ValidationError):  # commits would take every pooled connection
        Settings(db_pool_max=4, commit_in_flight=4)
    with pytest.raises(ValidationError):
        Settings(environment="production")  # no database or redis configured
    with pytest.raises(ValidationError):
        Settings(demo_admin_key="short")
    with pytest.raises(ValidationError):
        Settings(
            environment="production",
            database_url="postgresql://x/y",
            redis_url="redis://x",
            demo_pos_key="a-long-enough-demo-key",
        )


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_PORT", "9001")
    monkeypatch.setenv("LOYALTY_WORKERS", "2")
    settings = Settings()
    assert (settings.port, settings.workers) == (9001, 2)


def test_sqlalchemy_url_keeps_socket_host() -> None:
    url = sqlalchemy_url("postgresql://postgres:@/postgres?host=/tmp/pg")
    assert url == "postgresql+asyncpg://postgres:@/postgres?host=/tmp/pg"
    with pytest.raises(ValueError):
        sqlalchemy_url("mysql://x/y")


def test_logs_are_json_with_request_id_and_no_card_number() -> None:
    number = "2000000000022"
    token = request_id_var.set("req-1")
    try:
        record = logging.LogRecord("loyalty", logging.INFO, __file__, 1, "calc", None, None)
        record.card_ref = card_ref(number)
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["request_id"] == "req-1" and entry["msg"] == "calc"
    assert number not in line and entry["card_ref"] == card_ref(number)
    assert card_ref(number) != card_ref("2000000000015")


def test_each_test_process_has_its_own_redis_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import worker_redis_db

    monkeypatch.setattr("tests.conftest.ON_CLUSTER", False)  # a cluster run has db 0 only
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert worker_redis_db("redis://127.0.0.1:6379/15") == "redis://127.0.0.1:6379/15"
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert worker_redis_db("redis://127.0.0.1:6379/15") == "redis://127.0.0.1:6379/14"
    assert worker_redis_db("redis://127.0.0.1:6379/14", 2) == "redis://127.0.0.1:6379/11"
    assert worker_redis_db("unix:///tmp/r/redis.sock", 2) == "unix:///tmp/r/redis.sock?db=13"
