"""Authentication and credential management: the domain functions.

Like every domain function of assay, these take a ``Session`` and never
commit; the CLI or the REST service owns the transaction. Changes to
credentials (passwords set, tokens created or revoked) are written to the
audit trail with the acting user; the secrets themselves never are.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from assay.auth import secrets as sec
from assay.auth.errors import AuthenticationError, TooManyAttempts
from assay.auth.tables import ApiToken, Credential, LoginAttempt, WebSession
from assay.errors import InputError, NotFoundError, PermissionDenied
from assay.registry import get_user
from assay.registry.roles import ADMIN
from assay.store.audit import append_event

#: Sign-in throttling. Failures count per (user name, client address): after
#: ``MAX_FAILURES_PER_USER`` of them since that pair's last success, each further attempt
#: of the pair waits ``BACKOFF_START`` doubled per failure, up to ``BACKOFF_MAX``. So a
#: guesser slows down exponentially, while the same user from another address (the real
#: person) is not locked out by someone else's failures. An address that fails
#: ``MAX_FAILURES_PER_CLIENT`` times in ``FAILURE_WINDOW`` (over any user names) waits
#: until the oldest of those failures leaves the window.
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_CLIENT = 30
FAILURE_WINDOW = timedelta(minutes=15)
BACKOFF_START = timedelta(seconds=30)
BACKOFF_MAX = timedelta(minutes=15)
#: Failures older than this no longer count towards a pair's back-off.
PAIR_MEMORY = FAILURE_WINDOW * 4
MIN_PASSWORD_LENGTH = 12
MAX_TOKEN_DAYS = 730


def now_utc() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def _is_admin(user) -> bool:
    return ADMIN in user.roles


def _lookup_user(session: Session, username: str):
    try:
        return get_user(session, username, allow_inactive=True)
    except NotFoundError:
        return None


def _user_by_id(session: Session, user_id: int):
    from assay.registry.tables import User

    return session.get(User, user_id)


# -- passwords ---------------------------------------------------------------

def check_password_strength(password: str, username: str = "") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"password: expected at least {MIN_PASSWORD_LENGTH} characters, "
                         f"got {len(password)}")
    if username and password.lower() == username.lower():
        raise InputError("password: must not be the user name")


def set_password(session: Session, actor, username: str, password: str | None = None, *,
                 one_time: bool | None = None) -> str:
    """Set ``username``'s password; an admin may set anyone's, a user only their own.

    Without ``password`` a random one-time password is generated and returned
    (the caller shows it once); one-time passwords must be changed at first
    sign-in. Returns the password that was set.
    """
    user = get_user(session, username)
    if actor.id != user.id and not _is_admin(actor):
        raise PermissionDenied(f"user '{actor.username}' may not set the password of "
                               f"'{user.username}' (needs role '{ADMIN}')")
    generated = password is None
    if password is None:
        password = sec.generate_password()
    else:
        check_password_strength(password, user.username)
    if one_time is None:
        one_time = generated or actor.id != user.id
    cred = session.get(Credential, user.id)
    if cred is None:
        cred = Credential(user_id=user.id, password_hash="", must_change=False,
                          updated_at=now_utc())
        session.add(cred)
    cred.password_hash = sec.hash_password(password)
    cred.must_change = bool(one_time)
    cred.updated_at = now_utc()
    session.flush()
    append_event(session, actor=actor.username, action="auth.password_set", subject_type="user",
                 subject_id=user.username, payload={"one_time": bool(one_time)})
    return password


def change_own_password(session: Session, user, current: str | None, new: str | None, *,
                        keep_session: str | None = None) -> None:
    """A signed-in user replaces their password, proving they know the current one.

    Whoever holds a stolen token or an open browser must not be able to take the
    account over: the current password is always required, and every other browser
    session of the user ends (``keep_session``: the cookie of the session making the
    change, which stays signed in)."""
    if not current:
        raise InputError("current password: required to change your own password")
    if not new:
        raise InputError("new password: required")
    cred = session.get(Credential, user.id)
    if cred is None or not sec.verify_password(cred.password_hash, current):
        raise InputError("current password: does not match")
    if current == new:
        raise InputError("new password: must differ from the current one")
    set_password(session, user, user.username, new, one_time=False)
    close_sessions_of(session, user, keep=keep_session)


def reset_password(session: Session, actor, username: str, password: str | None = None, *,
                   current: str | None = None, keep_session: str | None = None) -> str | None:
    """Change ``username``'s password, by the rules for who may.

    For oneself: :func:`change_own_password` (the current password is required).
    For someone else: admins only; the new password (a random one when none is
    given, which is returned) is one-time, and every browser session of that user
    ends. Returns the generated password, or None."""
    user = get_user(session, username)
    if user.id == actor.id:
        change_own_password(session, actor, current, password, keep_session=keep_session)
        return None
    given = password is not None
    chosen = set_password(session, actor, user.username, password)
    close_sessions_of(session, user)
    return None if given else chosen


def has_password(session: Session, user) -> bool:
    """Whether ``user`` has a web password at all."""
    return session.get(Credential, user.id) is not None


def password_must_change(session: Session, user) -> bool:
    cred = session.get(Credential, user.id)
    return bool(cred and cred.must_change)


def _failures_since(session: Session, column, value: str,
                    since: datetime) -> tuple[int, datetime | None]:
    row = session.execute(
        select(func.count(), func.min(LoginAttempt.at)).where(
            column == value, LoginAttempt.success.is_(False), LoginAttempt.at >= since
        )
    ).one()
    return int(row[0]), aware(row[1])


def backoff(failures: int) -> timedelta:
    """How long a (user name, address) pair waits after ``failures`` failures in a row."""
    if failures < MAX_FAILURES_PER_USER:
        return timedelta(0)
    steps = min(failures - MAX_FAILURES_PER_USER, 16)
    return min(BACKOFF_START * (2 ** steps), BACKOFF_MAX)


def _pair_failures(session: Session, username: str, client: str,
                   now: datetime) -> tuple[int, datetime | None]:
    """Failures of one (user name, address) pair since its last success (and within
    :data:`PAIR_MEMORY`), with the time of the newest."""
    pair = (LoginAttempt.username == username, LoginAttempt.client == client)
    since = now - PAIR_MEMORY
    last_ok = aware(session.scalar(select(func.max(LoginAttempt.at)).where(
        *pair, LoginAttempt.success.is_(True), LoginAttempt.at >= since)))
    row = session.execute(select(func.count(), func.max(LoginAttempt.at)).where(
        *pair, LoginAttempt.success.is_(False),
        LoginAttempt.at > last_ok if last_ok else LoginAttempt.at >= since)).one()
    return int(row[0]), aware(row[1])


def _seconds(delta: timedelta) -> int:
    return max(int(delta.total_seconds() + 0.999), 1)


def check_login_allowed(session: Session, username: str, client: str,
                        now: datetime | None = None) -> None:
    """Raise :class:`TooManyAttempts` (saying when to retry) while this user name from
    this address, or this address, is throttled."""
    now = now or now_utc()
    count, newest = _pair_failures(session, username.lower()[:200], client[:100], now)
    wait = backoff(count)
    if wait and newest is not None and newest + wait > now:
        retry = _seconds(newest + wait - now)
        raise TooManyAttempts(
            f"too many failed sign-ins for this user name from this address; try again in "
            f"{retry} seconds", retry_after=retry)
    count, oldest = _failures_since(session, LoginAttempt.client, client[:100],
                                    now - FAILURE_WINDOW)
    if count >= MAX_FAILURES_PER_CLIENT:
        retry = _seconds((oldest or now) + FAILURE_WINDOW - now)
        raise TooManyAttempts(f"too many failed sign-ins from this address; try again in "
                              f"{retry} seconds", retry_after=retry)


def authenticate_password(session: Session, username: str, password: str, *, client: str,
                          now: datetime | None = None):
    """The user whose name and password match, or None; the attempt is recorded.

    Raises :class:`TooManyAttempts` (without checking the password) while
    throttled. The caller must commit even when None is returned, so that
    failures count.
    """
    now = now or now_utc()
    username = username.strip()
    check_login_allowed(session, username, client, now)
    user = _lookup_user(session, username) if username else None
    cred = session.get(Credential, user.id) if user is not None else None
    ok = sec.verify_password(cred.password_hash if cred else None, password)
    ok = ok and user is not None and bool(getattr(user, "active", True))
    session.add(LoginAttempt(username=username.lower()[:200], client=client[:100], at=now,
                             success=ok))
    if ok and cred is not None and sec.password_needs_rehash(cred.password_hash):
        cred.password_hash = sec.hash_password(password)
    session.flush()
    return user if ok else None


def prune_login_attempts(session: Session, now: datetime | None = None) -> int:
    """Forget attempts older than the throttling window; returns how many."""
    cutoff = (now or now_utc()) - max(FAILURE_WINDOW, PAIR_MEMORY)
    res = session.execute(delete(LoginAttempt).where(LoginAttempt.at < cutoff))
    return int(res.rowcount or 0)


# -- API tokens --------------------------------------------------------------

def create_token(session: Session, actor, username: str, name: str, *,
                 expires_in_days: int | None = 90) -> tuple[ApiToken, str]:
    """A new API token for ``username``; returns the row and the token, shown once.

    Admins create tokens for anyone; other users only for themselves.
    ``expires_in_days=None`` makes a token that never expires (admins only).
    """
    user = get_user(session, username)
    if actor.id != user.id and not _is_admin(actor):
        raise PermissionDenied(f"user '{actor.username}' may not create tokens for "
                               f"'{user.username}' (needs role '{ADMIN}')")
    name = name.strip()
    if not name or len(name) > 200:
        raise InputError("token name: expected 1 to 200 characters")
    if expires_in_days is None:
        if not _is_admin(actor):
            raise PermissionDenied("only an admin may create a token that never expires")
        expires_at = None
    else:
        if not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise InputError(f"expires_in_days: expected 1 to {MAX_TOKEN_DAYS}, "
                             f"got {expires_in_days}")
        expires_at = now_utc() + timedelta(days=expires_in_days)
    key_id, secret, token = sec.new_token()
    salt = sec.new_salt()
    row = ApiToken(key_id=key_id, user_id=user.id, name=name, salt=salt,
                   secret_hash=sec.hash_token_secret(salt, secret), created_at=now_utc(),
                   created_by=actor.id, expires_at=expires_at)
    session.add(row)
    session.flush()
    append_event(session, actor=actor.username, action="auth.token_created",
                 subject_type="user", subject_id=user.username,
                 payload={"key_id": key_id, "name": name,
                          "expires_at": expires_at.isoformat() if expires_at else None})
    return row, token


def get_token(session: Session, key_id: str) -> ApiToken:
    row = session.execute(select(ApiToken).where(ApiToken.key_id == key_id)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"token '{key_id}': no such token")
    return row


def revoke_token(session: Session, actor, key_id: str) -> ApiToken:
    """Revoke a token now; admins revoke any token, users their own."""
    row = get_token(session, key_id)
    if row.user_id != actor.id and not _is_admin(actor):
        raise PermissionDenied(f"user '{actor.username}' may not revoke token '{key_id}' "
                               f"(needs role '{ADMIN}')")
    if row.revoked_at is None:
        row.revoked_at = now_utc()
        owner = _user_by_id(session, row.user_id)
        session.flush()
        append_event(session, actor=actor.username, action="auth.token_revoked",
                     subject_type="user", subject_id=owner.username if owner else str(row.user_id),
                     payload={"key_id": key_id, "name": row.name})
    return row


def list_tokens(session: Session, actor, username: str | None = None) -> list[ApiToken]:
    """Tokens of ``username`` (default: the actor); every user's for admins with ``"*"``."""
    stmt = select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)
    if username == "*":
        if not _is_admin(actor):
            raise PermissionDenied(f"user '{actor.username}' may not list every token "
                                   f"(needs role '{ADMIN}')")
    else:
        user = get_user(session, username) if username else actor
        if user.id != actor.id and not _is_admin(actor):
            raise PermissionDenied(f"user '{actor.username}' may not list the tokens of "
                                   f"'{user.username}' (needs role '{ADMIN}')")
        stmt = stmt.where(ApiToken.user_id == user.id)
    return list(session.execute(stmt).scalars())


