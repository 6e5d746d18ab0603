"""Errors of authentication (who are you?) and login throttling."""

from __future__ import annotations

from assay.errors import AssayError


class AuthenticationError(AssayError):
    """Missing, malformed, unknown, expired or revoked credentials (HTTP 401)."""

    code = "unauthenticated"


class TooManyAttempts(AssayError):
    """Too many failed sign-ins for a user name or address (HTTP 429)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: dict | None = None) -> None:
        super().__init__(message, details={"retry_after_seconds": retry_after, **(details or {})})
        self.retry_after = retry_after


class PasswordChangeRequired(AssayError):
    """Signed in with a one-time password: choose a new one first (HTTP 403)."""

    code = "password_change_required"
