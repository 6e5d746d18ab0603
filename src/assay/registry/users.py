"""Users and their roles: who may act in the governance plane.

Every function takes the session and the acting :class:`User`, checks the
actor's rights, writes, and appends an audit event in the same transaction.
None of them commits: the caller owns the transaction (``store.transaction()``),
so an operation is recorded whole, with its audit event, or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from assay.registry import roles as R
from assay.registry.tables import User, UserRole
from assay.store.audit import append_event
from assay.store.db import utcnow

__all__ = [
    "add_user",
    "get_user",
    "grant_role",
    "list_users",
    "require_role",
    "revoke_role",
    "set_user_active",
]

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,99}$")


def get_user(session: Session, username: str, *, allow_inactive: bool = False) -> User:
    """The user called ``username``; NotFoundError if unknown.

    A deactivated user cannot act: PermissionDenied unless ``allow_inactive``.
    """
    name = (username or "").strip().lower()
    user = session.scalars(select(User).where(User.username == name)).first()
    if user is None:
        raise NotFoundError(f"unknown user '{username}' (see `assay user list`)")
    if not user.active and not allow_inactive:
        raise PermissionDenied(f"user '{user.username}' is deactivated")
    return user


def list_users(session: Session, *, include_inactive: bool = True) -> list[User]:
    stmt = select(User).order_by(User.username)
    if not include_inactive:
        stmt = stmt.where(User.active.is_(True))
    return list(session.scalars(stmt))


def require_role(user: User, *roles: str, action: str | None = None) -> None:
    """PermissionDenied unless ``user`` holds at least one of ``roles``."""
    if not user.active:
        raise PermissionDenied(f"user '{user.username}' is deactivated")
    if user.roles & set(roles):
        return
    what = action or "do this"
    held = ", ".join(sorted(user.roles)) or "no roles"
    raise PermissionDenied(f"user '{user.username}' ({held}) may not {what}: "
                           f"needs one of {', '.join(roles)}")


def _check_roles(roles: Iterable[str]) -> list[str]:
    out = []
    for role in roles:
        r = str(role).strip().lower()
        if r not in R.ROLES:
            raise InputError(f"unknown role '{role}': expected one of {', '.join(R.ROLES)}")
        if r not in out:
            out.append(r)
    return out


def add_user(session: Session, actor: User | None, username: str, *, display_name: str = "",
             email: str | None = None, roles: Iterable[str] = ()) -> User:
    """Create a user with roles (admin only).

    The very first user of a store may be created with ``actor=None``; it is
    made an admin so that someone can manage the others.
    """
    name = (username or "").strip().lower()
    if not _USERNAME.match(name):
        raise InputError(f"user name '{username}': expected 1-100 characters of a-z, 0-9, "
                         "'.', '_', '-', '@', starting with a letter or digit")
    if name in R.SERVICE_ACTORS:
        raise InputError(f"user name '{name}' is reserved: the service records its own "
                         "scheduled work under it in the audit trail")
    role_list = _check_roles(roles)
    if actor is None:
        if session.scalar(select(func.count()).select_from(User)):
            raise PermissionDenied("only an admin can add users once the first one exists")
        others = [r for r in role_list if r not in (R.ADMIN, R.AUDITOR)]
        if others:
            raise PermissionDenied(
                f"the first user '{name}' becomes the admin and cannot give themself the "
                f"role(s) {', '.join(others)}: nobody grants themself a role that signs "
                "decisions; add the people who sign (or a second admin to grant them) "
                "with --as " + name)
        if R.ADMIN not in role_list:
            role_list.append(R.ADMIN)
        actor_name = name
    else:
        require_role(actor, R.ADMIN, action="add users")
        actor_name = actor.username
    if email is not None and email and "@" not in email:
        raise InputError(f"email '{email}': expected an address like name@example.org")
    if session.scalars(select(User.id).where(User.username == name)).first() is not None:
        raise ConflictError(f"user '{name}' already exists")
    now = utcnow()
    user = User(username=name, display_name=display_name or name, email=email or None,
                active=True, created_at=now)
    user.role_rows = [UserRole(role=r, granted_at=now, granted_by=actor_name) for r in role_list]
    session.add(user)
    session.flush()
    append_event(session, actor=actor_name, action="user.add", subject_type="user",
                 subject_id=name, payload={"display_name": user.display_name,
                                           "email": user.email, "roles": sorted(role_list)})
    return user


def _admins(session: Session) -> int:
    return session.scalar(
        select(func.count()).select_from(UserRole).join(User)
        .where(UserRole.role == R.ADMIN, User.active.is_(True))
    ) or 0


def grant_role(session: Session, actor: User, username: str, role: str) -> User:
    """Give ``username`` a role (admin only). Granting a held role is a no-op.

    Nobody grants a role to themself (separation of duties: an admin who could
    give themself every signing role could approve a model alone); another
    admin must do it. The audit event names the admin who granted it.
    """
    require_role(actor, R.ADMIN, action="grant roles")
    (r,) = _check_roles([role])
    user = get_user(session, username, allow_inactive=True)
    if r in user.roles:
        return user
    if user.id == actor.id:
        raise PermissionDenied(
            f"user '{actor.username}' may not grant themself the role '{r}': separation of "
            "duties; another admin must grant it")
    user.role_rows.append(UserRole(role=r, granted_at=utcnow(), granted_by=actor.username))
    session.flush()
    append_event(session, actor=actor, action="user.role_grant", subject_type="user",
                 subject_id=user.username,
                 payload={"role": r, "roles": sorted(user.roles), "granted_by": actor.username})
    return user


def revoke_role(session: Session, actor: User, username: str, role: str) -> User:
    """Take a role from ``username`` (admin only); the last admin keeps theirs."""
    require_role(actor, R.ADMIN, action="revoke roles")
    (r,) = _check_roles([role])
    user = get_user(session, username, allow_inactive=True)
    if r not in user.roles:
        raise ConflictError(f"user '{user.username}' does not hold role '{r}'")
    if r == R.ADMIN and user.active and _admins(session) <= 1:
        raise ConflictError(f"user '{user.username}' is the last admin; grant admin to "
                            "someone else first")
    user.role_rows = [row for row in user.role_rows if row.role != r]
    session.flush()
    append_event(session, actor=actor, action="user.role_revoke", subject_type="user",
                 subject_id=user.username, payload={"role": r, "roles": sorted(user.roles)})
    return user


def set_user_active(session: Session, actor: User, username: str, active: bool) -> User:
    """Activate or deactivate a user (admin only). Deactivated users cannot act."""
    require_role(actor, R.ADMIN, action="activate or deactivate users")
    user = get_user(session, username, allow_inactive=True)
    if user.active == active:
        return user
    if not active and R.ADMIN in user.roles and _admins(session) <= 1:
        raise ConflictError(f"user '{user.username}' is the last admin and cannot be "
                            "deactivated")
    user.active = active
    session.flush()
    append_event(session, actor=actor, action="user.activate" if active else "user.deactivate",
                 subject_type="user", subject_id=user.username, payload={"active": active})
    return user
