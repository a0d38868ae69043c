"""Pydantic schemas of the back office API (/v1/admin), each with an example for the
OpenAPI document. Money is integer kopecks; points are integers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.api.schemas import (
    EXAMPLE_LINE,
    INT64_MAX,
    NO_NUL,
    CalculateRequest,
    CalculationOut,
    CardNumber,
    FieldErrorOut,
    Phone,
    RuleOut,
    Timestamp,
)
from service.domain.contacts import normalize_email
from service.rules.demo import demo_program
from service.rules.document import percent_bp
from service.usecases.admin_import import CUSTOMER_FIELDS


def _examples(*examples: dict[str, Any], strict: bool = True) -> ConfigDict:
    """A model config whose JSON schema carries ``examples``; requests refuse unknown fields."""
    extra: Literal["forbid", "ignore"] = "forbid" if strict else "ignore"
    return ConfigDict(extra=extra, json_schema_extra={"examples": list(examples)})


AT = "2026-11-22T10:00:00Z"
DEMO_CARD = "2000000000022"


def _storable(value: Any) -> None:
    """Refuse what jsonb or its encoder cannot hold: a NUL character in a string or a key,
    an integer beyond 64 bits (orjson refuses it; a number that large is no setting)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("a NUL character cannot be stored")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not -(2**63) <= value <= INT64_MAX:
            raise ValueError("integers must fit in 64 bits")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable(item)
    elif isinstance(value, list):
        for item in value:
            _storable(item)


def _storable_object(value: dict[str, Any]) -> dict[str, Any]:
    _storable(value)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_storable_object)]

# ---------------------------------------------------------------- common


class OkOut(BaseModel):
    ok: bool = True

    model_config = _examples({"ok": True}, strict=False)


# ---------------------------------------------------------------- programs


class DocumentIn(BaseModel):
    document: JsonObject = Field(description="a program document (service/rules/README.md)")

    model_config = _examples({"document": demo_program()})


class ValidationOut(BaseModel):
    valid: bool
    errors: list[FieldErrorOut]

    model_config = _examples(
        {
            "valid": False,
            "errors": [
                {
                    "field": "document.rules[3].effect.percent",
                    "message": "Input should be greater than 0",
                }
            ],
        },
        strict=False,
    )


_VERSION_EXAMPLE: dict[str, Any] = {
    "version": 8, "status": "draft", "name": "Style", "created_by": "marketing (3f2a9c0d1e4b5a6c)",
    "created_at": AT, "publish_at": "2026-12-01T00:00:00Z", "published_at": None,
    "current": False,
}  # fmt: skip


class VersionSummaryOut(BaseModel):
    version: int
    status: Literal["draft", "published", "retired"]
    name: str | None
    created_by: str
    created_at: datetime
    publish_at: datetime | None
    published_at: datetime | None
    current: bool

    model_config = _examples(_VERSION_EXAMPLE, strict=False)


class VersionOut(VersionSummaryOut):
    document: dict[str, Any]

    model_config = _examples({**_VERSION_EXAMPLE, "document": demo_program()}, strict=False)


class VersionsOut(BaseModel):
    versions: list[VersionSummaryOut]
    next_cursor: int | None = Field(description="pass as `before` for the next page")

    model_config = _examples({"versions": [_VERSION_EXAMPLE], "next_cursor": None}, strict=False)


class ScheduleIn(BaseModel):
    publish_at: Timestamp | None = Field(description="when to publish; null unschedules")

    model_config = _examples({"publish_at": "2026-12-01T00:00:00+03:00"})


class DryRunIn(BaseModel):
    receipt: CalculateRequest
    now: Timestamp | None = Field(
        default=None, description="evaluate as of this moment (default: now)"
    )

    model_config = _examples(
        {
            "receipt": {
                "store_id": "msk-001",
                "timestamp": "2026-11-20T12:00:00+03:00",
                "card": DEMO_CARD,
                "payment_method": "card",
                "lines": [EXAMPLE_LINE],
            },
            "now": "2026-11-20T12:00:05+03:00",
        }
    )


_RESULT_EXAMPLE: dict[str, Any] = {
    "program_version": 8,
    "lines": [{"line_id": "1", "amount": 349900, "discount": 17495, "points_paid": 0,
               "final_amount": 332405, "points_earned": 99,
               "applied": [{"rule_id": "tier-discount", "name": "Tier discount",
                            "amount": 17495}],
               "fiscal_positions": [{"quantity": "1", "unit_price": 332405,
                                     "amount": 332405}]}],
    "totals": {"subtotal": 349900, "discount": 17495, "points_redeemable_max": 1662,
               "points_redeemed": 0, "amount_due": 332405, "points_earned": 99},
    "card": {"number": DEMO_CARD, "status": "active", "tier": "silver", "balance": 5000,
             "pending": 0, "expiring": [], "next_tier": {"tier": "gold", "spend_needed": 3500000}},
    "promo_codes": [], "gifts": [], "free_delivery": False,
    "rules": [{"rule_id": "tier-discount", "name": "Tier discount", "applied": True,
               "reason": None, "amount": 17495, "points": 0, "reason_text": None}],
    "messages": [],
}  # fmt: skip


