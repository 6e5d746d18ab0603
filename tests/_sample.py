"""A store filled with the API's sample history, for tests that start the real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from argon2 import PasswordHasher, profiles

from assay.api.sample import populate
from assay.config import Settings
from assay.store import Store, open_store


def sample_store(home: Path, *, password: str, **populate_args: Any) -> tuple[Store, str]:
    """Open a SQLite store under ``home`` and fill it with :func:`populate` (its users'
    passwords hashed with Argon2's cheapest profile, so the set-up stays fast); returns
    the store and its database URL."""
    import assay.auth.secrets as sec

    url = f"sqlite:///{home / 'assay.db'}"
    store = open_store(Settings(home=home, database_url=url))
    saved = sec._hasher
    sec._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    try:
        populate(store, password=password, **populate_args)
    finally:
        sec._hasher = saved
    return store, url
