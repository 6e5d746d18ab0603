"""Channels: the SMTP servers and webhook URLs notifications go out through.

Only an admin adds, changes, tests or removes a channel; every change is an
audit event (``notify.channel_add``, ``notify.channel_update``,
``notify.channel_remove``) that never holds the secret. A channel's secret
(the webhook's HMAC key, the SMTP password) is encrypted at rest
(:mod:`assay.notify.secrets`) and no function here returns it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from assay.errors import ConflictError, InputError, NotFoundError
from assay.notify.roles import CHANNEL_ADMINS
from assay.notify.secrets import seal
from assay.notify.tables import CHANNEL_KINDS, NotifyChannel, NotifyDelivery
from assay.registry import require_role
from assay.registry.tables import User, _iso
from assay.store.audit import append_event
from assay.store.db import utcnow

#: Event kinds assay sends. A channel subscribes with ``*``, a kind, or ``prefix.*``.
EVENT_KINDS: tuple[str, ...] = ("monitor.alert", "approval.awaiting", "channel.test",
                                 "incident.opened", "incident.overdue")
#: What an e-mail channel's configuration holds (``port`` defaults to 25).
EMAIL_KEYS = ("host", "port", "sender", "starttls", "username", "to")
WEBHOOK_KEYS = ("url",)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
MAX_ATTEMPTS = 50
MAX_BACKOFF = 86_400


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InputError(f"channel name {name!r}: expected 1 to 100 letters, digits, '.', "
                         "'_' or '-', starting with a letter or digit")
    return name


def check_events(events: Iterable[str]) -> list[str]:
    """The event kinds a channel takes: ``*``, a kind of :data:`EVENT_KINDS`, or ``prefix.*``."""
    out: list[str] = []
    for e in events:
        e = str(e).strip()
        if e == "*" or e in EVENT_KINDS or (
                e.endswith(".*") and any(k.startswith(e[:-1]) for k in EVENT_KINDS)):
            if e not in out:
                out.append(e)
            continue
        raise InputError(f"event kind {e!r}: expected '*', one of {', '.join(EVENT_KINDS)}, "
                         "or a prefix such as 'monitor.*'")
    if not out:
        raise InputError("events: name at least one event kind ('*' for every kind)")
    return out


def takes(channel: NotifyChannel, event_kind: str) -> bool:
    """Whether ``channel`` subscribes to ``event_kind``."""
    for e in channel.events or ():
        if e == "*" or e == event_kind or (e.endswith(".*") and event_kind.startswith(e[:-1])):
            return True
    return False


def check_email(address: str, where: str) -> str:
    address = str(address).strip()
    if not EMAIL.match(address) or len(address) > 320:
        raise InputError(f"{where}: {address!r} is not an e-mail address (name@domain)")
    return address


def check_config(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """A channel's configuration, validated for its kind (unknown keys are refused)."""
    if kind not in CHANNEL_KINDS:
        raise InputError(f"channel kind {kind!r}: expected one of {', '.join(CHANNEL_KINDS)}")
    allowed = EMAIL_KEYS if kind == "email" else WEBHOOK_KEYS
    extra = sorted(k for k in config if k not in allowed)
    if extra:
        raise InputError(f"{kind} channel: unknown setting '{extra[0]}' (expected "
                         + ", ".join(allowed) + ")")
    out = {k: v for k, v in config.items() if v is not None}
    if kind == "webhook":
        url = str(out.get("url") or "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"webhook url {url!r}: expected an http:// or https:// URL with "
                             "a host")
        return {"url": url}
    host = str(out.get("host") or "").strip()
    if not host or any(c.isspace() for c in host):
        raise InputError("email channel: 'host' (the SMTP server) is required")
    try:
        port = int(out.get("port", 25))
    except (TypeError, ValueError):
        raise InputError(f"email channel: port {out.get('port')!r}: expected a number") from None
    if not 1 <= port <= 65535:
        raise InputError(f"email channel: port {port}: expected 1 to 65535")
    sender = check_email(out.get("sender") or "", "email channel: sender")
    to = out.get("to") or []
    if isinstance(to, str):
        to = [t for t in to.split(",") if t.strip()]
    res: dict[str, Any] = {"host": host, "port": port, "sender": sender,
                           "starttls": bool(out.get("starttls", False)),
                           "to": [check_email(t, "email channel: to") for t in to]}
    if out.get("username"):
        res["username"] = str(out["username"])
    return res


def _limits(max_attempts: int, backoff_seconds: int) -> None:
    if not 1 <= int(max_attempts) <= MAX_ATTEMPTS:
        raise InputError(f"max attempts {max_attempts}: expected 1 to {MAX_ATTEMPTS}")
    if not 0 <= int(backoff_seconds) <= MAX_BACKOFF:
        raise InputError(f"back-off {backoff_seconds} s: expected 0 to {MAX_BACKOFF} seconds")


def _settings(session: Session) -> Any:
    found = session.info.get("settings")
    if found is None:
        from assay.config import load_settings

        found = load_settings()
    return found


def _secret(session: Session, kind: str, secret: str | None) -> str | None:
    if secret is None or secret == "":
        return None
    if kind == "webhook" and len(secret) < 16:
        raise InputError("webhook secret: expected at least 16 characters (the HMAC key "
                         "the receiver verifies signatures with)")
    return seal(_settings(session), secret)


def get_channel(session: Session, name: str, *, lock: bool = False) -> NotifyChannel:
    stmt = select(NotifyChannel).where(NotifyChannel.name == name)
    if lock:
        stmt = stmt.with_for_update()
    ch = session.scalars(stmt).first()
    if ch is None:
        raise NotFoundError(f"unknown channel '{name}' (see `assay channel list`)")
    return ch


