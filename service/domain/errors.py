"""The one tree of domain errors.

Every error the service raises on purpose is a ``DomainError``; each carries a
stable machine-readable ``code`` (part of the API contract) and a human message.
Errors know nothing of HTTP: ``service.api.errors`` holds the one table that maps
each class to a status code.

    DomainError
    ├── InvalidInput              malformed or inconsistent input
    │   ├── ProgramInvalid        a program document that fails validation
    │   └── QuantityExceeded      returning more than was sold
    ├── AuthError
    │   ├── Unauthenticated       no key or an unknown key
    │   └── Forbidden             a key acting outside its rights (another store)
    ├── NotFound                  unknown card, store, sale, calculation...
    ├── Conflict                  the request contradicts recorded state
    │   ├── IdempotencyConflict   same id, different payload
    │   └── InsufficientPoints    redemption no longer covered by the balance
    └── Unavailable               a dependency is down; retry later
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """Base of every error the service raises on purpose."""

    code: str = "error"

    def __init__(
        self, message: str, *, code: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra: dict[str, Any] = dict(extra or {})


class InvalidInput(DomainError):
    code = "invalid_input"


class ProgramInvalid(InvalidInput):
    """A program document that fails validation; ``errors`` names each field and why."""

    code = "program_invalid"

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message, extra={"errors": errors})
        self.errors = errors


class QuantityExceeded(InvalidInput):
    code = "quantity_exceeded"


class AuthError(DomainError):
    code = "auth_error"


class Unauthenticated(AuthError):
    code = "unauthenticated"


class Forbidden(AuthError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class InsufficientPoints(Conflict):
    code = "insufficient_points"


class Unavailable(DomainError):
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(message, code=code, extra={"retry_after": retry_after})
        self.retry_after = retry_after


def invalid_field(field: str, message: str, *, code: str = "invalid_input") -> InvalidInput:
    """Bad input found past the schema (an unknown region, a taken phone): names the field
    as request validation does."""
    return InvalidInput(
        f"{field}: {message}", code=code, extra={"fields": [{"field": field, "message": message}]}
    )
