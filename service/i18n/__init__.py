"""What people read, in Russian and English (SPEC §12): the cashier's messages in every
answer and the errors' texts, chosen per request by ``Accept-Language`` with the chain's
default in settings. Codes stay as they are, language-free.

The English text is the message id, as gettext has it; the translations are gettext
catalogues (``locale/<language>/LC_MESSAGES/loyalty.po``), read once per process with
Babel. ``tests/unit/test_i18n.py`` holds every catalogue complete.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LANGUAGES = ("en", "ru")
DOMAIN = "loyalty"
_LOCALE = Path(__file__).parent / "locale"

# The cashier's messages (SPEC §3, ``messages``), by code: their English templates.
CASHIER = {
    "offer_card": "Offer the customer a loyalty card.",
    "card_inactive": "The card is {status}: it neither earns nor spends.",
    "birthday": "Happy birthday! Birthday offers apply.",
    "tier_upgrade": "After this sale the card moves up to {tier}.",
    "points_limited": "At most {max} of the {wanted} points asked for can be spent.",
}
# Error answers (``{"error": code, "detail": ...}``), by code: a sentence for people in
# the request's language; the English ``detail`` says more, and stays for English.
ERRORS = {
    "allowance_expired": "The allowance has expired.",
    "allowance_invalid": "The allowance is not one this service issued for this card and store.",
    "allowance_refused": "The allowance does not cover these points.",
    "allowance_too_large": "The allowance asks for more points than the program allows.",
    "allowances_unavailable": "Allowances are not available here.",
    "amount_out_of_range": "An amount is out of range.",
    "auth_error": "The API key is not accepted.",
    "bad_calculation": "The calculation id is not one this service issued.",
    "batch_not_found": "No such promo code batch.",
    "card_exists": "The card is issued already.",
    "card_in_use": "The card is in use.",
    "card_linked": "The card belongs to another customer.",
    "card_not_active": "The card is not active.",
    "card_not_found": "No such loyalty card.",
    "card_number_invalid": "The card number is not valid.",
    "card_replaced": "The card was replaced.",
    "conflict": "The request conflicts with the ledger's state.",
    "customer_erased": "The customer was erased.",
    "customer_exists": "Another customer has this phone or e-mail.",
    "customer_not_found": "No such customer.",
    "duplicate_line_id": "A line id appears twice in the receipt.",
    "duplicate_reward": "A reward is named twice: ask for its count.",
    "forbidden": "The API key may not do this.",
    "hold_not_found": "This calculation holds no points.",
    "holds_unavailable": "Points cannot be held here.",
    "http_error": "The request cannot be served.",
    "idempotency_conflict": "This id was used already for another request.",
    "import_job_not_found": "No such import job.",
    "insufficient_points": "The card no longer holds the points asked for.",
    "internal_error": "Internal error.",
    "invalid_input": "The request is not valid.",
    "invalid_period": "The period's end must come after its start.",
    "period_too_long": "The period is too long.",
    "invalid_redeem_points": "The points to spend are not valid.",
    "key_not_found": "No such API key.",
    "method_not_allowed": "Method not allowed.",
    "naive_timestamp": "A time is given without its time zone.",
    "no_customer": "The card has no customer.",
    "no_receipts_in_period": "The ledger holds no receipt in the period.",
    "no_program": "No loyalty program is published yet.",
    "not_found": "Not found.",
    "nothing_to_return": "Nothing is left to return on this sale.",
    "program_invalid": "The program document is not valid.",
    "program_never_published": "The program version was never published.",
    "program_not_draft": "The program version is not a draft.",
    "program_not_found": "No such program version.",
    "promo_code_declared": "The promo code is declared in the program.",
    "promo_code_not_found": "No such promo code.",
    "promo_rejected": "The promo code is unknown or revoked.",
    "promo_used_up": "The promo code can no longer be used.",
    "quantity_exceeded": "More is returned than was sold.",
    "receipt_too_old": "The receipt is older than the program accepts.",
    "redeem_over_limit": "More points are asked for than this receipt allows.",
    "redeem_without_card": "Points can only be spent with a card.",
    "region_not_found": "No such region.",
    "retry": "The ledger is busy; retry.",
    "reward_dates": "The reward's end must be after its start.",
    "reward_exists": "A reward with this code exists.",
    "reward_not_active": "The reward cannot be redeemed now.",
    "reward_not_applicable": "The reward does not apply to this receipt.",
    "reward_not_found": "No such reward in the catalogue.",
    "reward_without_card": "Rewards are bought with a card's points.",
    "rewards_unavailable": "Rewards cannot be read here.",
    "rule_limit_reached": "A rule's budget or use cap is reached; calculate the receipt again.",
    "sale_cancelled": "The sale was cancelled.",
    "sale_not_found": "No such sale.",
    "simulation_job_not_found": "No such simulation.",
    "simulation_not_done": "The simulation has not finished.",
    "stamps_changed": "The card's stamps changed since the calculation; calculate again.",
    "store_not_found": "No such store.",
    "timestamp_in_future": "The receipt's time is in the future; check the till's clock.",
    "too_many_lines": "The receipt has too many lines.",
    "unauthenticated": "An API key is needed.",
    "unavailable": "The service is unavailable; retry.",
    "unknown_line": "The sale has no such line.",
    "unstorable": "A value cannot be stored.",
    "unsupported_media_type": "The body's content type is not accepted.",
    "validation_error": "The request is not valid: see fields.",
    "wallet_amount_mismatch": "The amount is not the certificate's face value.",
    "wallet_amount_needed": "The certificate has no face value: give the amount.",
    "wallet_balance_limit": "The wallet would hold more than the program allows.",
    "wallet_batch_not_found": "No such batch of wallets.",
    "wallet_exists": "A wallet with this number exists.",
    "wallet_insufficient": "The wallet does not hold the money asked for.",
    "wallet_needs_card": "An e-wallet belongs to a card: name it.",
    "wallet_not_active": "The wallet is not active.",
    "wallet_not_found": "No such wallet.",
    "wallet_not_reloadable": "A certificate is not topped up.",
    "wallet_not_sellable": "Only a gift certificate is sold.",
    "wallets_unavailable": "Wallets cannot be read here.",
    "webhook_not_found": "No such webhook subscription.",
}
# Report columns, by name: their headers for people (CSV downloaded with a language).
COLUMNS = {
    "number": "Card",
    "status": "Status",
    "tier": "Tier",
    "customer_id": "Customer",
    "balance": "Balance, points",
    "pending": "Pending points",
    "debt": "Debt, points",
    "entry_id": "Entry",
    "card": "Card",
    "created_at": "Time",
    "kind": "Kind",
    "points": "Points",
    "store_id": "Store",
    "transaction_id": "Receipt",
    "refund_id": "Return",
    "reason": "Reason",
    "author": "Author",
    "rule_id": "Rule",
    "name": "Name",
    "receipts": "Receipts",
    "discount": "Discount, roubles",
    "points_on_receipts": "Points on receipts",
    "month": "Month",
    "active": "Active points",
    "value": "Value, roubles",
    "points_expired": "Points expired",
    "cards": "Cards",
    "since": "From",
    "until": "Until",
    "receipts_with_card": "Receipts with a card",
    "active_cards": "Active cards",
    "points_earned": "Points earned",
    "points_redeemed": "Points redeemed",
    "sales_with_card": "Sales with a card, roubles",
    "sales_without_card": "Sales without a card, roubles",
    "participation_bp": "Participation, basis points",
    "redeemed_to_earned_bp": "Redeemed to earned, basis points",
    "average_receipt_with_card": "Average receipt with a card, roubles",
    "average_receipt_without_card": "Average receipt without a card, roubles",
    "phone": "Phone",
    "email": "E-mail",
    "birthday": "Birthday",
    "segments": "Segments",
    "consent_sms": "SMS consent",
    "consent_email": "E-mail consent",
    "consent_push": "Push consent",
    "consent_messengers": "Messengers consent",
    "consent_calls": "Calls consent",
    "slice": "Slice",
    "active_members": "Active members",
    "new_members": "New members",
    "churned_members": "Churned members",
    "purchase_frequency_milli": "Purchases per member, thousandths",
    "ltv": "Sales per member, roubles",
    "redeemed_per_earned_bp": "Redeemed per earned, basis points",
    "paid_with_points": "Paid with points, roubles",
}
# The columns that hold money (kopecks): shown to people as roubles.
MONEY_COLUMNS = frozenset(
    (
        "discount",
        "value",
        "sales_with_card",
        "sales_without_card",
        "average_receipt_with_card",
        "average_receipt_without_card",
        "ltv",
        "paid_with_points",
    )
)
# Why a rule did not apply (``rules[].reason``), by code: a sentence for people.
REASONS = {
    "channel": "The sale's channel is not one the rule names.",
    "payment_method": "The payment method is not one the rule names.",
    "pickup": "The rule asks for pickup, or for no pickup.",
    "outside_dates": "The receipt's date is outside the rule's dates.",
    "weekday": "The rule does not run on this day of the week.",
    "outside_hours": "The receipt's time is outside the rule's hours.",
    "holiday": "The rule runs only on holidays, or never on them.",
    "no_card": "The rule needs a loyalty card.",
    "card_inactive": "The card is not active.",
    "tier": "The card's tier is not one the rule names.",
    "segment": "The customer is in none of the rule's segments.",
    "not_birthday": "It is not the customer's birthday window.",
    "purchase_number": "This purchase is not one the rule counts (the first, every n-th).",
    "promo_code_missing": "The rule needs a promo code the receipt does not carry.",
    "below_threshold": "The receipt is below the rule's threshold.",
    "budget_exhausted": "The campaign's budget is used up.",
    "no_matching_lines": "No line of the receipt is one the rule targets.",
    "below_quantity": "Too few units for the rule.",
    "blocked_by_exclusive": "An exclusive rule applied before it.",
    "already_discounted": "The lines were discounted already.",
    "at_floor": "The lines are at their minimum price.",
    "zero_amount": "It would give nothing here.",
    "beaten_in_group": "A better rule of its group applied.",
    "no_personal_discount": "The card has no personal discount.",
    "points_cap": "The cap on points is reached.",
    "uses_exhausted": "The rule's use cap is reached.",
    "requires_not_met": "The receipt lacks the goods the rule requires.",
    "not_enough_stamps": "The card has not collected the stamps for a free item yet.",
}
# Words a message names: card statuses.
WORDS = ("active", "blocked", "inactive")


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(language: str) -> dict[str, str]:
    """The language's translations, message id to text (English: none needed)."""
    if language == "en":
        return {}
    with (_LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        return {m.id: m.string for m in read_po(po) if m.id and m.string}  # type: ignore[misc]


def gettext(language: str, message: str) -> str:
    return catalogue(language).get(message, message)


def cashier_text(language: str, code: str, params: tuple[tuple[str, str | int], ...]) -> str:
    """A cashier's message in ``language``, its words (a card status) translated too."""
    values = {name: gettext(language, v) if isinstance(v, str) else v for name, v in params}
    return gettext(language, CASHIER[code]).format(**values)


@lru_cache(maxsize=256)
def negotiate(accept_language: str | None, default: str) -> str:
    """The language of ``Accept-Language`` (``ru-RU,ru;q=0.9,en;q=0.8``) we speak, the
    default where it names none of them."""
    if not accept_language:
        return default
    weighted = []
    for part in accept_language.split(","):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weighted.append((float(quality) if quality else 1.0, tag.strip()))
        except ValueError:
            continue
    preferred = [tag for q, tag in sorted(weighted, key=lambda w: -w[0]) if q > 0 and tag]
    chosen = Locale.negotiate(preferred, list(LANGUAGES), sep="-")
    return chosen.language if chosen is not None else default


def error_text(language: str, code: str, detail: str) -> str:
    """An error's text for people: the English ``detail`` as it is, else the code's
    sentence in ``language`` (the detail where the code has none)."""
    if language == "en" or code not in ERRORS:
        return detail
    return gettext(language, ERRORS[code])


def column_header(language: str, column: str) -> str:
    """A report column's header for people in ``language`` (its name where it has none)."""
    header = COLUMNS.get(column)
    return column if header is None else gettext(language, header)


def money_text(language: str, kopecks: int) -> str:
    """Kopecks as roubles the way ``language`` writes them: 73,215.00 or 73 215,00 (Babel)."""
    return format_decimal(Decimal(kopecks).scaleb(-2), format="#,##0.00", locale=language)


def reason_text(language: str, reason: str | None) -> str | None:
    """Why a rule did not apply, for people, in ``language`` (None: it applied)."""
    if reason is None:
        return None
    text = REASONS.get(reason)
    return reason if text is None else gettext(language, text)