class DryRunRuleOut(RuleOut):
    reason_text: str | None = Field(
        description="why the rule did not apply, in words (Accept-Language: en or ru)"
    )


class DryRunOut(CalculationOut):
    """A calculation's answer, without a calculation id: nothing is kept for a commit;
    each rule that did not apply says why in words."""

    rules: list[DryRunRuleOut]  # type: ignore[assignment]

    model_config = _examples(_RESULT_EXAMPLE, strict=False)


class ActiveProgramOut(BaseModel):
    version: int | None = Field(description="the version this worker calculates with")
    worker: int = Field(description="the answering worker's process id")
    taken_up_at: datetime | None = Field(
        description="when this worker swapped to that version (None: no program yet)"
    )

    model_config = _examples(
        {"version": 7, "worker": 4121, "taken_up_at": "2026-11-22T18:05:00.125000Z"},
        strict=False,
    )


# ---------------------------------------------------------------- audit


_AUDIT_EXAMPLE = {
    "audit_id": 42,
    "actor": "marketing (3f2a9c0d1e4b5a6c)",
    "action": "program.publish",
    "subject": "program:8",
    "details": {"version": 8},
    "created_at": AT,
}


class AuditEntryOut(BaseModel):
    audit_id: int
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    created_at: datetime

    model_config = _examples(_AUDIT_EXAMPLE, strict=False)


class AuditOut(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: int | None

    model_config = _examples({"entries": [_AUDIT_EXAMPLE], "next_cursor": None}, strict=False)


# ---------------------------------------------------------------- stores and regions

Slug = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Text = Annotated[str, Field(max_length=200, pattern=NO_NUL)]


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name") from None
    return value


TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_known_timezone)]


class RegionIn(BaseModel):
    name: Text = ""

    model_config = _examples({"name": "Moscow and the region"})


_REGION_EXAMPLE = {"region_id": "moscow", "name": "Moscow and the region", "stores": ["msk-001"]}


class RegionOut(BaseModel):
    region_id: str
    name: str
    stores: list[str]

    model_config = _examples(_REGION_EXAMPLE, strict=False)


class RegionsOut(BaseModel):
    regions: list[RegionOut]

    model_config = _examples({"regions": [_REGION_EXAMPLE]}, strict=False)


class StoreIn(BaseModel):
    name: Text = ""
    region: Slug
    timezone: TimeZone
    active: bool = True

    model_config = _examples(
        {"name": "Style Kazan", "region": "volga", "timezone": "Europe/Moscow", "active": True}
    )


_STORE_EXAMPLE = {
    "store_id": "kzn-001", "name": "Style Kazan", "region": "volga",
    "timezone": "Europe/Moscow", "active": True, "created_at": AT,
}  # fmt: skip


class StoreOut(BaseModel):
    store_id: str
    name: str
    region: str
    timezone: str
    active: bool
    created_at: datetime

    model_config = _examples(_STORE_EXAMPLE, strict=False)


class StoresOut(BaseModel):
    stores: list[StoreOut]

    model_config = _examples({"stores": [_STORE_EXAMPLE]}, strict=False)


# ---------------------------------------------------------------- customers

Email = Annotated[
    str,
    Field(max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"),
    AfterValidator(normalize_email),
]
Segment = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]


class CustomerIn(BaseModel):
    name: Text | None = None
    phone: Phone | None = None
    email: Email | None = None
    birthday: date | None = None
    attributes: JsonObject = Field(default_factory=dict, max_length=100)
    segments: list[Segment] = Field(default_factory=list, max_length=100)

    model_config = _examples(
        {
            "name": "Anna Petrova",
            "phone": "+79001234567",
            "email": "anna@example.com",
            "birthday": "1990-03-15",
            "attributes": {"size": "M"},
            "segments": ["vip"],
        }
    )


class CustomerPatch(CustomerIn):
    """Only the fields given change; null clears a field."""

    model_config = _examples({"email": "anna.petrova@example.com", "segments": ["vip", "kids"]})


_CUSTOMER_EXAMPLE = {
    "customer_id": 17, "name": "Anna Petrova", "phone": "+79001234567",
    "email": "anna@example.com", "birthday": "1990-03-15", "attributes": {"size": "M"},
    "segments": ["vip"], "created_at": AT, "erased_at": None, "cards": ["2000000000015"],
    "consents": [{"channel": "sms", "given": True, "given_at": AT, "store_id": "msk-001"}],
}  # fmt: skip


class ConsentOut(BaseModel):
    channel: str
    given: bool
    given_at: datetime
    store_id: str | None


