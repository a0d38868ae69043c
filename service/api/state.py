"""What the app builds in its lifespan and every request reaches through ``Services``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as aioredis

from service.api.metrics import Metrics
from service.domain.access import KeyRing
from service.settings import Settings
from service.storage.calculations import CalculationStore
from service.storage.card_states import CachedCardStates
from service.storage.ledger import Ledger
from service.usecases.calculate import ReceiptLimits
from service.usecases.directory import ProgramHolder, StoreDirectory


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    pool: asyncpg.Pool
    redis: aioredis.Redis
    keyring: KeyRing
    stores: StoreDirectory
    programs: ProgramHolder
    cards: CachedCardStates
    calculations: CalculationStore
    ledger: Ledger
    limits: ReceiptLimits
    kernels_warm: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
