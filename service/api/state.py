"""What the app builds in its lifespan and every request reaches through ``Services``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from service.api.metrics import Metrics
from service.domain.access import KeyRing
from service.settings import Settings
from service.storage.card_states import CachedCardStates
from service.storage.http.webhook_sender import HttpxSender
from service.storage.postgres.admin_cards import CardAdmin
from service.storage.postgres.admin_stores import StoreAdmin
from service.storage.postgres.cards import CardQueries
from service.storage.postgres.customers import Customers
from service.storage.postgres.holds import PointHolds
from service.storage.postgres.import_jobs import ImportJobs
from service.storage.postgres.keys import KeyStore
from service.storage.postgres.ledger import Ledger
from service.storage.postgres.programs import ProgramVersions
from service.storage.postgres.promo_batches import PromoBatches
from service.storage.postgres.refunds import ReturnsLedger
from service.storage.postgres.registrations import Registrations
from service.storage.postgres.reports import Reports
from service.storage.postgres.rewards import PostgresRewards
from service.storage.postgres.signing import SigningKeys
from service.storage.postgres.simulation_jobs import SimulationJobs
from service.storage.postgres.wallets import PostgresWallets
from service.storage.postgres.webhooks import Webhooks
from service.storage.promotions import Promotions
from service.storage.redis.cache import CardCache, RedisClient
from service.storage.redis.calculations import CalculationStore
from service.storage.redis.program_switch import RedisProgramSwitch
from service.usecases.calculate import ReceiptLimits, SalePorts
from service.usecases.directory import ProgramHolder, StoreDirectory


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    pool: asyncpg.Pool
    redis: RedisClient
    keyring: KeyRing
    stores: StoreDirectory
    programs: ProgramHolder
    card_cache: CardCache
    cards: CachedCardStates
    calculations: CalculationStore
    ledger: Ledger
    returns: ReturnsLedger
    card_queries: CardQueries
    promotions: Promotions
    limits: ReceiptLimits
    program_versions: ProgramVersions
    program_switch: RedisProgramSwitch
    card_admin: CardAdmin
    customers: Customers
    store_admin: StoreAdmin
    key_store: KeyStore
    registrations: Registrations
    promo_batches: PromoBatches
    reports: Reports
    webhooks: Webhooks
    webhook_sender: HttpxSender
    holds: PointHolds
    secrets: SigningKeys
    import_jobs: ImportJobs
    wallets: PostgresWallets
    simulation_jobs: SimulationJobs
    rewards: PostgresRewards
    kernels_warm: bool = False
    keys_version: tuple[object, ...] = ()  # background.refresh_keys's last seen
    sale_ports: SalePorts = field(init=False)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sale_ports = SalePorts(
            self.limits,
            self.stores,
            self.programs,
            self.cards,
            self.calculations,
            self.promotions,
            self.holds,
            self.secrets,
            self.wallets,
            self.rewards,
        )