class CustomerOut(BaseModel):
    customer_id: int
    name: str | None
    phone: str | None
    email: str | None
    birthday: date | None
    attributes: dict[str, Any]
    segments: list[str]
    created_at: datetime
    erased_at: datetime | None
    cards: list[str]
    consents: list[ConsentOut] = Field(description="the consent in force per mailing channel")

    model_config = _examples(_CUSTOMER_EXAMPLE, strict=False)


class CustomersOut(BaseModel):
    customers: list[CustomerOut]

    model_config = _examples({"customers": [_CUSTOMER_EXAMPLE]}, strict=False)


# ---------------------------------------------------------------- cards

CardKind = Literal["physical", "virtual"]
CardStatus = Literal["active", "blocked", "inactive"]
CustomerId = Annotated[int, Field(ge=1, le=2**63 - 1)]
Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]


class CardIssueIn(BaseModel):
    number: CardNumber
    kind: CardKind = "physical"
    status: CardStatus = "active"
    customer_id: CustomerId | None = Field(default=None, description="registers the card")
    referred_by: CardNumber | None = Field(default=None, description="the referrer's card")

    model_config = _examples(
        {
            "number": "2000000001234",
            "kind": "physical",
            "customer_id": 17,
            "referred_by": "2000000000015",
        }
    )


class CardRangeIn(BaseModel):
    first: CardNumber
    last: CardNumber
    kind: CardKind = "physical"
    status: CardStatus = "inactive"

    model_config = _examples(
        {
            "first": "2000000100000",
            "last": "2000000100999",
            "kind": "physical",
            "status": "inactive",
        }
    )


class CardRangeOut(BaseModel):
    requested: int
    issued: int = Field(description="numbers not issued before")

    model_config = _examples({"requested": 1000, "issued": 1000}, strict=False)


# A percentage as text ("7.5") or an integer, held in basis points (750).
PercentBp = Annotated[int, BeforeValidator(percent_bp), Field(ge=0, le=10_000)]


class CardStatusIn(BaseModel):
    reason: Reason

    model_config = _examples({"reason": "reported stolen by the customer"})


class PersonalDiscountIn(BaseModel):
    percent: PercentBp = Field(description='the card\'s personal discount, e.g. "7.5"; 0: none')
    reason: Reason

    model_config = _examples({"percent": "7.5", "reason": "a loyal customer since 2019"})


class CardLinkIn(BaseModel):
    customer_id: CustomerId

    model_config = _examples({"customer_id": 17})


class CardReplaceIn(BaseModel):
    new_number: CardNumber
    kind: CardKind = "physical"

    model_config = _examples({"new_number": "2000000001241", "kind": "physical"})


_CARD_EXAMPLE = {
    "number": DEMO_CARD, "kind": "physical", "status": "active", "tier": "silver",
    "customer_id": 2, "personal_discount_bp": 0, "purchase_count": 12, "debt": 0,
    "created_at": AT, "replaced_by": None, "referred_by": None, "balance": 5000, "pending": 120,
}  # fmt: skip


class AdminCardOut(BaseModel):
    number: str
    kind: CardKind
    status: CardStatus
    tier: str | None
    customer_id: int | None
    personal_discount_bp: int
    purchase_count: int
    debt: int
    created_at: datetime
    replaced_by: str | None
    referred_by: str | None
    balance: int = Field(description="spendable points now, less debt")
    pending: int

    model_config = _examples(_CARD_EXAMPLE, strict=False)


class AdjustmentIn(BaseModel):
    points: StrictInt = Field(ge=-(10**9), le=10**9, description="credit (>0) or debit (<0)")
    reason: Reason
    expires_at: Timestamp | None = Field(
        default=None, description="credits only; default: the program's validity"
    )

    model_config = _examples({"points": 500, "reason": "apology for a late delivery"})

    @field_validator("points")
    @classmethod
    def _not_zero(cls, points: int) -> int:
        if points == 0:
            raise ValueError("an adjustment moves at least one point")
        return points


_ADJUSTMENT_EXAMPLE = {
    "adjustment_id": 5,
    "points": 500,
    "reason": "apology for a late delivery",
    "author": "support (3f2a9c0d1e4b5a6c)",
    "created_at": AT,
}


class AdjustmentOut(BaseModel):
    adjustment_id: int
    points: int
    reason: str
    author: str
    created_at: datetime

    model_config = _examples(_ADJUSTMENT_EXAMPLE, strict=False)


class AdjustmentsOut(BaseModel):
    adjustments: list[AdjustmentOut]
    next_cursor: int | None

    model_config = _examples(
        {"adjustments": [_ADJUSTMENT_EXAMPLE], "next_cursor": None}, strict=False
    )


# ---------------------------------------------------------------- CSV import


class RejectedRowOut(BaseModel):
    line: int = Field(description="line of the file, the header being line 1")
    reason: str

    model_config = _examples({"line": 3, "reason": "phone: already taken"}, strict=False)


