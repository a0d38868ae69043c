"""A receipt as the POS sends it, in integer units (see SPEC §2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.domain.reward import RewardAsk
from service.domain.wallet import WalletAsk

# What a receipt may hold: the one definition the API's schemas, the settings and the
# engine derive their bounds from. The engine computes in 64-bit integers; these keep
# every product of a quantity and a price, and every sum of a receipt, exact.
MAX_LINES = 1_000
MAX_QUANTITY = 10**7  # thousandths: 10,000 units or kilograms on one line
MAX_UNIT_PRICE = 10**9  # kopecks: 10 million roubles
MAX_RECEIPT_AMOUNT = 10**9  # kopecks: 10 million roubles
MAX_REDEEM_POINTS = 10**12


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    """One line of goods.

    ``quantity`` is in thousandths (1 unit = 1000, 0.532 kg = 532); ``unit_price`` in
    kopecks. ``excluded`` means the POS puts the line outside loyalty: it gets no
    discount, earns nothing and cannot be paid with points.
    """

    line_id: str
    sku: str
    quantity: int
    unit_price: int
    category: str | None = None
    brand: str | None = None
    excluded: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    """A sale to calculate. ``timestamp`` is tz-aware: when the sale happened."""

    store_id: str
    timestamp: datetime
    lines: tuple[ReceiptLine, ...]
    card: str | None = None
    terminal_id: str | None = None
    channel: str = "offline"
    payment_method: str | None = None
    pickup: bool = False
    promo_codes: tuple[str, ...] = ()
    redeem_points: int = 0
    redeem_max: bool = False
    wallet: WalletAsk | None = None  # money from a gift certificate or e-wallet
    rewards: tuple[RewardAsk, ...] = ()  # rewards from the catalogue, bought with points


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """A store: its region (for rule targeting) and IANA time zone (for time conditions)."""

    store_id: str
    region: str
    timezone: str
