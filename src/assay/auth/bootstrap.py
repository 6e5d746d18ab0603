"""First start: the store's first admin, with a one-time password."""

from __future__ import annotations

from sqlalchemy import func, select

from assay.auth.service import set_password


def initialise(store, admin: str = "admin", *, display_name: str = "Administrator") -> str | None:
    """Create the first admin of an empty store and return its one-time password.

    Returns None (and changes nothing) when the store has users already. The
    password must be changed at first sign-in; only its Argon2id hash is kept.
    """
    from assay.registry import add_user
    from assay.registry.tables import User

    with store.transaction() as s:
        if s.scalar(select(func.count()).select_from(User)):
            return None
        user = add_user(s, None, admin, display_name=display_name, roles=["admin"])
        return set_password(s, user, user.username, None, one_time=True)