class ImportStartedOut(BaseModel):
    """A background import, started: follow it at GET /v1/admin/import/jobs/{job_id}."""

    job_id: int
    status: Literal["running"]
    total: int
    done: int

    model_config = _examples(
        {"job_id": 7, "status": "running", "total": 100000, "done": 0}, strict=False
    )


class ImportJobOut(BaseModel):
    """A background import: ``done`` of ``total`` rows so far; the report once ``done``."""

    job_id: int
    kind: str
    dry_run: bool
    status: Literal["running", "done", "failed"]
    total: int
    done: int
    stalled: bool = Field(description="running, but not moved for a minute: its worker stopped")
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    imported: int | None = None
    unchanged: int | None = None
    rejected: list[RejectedRowOut] | None = None

    model_config = _examples(
        {"job_id": 7, "kind": "customers", "dry_run": False, "status": "running",
         "total": 100000, "done": 42000, "stalled": False, "error": None,
         "created_at": "2026-12-07T12:00:00Z", "finished_at": None},
        strict=False,
    )  # fmt: skip


class ImportOut(BaseModel):
    imported: int = Field(description="rows written anew (a dry run: that would be)")
    unchanged: int = Field(description="rows the ledger has as they are (a file sent again)")
    rejected: list[RejectedRowOut]
    dry_run: bool = Field(description="true: checked only, nothing written")

    model_config = _examples(
        {"imported": 2, "unchanged": 0, "rejected": [{"line": 3, "reason": "phone: already taken"}],
         "dry_run": False},
        strict=False,
    )  # fmt: skip


class CustomerRow(CustomerIn):
    """A row of a customers CSV: the customer, and optionally a card to register to them."""

    card: CardNumber | None = None

    model_config = ConfigDict(extra="forbid")


class CardRow(BaseModel):
    """A row of a cards CSV; ``phone`` registers the card to the customer with it."""

    number: CardNumber
    kind: CardKind = "physical"
    status: CardStatus = "active"
    phone: Phone | None = None
    personal_discount: PercentBp | None = None

    model_config = ConfigDict(extra="ignore")


def import_shape(
    kind: str,
) -> tuple[type[CustomerRow | CardRow], tuple[str, ...], tuple[str, ...] | None]:
    """An import's row model, the columns it needs, and the columns it knows (any other
    becomes an attribute; None: other columns are ignored)."""
    if kind == "customers":
        return CustomerRow, ("phone",), CUSTOMER_FIELDS
    return CardRow, ("number",), None


CUSTOMERS_CSV = (
    "name,phone,email,birthday,segments,card\n"
    "Anna Petrova,+79001234567,anna@example.com,1990-03-15,vip;kids,2000000001234\n"
    "Boris Ivanov,+79001234568,,,,\n"
)
CARDS_CSV = "number,kind,status,phone\n2000000001241,physical,active,+79001234568\n"


# ---------------------------------------------------------------- promo codes

Prefix = Annotated[str, Field(max_length=20, pattern=r"^[A-Z0-9_-]*$")]