def channel_to_dict(ch: NotifyChannel) -> dict[str, Any]:
    """A channel as it is shown: never the secret, only whether one is set."""
    return {"name": ch.name, "kind": ch.kind, "config": dict(ch.config or {}),
            "events": list(ch.events or []), "enabled": bool(ch.enabled),
            "max_attempts": ch.max_attempts, "backoff_seconds": ch.backoff_seconds,
            "has_secret": bool(ch.secret), "created_at": _iso(ch.created_at),
            "updated_at": _iso(ch.updated_at)}


def _audit(session: Session, actor: User, action: str, ch: NotifyChannel,
           extra: dict[str, Any] | None = None) -> None:
    payload = {k: v for k, v in channel_to_dict(ch).items()
               if k not in ("created_at", "updated_at")}
    payload.update(extra or {})
    append_event(session, actor=actor, action=action, subject_type="notify_channel",
                 subject_id=ch.name, payload=payload)


def add_channel(session: Session, actor: User, name: str, *, kind: str,
                config: Mapping[str, Any], secret: str | None = None,
                events: Iterable[str] = ("*",), enabled: bool = True, max_attempts: int = 5,
                backoff_seconds: int = 60, now: datetime | None = None) -> NotifyChannel:
    """Set up a channel (admin). A webhook needs a secret: its signatures' HMAC key."""
    require_role(actor, *CHANNEL_ADMINS, action="set up notification channels")
    check_name(name)
    cfg = check_config(kind, config)
    evs = check_events(events)
    _limits(max_attempts, backoff_seconds)
    if kind == "webhook" and not secret:
        raise InputError("webhook channel: a secret is required (the HMAC key of the "
                         "X-Assay-Signature header; at least 16 characters)")
    if kind == "email" and secret and not cfg.get("username"):
        raise InputError("email channel: a password without a username; give --username")
    if session.scalars(select(NotifyChannel.id).where(NotifyChannel.name == name)).first():
        raise ConflictError(f"a channel named '{name}' exists already")
    now = now or utcnow()
    ch = NotifyChannel(name=name, kind=kind, config=cfg, secret=_secret(session, kind, secret),
                       events=evs, enabled=bool(enabled), max_attempts=int(max_attempts),
                       backoff_seconds=int(backoff_seconds), created_by=actor.id,
                       created_at=now, updated_at=now)
    session.add(ch)
    session.flush()
    _audit(session, actor, "notify.channel_add", ch)
    return ch


def update_channel(session: Session, actor: User, name: str, *,
                   config: Mapping[str, Any] | None = None, secret: str | None = None,
                   events: Iterable[str] | None = None, enabled: bool | None = None,
                   max_attempts: int | None = None, backoff_seconds: int | None = None,
                   now: datetime | None = None) -> NotifyChannel:
    """Change a channel (admin); ``config`` keys given replace those stored."""
    require_role(actor, *CHANNEL_ADMINS, action="change notification channels")
    ch = get_channel(session, name, lock=True)
    changed: list[str] = []
    if config:
        merged = {**(ch.config or {}), **dict(config)}
        ch.config = check_config(ch.kind, merged)
        changed.append("config")
    if events is not None:
        ch.events = check_events(events)
        changed.append("events")
    if max_attempts is not None or backoff_seconds is not None:
        _limits(max_attempts if max_attempts is not None else ch.max_attempts,
                backoff_seconds if backoff_seconds is not None else ch.backoff_seconds)
        if max_attempts is not None:
            ch.max_attempts = int(max_attempts)
            changed.append("max_attempts")
        if backoff_seconds is not None:
            ch.backoff_seconds = int(backoff_seconds)
            changed.append("backoff_seconds")
    if enabled is not None:
        ch.enabled = bool(enabled)
        changed.append("enabled")
    if secret:
        ch.secret = _secret(session, ch.kind, secret)
        changed.append("secret")
    if not changed:
        raise InputError(f"channel '{name}': nothing to change")
    ch.updated_at = now or utcnow()
    session.flush()
    _audit(session, actor, "notify.channel_update", ch, {"changed": changed})
    return ch


def remove_channel(session: Session, actor: User, name: str,
                   *, now: datetime | None = None) -> dict[str, Any]:
    """Remove a channel (admin). Its deliveries stay in the log under its name; those
    not yet delivered are marked failed ("channel removed")."""
    require_role(actor, *CHANNEL_ADMINS, action="remove notification channels")
    ch = get_channel(session, name, lock=True)
    now = now or utcnow()
    abandoned = session.execute(
        update(NotifyDelivery).where(NotifyDelivery.channel_id == ch.id,
                                     NotifyDelivery.state == "pending")
        .values(state="failed", finished_at=now, claim=None, claimed_until=None,
                last_error=f"channel '{name}' was removed before delivery")
        .execution_options(synchronize_session=False)).rowcount or 0
    session.execute(update(NotifyDelivery).where(NotifyDelivery.channel_id == ch.id)
                    .values(channel_id=None).execution_options(synchronize_session=False))
    out = channel_to_dict(ch)
    _audit(session, actor, "notify.channel_remove", ch, {"pending_abandoned": int(abandoned)})
    session.delete(ch)
    session.flush()
    out["pending_abandoned"] = int(abandoned)
    return out


def list_channels(session: Session, actor: User) -> list[NotifyChannel]:
    """Every channel (admin: a channel's settings name the organisation's systems)."""
    require_role(actor, *CHANNEL_ADMINS, action="see notification channels")
    return list(session.scalars(select(NotifyChannel).order_by(NotifyChannel.name)))


def show_channel(session: Session, actor: User, name: str) -> NotifyChannel:
    require_role(actor, *CHANNEL_ADMINS, action="see notification channels")
    return get_channel(session, name)
