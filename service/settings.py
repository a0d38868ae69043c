"""Configuration from ``LOYALTY_*`` environment variables.

Typed with pydantic-settings; values that would make the service unsafe or
unusable are refused at start-up rather than discovered under load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.domain.receipt import MAX_LINES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALTY_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str | None = Field(
        default=None, description="Postgres DSN; absent: an embedded Postgres in data_dir"
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://, rediss:// with TLS, unix://; a user and password "
        "for ACL); any node's of a Redis Cluster; absent: an embedded Redis in data_dir",
    )
    redis_cluster: bool | None = Field(
        default=None,
        description="whether redis_url is a Redis Cluster node; absent: asked of the server "
        "at start (INFO cluster), a single Redis assumed if it does not answer then",
    )
    data_dir: Path = Field(default=Path(".loyalty"), description="embedded servers' data")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    worker_hang_s: float = Field(
        default=30.0,
        ge=2,
        description="a worker whose event loop has not turned for this long is replaced",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False

    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1, le=200)
    db_command_timeout_s: float = Field(default=5.0, gt=0)
    redis_timeout_s: float = Field(default=0.5, gt=0)
    commit_batch_max: int = Field(default=64, ge=1, le=1000, description="sales per batch")
    commit_in_flight: int = Field(
        default=1, ge=1, le=64, description="commit batches at Postgres at once, per worker"
    )

    demo_admin_key: str | None = None
    demo_pos_key: str | None = None
    load_demo: bool | None = Field(
        default=None,
        description="load the demo into an empty database (default: not in production)",
    )

    max_lines: int = Field(
        default=500, ge=1, le=MAX_LINES, description="lines per receipt, at most the engine's"
    )
    max_future_skew_s: int = Field(default=300, ge=0, description="receipt clock tolerance")
    language: Literal["en", "ru"] = Field(
        default="en",
        description="the chain's language for what people read (a request's Accept-Language"
        " chooses otherwise)",
    )
    api_key_refresh_s: float = Field(
        default=5.0, gt=0, description="period of re-reading stores, the program, promotions"
    )
    keys_refresh_s: float = Field(
        default=0.5, gt=0, description="period of re-reading API keys: a revocation's delay"
    )
    expire_interval_s: float = Field(default=300.0, gt=0, description="expiry job period")
    back_office_interval_s: float = Field(
        default=1.0, gt=0, description="period of scheduled publications and webhook delivery"
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    webhook_allow_private: bool = Field(
        default=False,
        description="let webhooks target loopback, private and link-local addresses (a CRM on"
        " the chain's own network); off, such targets are refused: a webhook is a request the"
        " service makes on an admin's say, and must not reach what only the service can",
    )
    webhook_max_attempts: int = Field(default=12, ge=1, le=100)
    webhook_backoff_s: float = Field(default=1.0, gt=0, description="first retry delay")
    webhook_backoff_max_s: float = Field(default=3600.0, gt=0, description="longest delay")
    expiring_notice_days: int = Field(
        default=7, ge=1, le=365, description="'expiring' webhook this many days ahead"
    )
    import_max_rows: int = Field(default=100_000, ge=1, description="rows per CSV import")
    import_max_bytes: int = Field(default=20_000_000, ge=1, description="bytes per CSV import")
    metrics_dir: Path | None = Field(
        default=None, description="prometheus multiprocess folder (set by `loyalty serve`)"
    )

    @property
    def should_load_demo(self) -> bool:
        return self.load_demo if self.load_demo is not None else self.environment != "production"

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("db_pool_min must not exceed db_pool_max")
        if self.commit_in_flight >= self.db_pool_max:
            raise ValueError("commit_in_flight must leave pool connections for other work")
        if self.environment == "production":
            if self.database_url is None or self.redis_url is None:
                raise ValueError("production needs LOYALTY_DATABASE_URL and LOYALTY_REDIS_URL")
            if self.demo_admin_key or self.demo_pos_key:
                raise ValueError("demo keys are refused in production")
        for name in ("demo_admin_key", "demo_pos_key"):
            key = getattr(self, name)
            if key is not None and len(key) < 16:
                raise ValueError(f"{name} must be at least 16 characters")
        return self