class PromoBatchIn(BaseModel):
    count: StrictInt = Field(ge=1, le=100_000)
    prefix: Prefix = ""
    length: StrictInt = Field(
        default=8, ge=4, le=32, description="random characters after the prefix"
    )
    rule_ids: list[Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]] = Field(
        min_length=1, max_length=20, description="promo rules of the program the codes unlock"
    )
    single_use: bool = Field(default=True, description="each code works once in all")
    max_uses: StrictInt | None = Field(default=None, ge=1, le=10**9, description="multi-use limit")
    per_card_limit: StrictInt | None = Field(default=None, ge=1, le=10**6)
    valid_from: Timestamp | None = None
    valid_to: Timestamp | None = None

    model_config = _examples(
        {
            "count": 1000,
            "prefix": "BF24-",
            "length": 8,
            "rule_ids": ["autumn10"],
            "single_use": True,
            "per_card_limit": 1,
            "valid_from": "2026-11-25T00:00:00+03:00",
            "valid_to": "2026-11-30T23:59:59+03:00",
        }
    )

    @field_validator("max_uses")
    @classmethod
    def _multi_use_only(cls, max_uses: int | None, info: ValidationInfo) -> int | None:
        if max_uses is not None and info.data.get("single_use", True):
            raise ValueError("a single-use code is used once; set single_use false")
        return max_uses

    @field_validator("valid_to")
    @classmethod
    def _after_start(cls, valid_to: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("valid_from")
        if valid_to is not None and start is not None and valid_to <= start:
            raise ValueError("must be after valid_from")
        return valid_to


_BATCH_EXAMPLE: dict[str, Any] = {
    "batch_id": "b_4f1c2a9e7d3b", "prefix": "BF24-", "count": 1000, "rule_ids": ["autumn10"],
    "max_uses": 1, "per_card_limit": 1, "valid_from": "2026-11-24T21:00:00Z",
    "valid_to": "2026-11-30T20:59:59Z", "created_by": "marketing (3f2a9c0d1e4b5a6c)",
    "created_at": AT, "revoked_at": None, "uses": 37,
}  # fmt: skip


class PromoBatchOut(BaseModel):
    batch_id: str
    prefix: str
    count: int
    rule_ids: list[str]
    max_uses: int | None
    per_card_limit: int | None
    valid_from: datetime | None
    valid_to: datetime | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    uses: int = Field(description="uses of the batch's codes, returns excluded")

    model_config = _examples(_BATCH_EXAMPLE, strict=False)


class PromoBatchListedOut(PromoBatchOut):
    number: int = Field(description="the batch's place in the order of creation (the cursor)")


class PromoBatchesOut(BaseModel):
    batches: list[PromoBatchListedOut]
    next_cursor: int | None = Field(description="``before`` for the next page; None: the last")

    model_config = _examples(
        {"batches": [{**_BATCH_EXAMPLE, "number": 12}], "next_cursor": None}, strict=False
    )


class PromoBatchCreatedOut(PromoBatchOut):
    codes: list[str]

    model_config = _examples(
        {**_BATCH_EXAMPLE, "uses": 0, "codes": ["BF24-7KQ2M9XA"]}, strict=False
    )


class PromoCodeStatusOut(BaseModel):
    code: str
    state: Literal["active", "revoked", "not_yet_valid", "expired", "used_up"]
    batch_id: str | None
    declared: bool = Field(description="declared by the program document, not a batch")
    rule_ids: list[str]
    max_uses: int | None
    uses: int
    per_card_limit: int | None
    valid_from: datetime | None
    valid_to: datetime | None
    revoked_at: datetime | None
    created_at: datetime

    model_config = _examples(
        {
            "code": "BF24-7KQ2M9XA",
            "state": "active",
            "batch_id": "b_4f1c2a9e7d3b",
            "declared": False,
            "rule_ids": ["autumn10"],
            "max_uses": 1,
            "uses": 0,
            "per_card_limit": 1,
            "valid_from": None,
            "valid_to": None,
            "revoked_at": None,
            "created_at": AT,
        },
        strict=False,
    )


# ---------------------------------------------------------------- reports


class BalanceRowOut(BaseModel):
    card_id: int
    number: str
    status: str
    tier: str | None
    customer_id: int | None
    balance: int
    pending: int
    debt: int


class BalancesOut(BaseModel):
    rows: list[BalanceRowOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")

    model_config = _examples(
        {
            "rows": [
                {
                    "card_id": 2,
                    "number": DEMO_CARD,
                    "status": "active",
                    "tier": "silver",
                    "customer_id": 2,
                    "balance": 5000,
                    "pending": 120,
                    "debt": 0,
                }
            ],
            "next_cursor": "2",
        },
        strict=False,
    )


class EntryRowOut(BaseModel):
    entry_id: int
    card_id: int
    card: str
    created_at: datetime
    kind: str
    points: int
    store_id: str | None
    transaction_id: str | None
    refund_id: str | None
    reason: str | None
    author: str | None


class EntriesOut(BaseModel):
    rows: list[EntryRowOut]
    next_cursor: str | None

    model_config = _examples(
        {
            "rows": [
                {
                    "entry_id": 981,
                    "card_id": 2,
                    "card": DEMO_CARD,
                    "created_at": AT,
                    "kind": "accrual",
                    "points": 99,
                    "store_id": "msk-001",
                    "transaction_id": "R-0001",
                    "refund_id": None,
                    "reason": None,
                    "author": None,
                }
            ],
            "next_cursor": None,
        },
        strict=False,
    )


class PromotionRowOut(BaseModel):
    rule_id: str
    name: str
    receipts: int
    discount: int = Field(description="kopecks of discount the rule gave")
    points_on_receipts: int = Field(description="points earned by the receipts it applied to")


class PromotionsOut(BaseModel):
    rows: list[PromotionRowOut]
    next_cursor: str | None

    model_config = _examples(
        {
            "rows": [
                {
                    "rule_id": "tier-discount",
                    "name": "Tier discount",
                    "receipts": 412,
                    "discount": 7321500,
                    "points_on_receipts": 40210,
                }
            ],
            "next_cursor": None,
        },
        strict=False,
    )


class HealthReportOut(BaseModel):
    since: datetime
    until: datetime
    receipts: int
    receipts_with_card: int
    active_cards: int
    points_earned: int
    points_redeemed: int
    sales_with_card: int
    sales_without_card: int
    participation_bp: int | None = Field(description="receipts with a card, basis points")
    redeemed_to_earned_bp: int | None
    average_receipt_with_card: int | None = Field(description="kopecks, after discounts")
    average_receipt_without_card: int | None

    model_config = _examples(
        {
            "since": "2026-11-01T00:00:00Z",
            "until": "2026-12-01T00:00:00Z",
            "receipts": 1000,
            "receipts_with_card": 640,
            "active_cards": 512,
            "points_earned": 80000,
            "points_redeemed": 36000,
            "sales_with_card": 224000000,
            "sales_without_card": 90000000,
            "participation_bp": 6400,
            "redeemed_to_earned_bp": 4500,
            "average_receipt_with_card": 350000,
            "average_receipt_without_card": 250000,
        },
        strict=False,
    )


class LiabilityRowOut(BaseModel):
    month: str = Field(description="YYYY-MM of expiry (UTC), or 'never'")
    active: int
    pending: int
    points: int
    value: int = Field(description="kopecks the points pay for at the current point value")


class LiabilityOut(BaseModel):
    rows: list[LiabilityRowOut]
    next_cursor: str | None

    model_config = _examples(
        {
            "rows": [
                {
                    "month": "2027-01",
                    "active": 25000,
                    "pending": 1200,
                    "points": 26200,
                    "value": 2620000,
                }
            ],
            "next_cursor": None,
        },
        strict=False,
    )


class BreakageRowOut(BaseModel):
    month: str = Field(description="YYYY-MM (UTC) the points expired in")
    points_expired: int
    cards: int
    value: int


class BreakageOut(BaseModel):
    rows: list[BreakageRowOut]
    next_cursor: str | None

    model_config = _examples(
        {
            "rows": [{"month": "2026-10", "points_expired": 3100, "cards": 12, "value": 310000}],
            "next_cursor": None,
        },
        strict=False,
    )


# ---------------------------------------------------------------- webhooks

WebhookEvent = Literal[
    "accrual", "redemption", "tier_change", "expiring", "expiration", "refund", "cancel",
    "card_issued", "customer_registered", "birthday", "reward_issued",
]  # fmt: skip


class WebhookIn(BaseModel):
    url: AnyHttpUrl
    events: list[WebhookEvent] = Field(min_length=1, max_length=10)
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        pattern=NO_NUL,
        description="HMAC key; default: a random one, shown in this answer only",
    )

    model_config = _examples(
        {"url": "https://crm.example.com/loyalty/events", "events": ["accrual", "tier_change"]}
    )


_WEBHOOK_EXAMPLE = {
    "subscription_id": 3, "url": "https://crm.example.com/loyalty/events",
    "events": ["accrual", "tier_change"], "active": True,
    "created_by": "it (3f2a9c0d1e4b5a6c)", "created_at": AT,
}  # fmt: skip


class WebhookOut(BaseModel):
    subscription_id: int
    url: str
    events: list[str]
    active: bool
    created_by: str
    created_at: datetime

    model_config = _examples(_WEBHOOK_EXAMPLE, strict=False)


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="verify X-Loyalty-Signature with it; not shown again")

    model_config = _examples({**_WEBHOOK_EXAMPLE, "secret": "whsec_Zx3..."}, strict=False)


