"""Channel secrets (a webhook's HMAC key, an SMTP password), encrypted at rest.

Secrets are encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from
``cryptography``) under a key that is never in the database:
``ASSAY_SECRET_KEY`` when set (a Fernet key, or any passphrase, which is
hashed into one), else the file ``ASSAY_HOME/secret.key``, created on first
use with mode 0600. A copy of the database alone does not reveal them, and
no list, show or API answer returns them (only whether one is set).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from assay.errors import InputError

KEY_ENV = "ASSAY_SECRET_KEY"
KEY_FILE = "secret.key"


def _fernet(settings: Any) -> Fernet:
    given = os.environ.get(KEY_ENV, "").strip()
    if given:
        try:
            return Fernet(given.encode())
        except ValueError:
            return Fernet(base64.urlsafe_b64encode(hashlib.sha256(given.encode()).digest()))
    path = Path(settings.home) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
    try:
        return Fernet(path.read_bytes().strip())
    except ValueError:
        raise InputError(f"{path}: not a secret key (expected 44 characters of URL-safe "
                         f"base64, as written by assay); set {KEY_ENV} or restore the "
                         "file") from None


def seal(settings: Any, secret: str) -> str:
    """``secret`` encrypted for the store."""
    return _fernet(settings).encrypt(secret.encode()).decode()


def unseal(settings: Any, sealed: str) -> str:
    """The secret a channel stores, decrypted."""
    try:
        return _fernet(settings).decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise InputError(f"the channel's secret cannot be decrypted with this key: "
                         f"{KEY_ENV} or ASSAY_HOME/{KEY_FILE} changed since it was set; set "
                         "the secret again (assay channel update NAME --secret-env VAR)"
                         ) from None