def token_state(row: ApiToken, now: datetime | None = None) -> str:
    now = now or now_utc()
    if row.revoked_at is not None:
        return "revoked"
    exp = aware(row.expires_at)
    if exp is not None and exp <= now:
        return "expired"
    return "active"


def user_for_token(session: Session, token: str, *, touch: bool = True):
    """The active user a bearer token belongs to, or :class:`AuthenticationError`."""
    parts = sec.split_token(token)
    if parts is None:
        raise AuthenticationError("bearer token: malformed (expected 'assay_<id>_<secret>')")
    key_id, secret = parts
    row = session.execute(select(ApiToken).where(ApiToken.key_id == key_id)).scalar_one_or_none()
    if row is None or not sec.token_secret_matches(row.salt, row.secret_hash, secret):
        raise AuthenticationError("bearer token: unknown or wrong")
    state = token_state(row)
    if state != "active":
        raise AuthenticationError(f"bearer token '{key_id}': {state}")
    user = _user_by_id(session, row.user_id)
    if user is None or not getattr(user, "active", True):
        raise AuthenticationError(f"bearer token '{key_id}': its user is deactivated")
    if touch:
        last = aware(row.last_used_at)
        now = now_utc()
        if last is None or now - last > timedelta(minutes=5):
            row.last_used_at = now
    return user