class WebhooksOut(BaseModel):
    webhooks: list[WebhookOut]

    model_config = _examples({"webhooks": [_WEBHOOK_EXAMPLE]}, strict=False)


class DeliveryOut(BaseModel):
    event_id: int
    event: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: int | None

    model_config = _examples(
        {
            "deliveries": [
                {
                    "event_id": 1201,
                    "event": "accrual",
                    "status": "delivered",
                    "attempts": 2,
                    "next_attempt_at": AT,
                    "last_error": "HTTP 503",
                    "delivered_at": AT,
                }
            ],
            "next_cursor": None,
        },
        strict=False,
    )


# ---------------------------------------------------------------- API keys


class KeyIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)] = Field(
        description="whose key it is: a till, a system, a person"
    )
    role: Literal["admin", "marketing", "analyst", "pos"]
    stores: list[Slug] = Field(
        default_factory=list, max_length=1000, description="a POS key's stores (only POS keys)"
    )
    expires_at: Timestamp | None = Field(default=None, description="none: never expires")

    model_config = _examples({"name": "till 7, msk-001", "role": "pos", "stores": ["msk-001"]})


_KEY_EXAMPLE: dict[str, Any] = {
    "key_id": "3f2a9c0d1e4b5a6c",
    "prefix": "lk_Xq3Zp1w",
    "name": "till 7, msk-001",
    "role": "pos",
    "store_ids": ["msk-001"],
    "origin": "api",
    "created_by": "admin (9d1e4b5a6c3f2a0c)",
    "created_at": AT,
    "expires_at": None,
    "last_used_at": AT,
    "revoked_at": None,
}


class KeyOut(BaseModel):
    key_id: str = Field(description="the key's id (revoke by it or by the prefix)")
    prefix: str | None = Field(description="the key's first characters, to recognise it")
    name: str
    role: str
    store_ids: list[str]
    origin: Literal["cli", "api", "demo"]
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="to the minute")
    revoked_at: datetime | None

    model_config = _examples(_KEY_EXAMPLE, strict=False)


