"""A customer's phone and e-mail as people type them, normalised by well-kept libraries
(phonenumbers, email-validator): ``8 900 123-45-67``, ``+7 (900) 123-45-67`` and
``9001234567`` are one phone, ``+79001234567`` (E.164), so a customer is found by any of
them (SPEC §3.2, §12)."""

from __future__ import annotations

import email_validator
import phonenumbers

# Where a number is written without its country code (``8 900 ...``, ``900 ...``): the
# chains this serves are Russian (SPEC §12).
DEFAULT_REGION = "RU"


def normalize_phone(text: str, region: str = DEFAULT_REGION) -> str:
    """``text`` as an E.164 number; ``ValueError`` if it is not a possible, valid number."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(text: str) -> str:
    """``text`` as the e-mail address it names, its domain lower-cased (no DNS lookup);
    ``ValueError`` if it is not one."""
    try:
        return str(
            email_validator.validate_email(text.strip(), check_deliverability=False).normalized
        ).lower()
    except email_validator.EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
