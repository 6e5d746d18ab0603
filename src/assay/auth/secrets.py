"""Hashing of passwords, API tokens and session identifiers.

- Passwords are hashed with Argon2id (argon2-cffi defaults, RFC 9106 low-memory
  profile); the hash string carries its own salt and parameters, so stronger
  parameters later only need :func:`password_needs_rehash`.
- API tokens look like ``assay_<key id>_<secret>``. The key id is public and
  indexes the row; only ``sha256(salt || secret)`` is stored, with a random
  per-token salt. The secret has 256 bits of entropy, so a fast salted hash is
  enough (a slow hash on every API request would only cost latency).
- Browser session ids are random 256-bit values; only their SHA-256 is stored,
  so a copy of the database does not hand out live sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_PREFIX = "assay"
_hasher = PasswordHasher()

# A hash of a random password, verified when the user is unknown so that an
# unknown user name and a wrong password take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; never raises for a wrong or missing hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def generate_password(nbytes: int = 18) -> str:
    """A random one-time password (URL-safe, 24 characters for 18 bytes)."""
    return secrets.token_urlsafe(nbytes)


def new_token() -> tuple[str, str, str]:
    """A new API token: ``(key_id, secret, full token shown once)``."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{TOKEN_PREFIX}_{key_id}_{secret}"


def split_token(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed token, else None."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1], parts[2]


def new_salt() -> str:
    return secrets.token_hex(16)


def hash_token_secret(salt: str, secret: str) -> str:
    return hashlib.sha256((salt + secret).encode()).hexdigest()


def token_secret_matches(salt: str, stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(hash_token_secret(salt, secret), stored_hash)


def new_session_id() -> tuple[str, str]:
    """A new browser session: ``(raw id for the cookie, stored digest)``."""
    raw = secrets.token_urlsafe(32)
    return raw, session_digest(raw)


def session_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)