class KeyCreatedOut(KeyOut):
    key: str = Field(description="the secret: shown this once, never again")

    model_config = _examples(
        {**_KEY_EXAMPLE, "key": "lk_Xq3Zp1wExampleExampleExampleExample0000", "last_used_at": None},
        strict=False,
    )


class KeysOut(BaseModel):
    keys: list[KeyOut]

    model_config = _examples({"keys": [_KEY_EXAMPLE]}, strict=False)


# ---------------------------------------------------------------- the cashier's registration

ConsentChannel = Literal["sms", "email", "push", "messengers", "calls"]


class ConsentIn(BaseModel):
    channel: ConsentChannel = Field(description="the mailing channel consented to or refused")
    given: bool
    at: Timestamp | None = Field(default=None, description="when the customer said so; now")

    model_config = _examples({"channel": "sms", "given": True})


class RegistrationIn(BaseModel):
    store_id: Slug = Field(description="the store registering (a POS key: one of its own)")
    card: CardNumber = Field(description="the card handed over: issued here if new")
    customer: CustomerIn
    consents: list[ConsentIn] = Field(default_factory=list, max_length=10)

    model_config = _examples(
        {
            "store_id": "msk-001",
            "card": "2000000001241",
            "customer": {"name": "Anna Petrova", "phone": "+79001234567", "birthday": "1990-03-15"},
            "consents": [{"channel": "sms", "given": True}],
        }
    )


class ConsentsIn(BaseModel):
    store_id: Slug
    card: CardNumber = Field(description="the customer's card")
    consents: list[ConsentIn] = Field(min_length=1, max_length=10)

    model_config = _examples(
        {
            "store_id": "msk-001",
            "card": "2000000001241",
            "consents": [{"channel": "email", "given": False}],
        }
    )


class RegistrationOut(BaseModel):
    customer: CustomerOut
    card: AdminCardOut

    model_config = _examples({"customer": _CUSTOMER_EXAMPLE, "card": _CARD_EXAMPLE}, strict=False)


class SimulationStartedOut(BaseModel):
    """A simulation, started: follow it at GET /v1/admin/simulations/{job_id}."""

    job_id: int
    status: Literal["running"]
    total: int = Field(description="receipts to evaluate: the file's, once per program")
    done: int

    model_config = _examples(
        {"job_id": 3, "status": "running", "total": 311036, "done": 0}, strict=False
    )


class SimulationJobOut(BaseModel):
    """A simulation: ``done`` of ``total`` receipt evaluations so far; once ``done``, the
    ``result``: ``current`` and ``draft`` (discount, points earned and redeemed and their
    value, liability at the end and by expiry month, expected breakage, tier mix by month,
    per rule, store and month, receipts and customers touched), their ``difference`` and
    ``per_rule`` side by side. Money in kopecks, shares in basis points."""

    job_id: int
    draft_version: int
    current_version: int
    status: Literal["running", "done", "failed"]
    total: int
    done: int
    stalled: bool = Field(description="running, but not moved for a minute: its worker stopped")
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    result: dict[str, Any] | None

    model_config = _examples(
        {
            "job_id": 3, "draft_version": 5, "current_version": 4, "status": "running",
            "total": 311036, "done": 120000, "stalled": False, "error": None,
            "created_at": AT, "finished_at": None, "result": None,
        },
        strict=False,
    )  # fmt: skip


class UpliftGroupIn(BaseModel):
    """Customers of one channel and kind at about one distance from a threshold."""

    channel: Literal["offline", "online"]
    kind: Literal["new", "loyal"]
    customers: int = Field(ge=0, le=10**9)
    average_receipt: int = Field(ge=1, le=10**12, description="kopecks")
    threshold: int = Field(ge=1, le=10**12, description="kopecks")
    purchases_per_month_milli: int = Field(ge=0, le=10**6, description="thousandths")

    model_config = _examples(
        {"channel": "online", "kind": "loyal", "customers": 1000, "average_receipt": 203000,
         "threshold": 300000, "purchases_per_month_milli": 2000}
    )  # fmt: skip


class UpliftLedgerIn(BaseModel):
    """The customer groups built from a period of the ledger
    (``service/simulation/uplift_groups.py``): each card that bought in it by channel,
    kind (new: its first sale of the period in the last ``new_days``) and distance from
    the threshold in bands of 10% of its average receipt."""

    since: Timestamp
    until: Timestamp
    threshold: int = Field(ge=1, le=10**12, description="kopecks")
    new_days: int = Field(90, ge=0, le=3650)

    model_config = _examples(
        {"since": "2026-01-01T00:00:00+03:00", "until": "2026-07-01T00:00:00+03:00",
         "threshold": 300000, "new_days": 90}
    )  # fmt: skip