# -- browser sessions --------------------------------------------------------

def open_session(session: Session, user, *, client: str = "",
                 lifetime: timedelta = timedelta(hours=8)) -> tuple[str, WebSession]:
    """A new browser session for ``user``: ``(cookie value, row)``."""
    raw, digest = sec.new_session_id()
    now = now_utc()
    # Housekeeping on each sign-in: forget expired sessions and old attempts.
    session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    prune_login_attempts(session, now)
    row = WebSession(id_digest=digest, user_id=user.id, csrf_token=sec.new_csrf_token(),
                     created_at=now, expires_at=now + lifetime, client=client[:100] or None)
    session.add(row)
    session.flush()
    return raw, row


def session_user(session: Session, raw: str):
    """``(user, session row)`` of a live session cookie, or :class:`AuthenticationError`."""
    if not raw or len(raw) > 200:
        raise AuthenticationError("session: missing or malformed")
    row = session.get(WebSession, sec.session_digest(raw))
    if row is None or aware(row.expires_at) <= now_utc():
        raise AuthenticationError("session: expired or signed out; sign in again")
    user = _user_by_id(session, row.user_id)
    if user is None or not getattr(user, "active", True):
        raise AuthenticationError("session: the user is deactivated")
    return user, row


def close_session(session: Session, raw: str) -> None:
    if raw and len(raw) <= 200:
        session.execute(delete(WebSession).where(WebSession.id_digest == sec.session_digest(raw)))


def close_sessions_of(session: Session, user, *, keep: str | None = None) -> None:
    """End every browser session of ``user`` (but the one whose cookie is ``keep``)."""
    stmt = delete(WebSession).where(WebSession.user_id == user.id)
    if keep and len(keep) <= 200:
        stmt = stmt.where(WebSession.id_digest != sec.session_digest(keep))
    session.execute(stmt)


def usernames(session: Session, ids: set[int]) -> dict[int, str]:
    """User names by id (for listing tokens)."""
    from assay.registry.tables import User

    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())