class UpliftForecastIn(BaseModel):
    """The uplift forecast of a threshold (SPEC §10.2): the groups, given or built from a
    period of the ledger (one of the two), and the assumptions (each default as
    ``loyalty forecast``'s)."""

    groups: list[UpliftGroupIn] | None = Field(None, min_length=1, max_length=1000)
    ledger: UpliftLedgerIn | None = None
    addon_share_bp: int = Field(8_000, ge=0, le=10_000)
    gift_share_bp: int = Field(500, ge=0, le=10_000)
    gift_cost_cap: int | None = Field(None, ge=0, le=10**12)
    discount_bp: int = Field(0, ge=0, le=10_000)
    delivery_cost: int = Field(35_000, ge=0, le=10**12)
    months: int = Field(12, ge=1, le=120)

    model_config = _examples(
        {"groups": [{"channel": "online", "kind": "loyal", "customers": 1000,
                     "average_receipt": 203000, "threshold": 300000,
                     "purchases_per_month_milli": 2000}]}
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_source(self) -> UpliftForecastIn:
        if (self.groups is None) == (self.ledger is None):
            raise ValueError("give either groups or ledger")
        return self


class UpliftForecastOut(BaseModel):
    """Every assumption with the value it took, each scenario's total uplift (kopecks,
    in all and per channel) and a row per scenario, group and month; the groups it was
    computed on (built from the ledger, or as given)."""

    assumptions: dict[str, Any]
    totals: dict[str, dict[str, int]]
    rows: list[dict[str, Any]]
    groups: list[UpliftGroupIn]

    model_config = _examples(
        {"assumptions": {"addon_share_bp": 8000, "delivery_cost": 35000, "months": 12},
         "totals": {"moderate": {"total": 56400000, "online": 56400000}},
         "rows": [{"scenario": "moderate", "month": 1, "channel": "online", "uplift": 4700000}]},
        strict=False,
    )  # fmt: skip


class FiguresOut(BaseModel):
    """One slice's figures (SPEC §10.3): money in kopecks, frequency in thousandths of a
    receipt per active member, the redeemed/earned ratio in basis points."""

    slice: str
    receipts: int
    receipts_with_card: int
    average_receipt_with_card: int
    average_receipt_without_card: int
    active_members: int
    new_members: int
    churned_members: int
    purchase_frequency_milli: int
    ltv: int
    points_earned: int
    points_redeemed: int
    redeemed_per_earned_bp: int
    paid_with_points: int


class AnalyticsOut(BaseModel):
    """A period of the ledger in slices (``by``): a member is a card; active: it bought
    in the slice; new: its first sale of the period is there; churned: its last sale of
    the period is there and lies over ``churn_days`` before the period's last sale. Points
    as each sale recorded them; returns are not netted out."""

    by: Literal["store", "group", "channel", "month"]
    since: datetime
    until: datetime
    churn_days: int
    slices: list[FiguresOut]

    model_config = _examples(
        {"by": "store", "since": AT, "until": AT, "churn_days": 90,
         "slices": [{"slice": "msk-001", "receipts": 1200, "receipts_with_card": 900,
                     "average_receipt_with_card": 320000, "average_receipt_without_card": 250000,
                     "active_members": 300, "new_members": 40, "churned_members": 12,
                     "purchase_frequency_milli": 3000, "ltv": 960000, "points_earned": 86000,
                     "points_redeemed": 21000, "redeemed_per_earned_bp": 2441,
                     "paid_with_points": 2100000}]},
        strict=False,
    )  # fmt: skip


class PilotGroupOut(BaseModel):
    receipts: int
    sales: int = Field(description="kopecks")
    store_days: int


class PilotEstimateOut(BaseModel):
    uplift_bp: int
    low_bp: int = Field(description="the 99% interval's low end (bootstrap over days)")
    high_bp: int
    found: bool = Field(description="the interval leaves out zero")


class PilotOut(BaseModel):
    """The pilot stores against the control stores, before and after the start: each
    group's totals and the difference-in-differences uplift of the average receipt and of
    sales per store and day, with its 99% interval."""

    pilot_before: PilotGroupOut
    pilot_after: PilotGroupOut
    control_before: PilotGroupOut
    control_after: PilotGroupOut
    average_receipt: PilotEstimateOut
    sales_per_store_day: PilotEstimateOut

    model_config = _examples(
        {"pilot_before": {"receipts": 900, "sales": 270000000, "store_days": 60},
         "pilot_after": {"receipts": 950, "sales": 300000000, "store_days": 60},
         "control_before": {"receipts": 880, "sales": 264000000, "store_days": 60},
         "control_after": {"receipts": 890, "sales": 267000000, "store_days": 60},
         "average_receipt": {"uplift_bp": 480, "low_bp": 210, "high_bp": 760, "found": True},
         "sales_per_store_day": {"uplift_bp": 1000, "low_bp": 400, "high_bp": 1600,
                                 "found": True}},
        strict=False,
    )  # fmt: skip
