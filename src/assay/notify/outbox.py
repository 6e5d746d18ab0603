"""Queueing notifications (the outbox) and reading the delivery log.

:func:`notify` writes one delivery row per channel and recipient in the
caller's transaction: what raised the notification (an alert, a stage that
awaits sign-off) and its deliveries commit together or not at all. The
dispatcher (:mod:`assay.notify.dispatch`) sends them after the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import ConflictError, InputError, NotFoundError
from assay.notify.channels import check_name, get_channel, takes
from assay.notify.roles import CHANNEL_ADMINS, LOG_READERS, RETRIERS
from assay.notify.tables import DELIVERY_STATES, NotifyAttempt, NotifyChannel, NotifyDelivery
from assay.registry import require_role
from assay.registry.roles import ROLES
from assay.registry.tables import User, UserRole, _iso
from assay.store.audit import append_event
from assay.store.db import utcnow


@dataclass
class Notification:
    """What one :func:`notify` call queued, and what it could not."""

    id: str
    event_kind: str
    subject: str
    deliveries: list[NotifyDelivery] = field(default_factory=list)
    #: who or what could not be reached, and why (also in the log and the audit trail)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "event_kind": self.event_kind, "subject": self.subject,
                "deliveries": [delivery_to_dict(d) for d in self.deliveries],
                "problems": list(self.problems)}


def _role_users(session: Session, roles: Iterable[str]) -> tuple[list[User], list[str]]:
    """Active users holding any of ``roles`` (with an address), and the names of those
    without one."""
    roles = list(roles)
    if not roles:
        return [], []
    users = session.scalars(
        select(User).join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role.in_(roles), User.active.is_(True))
        .order_by(User.username).distinct()).all()
    with_address = [u for u in users if (u.email or "").strip()]
    without = [u.username for u in users if not (u.email or "").strip()]
    return with_address, without


def notify(session: Session, actor: User | str, event_kind: str, subject: str,
           payload: Mapping[str, Any] | None = None, *, roles: Iterable[str] = (),
           channels: Iterable[str] = (), users: Iterable[str] = (),
           subscribers: bool = True, now: datetime | None = None) -> Notification:
    """Queue a notification of ``event_kind`` inside the caller's transaction.

    It goes to the channels named in ``channels`` and to every enabled channel
    that subscribes to ``event_kind`` (unless ``subscribers=False``). A webhook
    channel gets one delivery; an e-mail channel one per recipient: the active users holding one of
    ``roles`` (or named in ``users``) who have an e-mail address, and the
    channel's own ``to`` addresses. A named channel that does not exist or is
    disabled, and a role with nobody to reach, give a *failed* delivery that
    says why, so nothing is lost silently. Audited as ``notify.queued``.
    """
    if not event_kind or not str(event_kind).strip():
        raise InputError("notify: the event kind must not be empty")
    roles = list(dict.fromkeys(roles))
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise InputError(f"notify: unknown role '{bad[0]}' (expected one of "
                         + ", ".join(ROLES) + ")")
    named = [check_name(c) for c in dict.fromkeys(channels)]
    now = now or utcnow()
    actor_name = getattr(actor, "username", actor)
    note = Notification(id=uuid.uuid4().hex, event_kind=event_kind, subject=str(subject))
    body = dict(payload or {})
    common = dict(notification=note.id, event_kind=event_kind, subject=note.subject,
                  payload=body, created_by=actor_name, created_at=now, next_attempt_at=now)

    chosen: dict[str, NotifyChannel] = {}
    for name in named:
        ch = session.scalars(select(NotifyChannel).where(NotifyChannel.name == name)).first()
        why = (f"no channel named '{name}' (see `assay channel list`)" if ch is None
               else f"channel '{name}' is disabled" if not ch.enabled else None)
        if why is not None:
            note.problems.append(why)
            note.deliveries.append(NotifyDelivery(
                channel_id=ch.id if ch is not None else None, channel_name=name,
                kind=ch.kind if ch is not None else "unknown", recipient="", state="failed",
                max_attempts=0, last_error=why, finished_at=now, **common))
            continue
        chosen[name] = ch
    for ch in session.scalars(select(NotifyChannel).where(NotifyChannel.enabled.is_(True))
                              .order_by(NotifyChannel.name)):
        if subscribers and ch.name not in chosen and takes(ch, event_kind):
            chosen[ch.name] = ch

    if not chosen and not note.deliveries:
        return note  # no channel is set up for this event: nothing to send, nothing to record
    people, no_address = _role_users(session, roles)
    for name in dict.fromkeys(users):
        u = session.scalars(select(User).where(User.username == name)).first()
        if u is None or not u.active:
            note.problems.append(f"user '{name}' is unknown or deactivated")
        elif not (u.email or "").strip():
            no_address.append(u.username)
        elif all(p.id != u.id for p in people):
            people.append(u)
    no_address = sorted(set(no_address))
    missing = (f"{len(no_address)} user(s) to notify have no e-mail address: "
               + ", ".join(no_address)) if no_address else ""
    if missing:
        note.problems.append(missing)

    emails = [ch for ch in chosen.values() if ch.kind == "email"]
    if (people or no_address) and not emails:
        note.problems.append(
            f"no enabled e-mail channel takes '{event_kind}': "
            + ", ".join([u.username for u in people] + no_address) + " not e-mailed")
    for ch in chosen.values():
        base = dict(channel_id=ch.id, channel_name=ch.name, kind=ch.kind,
                    max_attempts=ch.max_attempts, **common)
        if ch.kind == "webhook":
            note.deliveries.append(NotifyDelivery(recipient="", state="pending", **base))
            continue
        targets: dict[str, str | None] = {}
        for u in people:
            targets.setdefault(u.email.strip(), u.username)  # type: ignore[union-attr]
        for addr in (ch.config or {}).get("to") or []:
            targets.setdefault(addr, None)
        if not targets:
            if roles or ch.name in named or no_address:
                why = ("nobody to e-mail: " + (missing or (
                    "no active user holds " + " or ".join(roles) if roles
                    else "the channel has no 'to' address")))
                note.problems.append(f"channel '{ch.name}': {why}")
                note.deliveries.append(NotifyDelivery(
                    recipient="", state="failed", last_error=why, finished_at=now, **base))
            continue
        for addr, username in targets.items():
            note.deliveries.append(NotifyDelivery(recipient=addr, recipient_user=username,
                                                  state="pending", note=missing, **base))
    if not note.deliveries and not note.problems:
        return note
    session.add_all(note.deliveries)
    session.flush()
    append_event(session, actor=actor_name, action="notify.queued", subject_type="notification",
                 subject_id=note.id,
                 payload={"event_kind": event_kind, "subject": note.subject,
                          "roles": roles, "channels": named,
                          "deliveries": [{"id": d.id, "channel": d.channel_name,
                                          "recipient": d.recipient, "state": d.state}
                                         for d in note.deliveries],
                          "problems": note.problems})
    return note


def delivery_to_dict(d: NotifyDelivery, attempts: list[NotifyAttempt] | None = None
                     ) -> dict[str, Any]:
    out = {"id": d.id, "notification": d.notification, "event_kind": d.event_kind,
           "subject": d.subject, "channel": d.channel_name, "kind": d.kind,
           "recipient": d.recipient, "recipient_user": d.recipient_user, "state": d.state,
           "attempts": d.attempts, "max_attempts": d.max_attempts,
           "next_attempt_at": _iso(d.next_attempt_at) if d.state == "pending" else None,
           "last_error": d.last_error, "note": d.note, "created_by": d.created_by,
           "created_at": _iso(d.created_at), "finished_at": _iso(d.finished_at),
           "payload": dict(d.payload or {})}
    if attempts is not None:
        out["attempt_log"] = [{"number": a.number, "at": _iso(a.at), "outcome": a.outcome,
                               "status_code": a.status_code, "response": a.response,
                               "error": a.error} for a in attempts]
    return out


def list_deliveries(session: Session, actor: User, *, state: str | None = None,
                    event_kind: str | None = None, channel: str | None = None,
                    limit: int = 200) -> list[NotifyDelivery]:
    """The delivery log, newest first."""
    require_role(actor, *LOG_READERS, action="read the notification log")
    stmt = select(NotifyDelivery).order_by(NotifyDelivery.id.desc()).limit(max(1, int(limit)))
    if state is not None:
        if state not in DELIVERY_STATES:
            raise InputError(f"delivery state '{state}': expected one of "
                             + ", ".join(DELIVERY_STATES))
        stmt = stmt.where(NotifyDelivery.state == state)
    if event_kind is not None:
        stmt = stmt.where(NotifyDelivery.event_kind == event_kind)
    if channel is not None:
        stmt = stmt.where(NotifyDelivery.channel_name == channel)
    return list(session.scalars(stmt))


def attempts_of(session: Session, delivery_id: int) -> list[NotifyAttempt]:
    return list(session.scalars(select(NotifyAttempt).where(
        NotifyAttempt.delivery_id == delivery_id).order_by(NotifyAttempt.number)))


def get_delivery(session: Session, actor: User, delivery_id: int) -> NotifyDelivery:
    require_role(actor, *LOG_READERS, action="read the notification log")
    d = session.get(NotifyDelivery, int(delivery_id))
    if d is None:
        raise NotFoundError(f"unknown delivery #{delivery_id} (see `assay notify list`)")
    return d


def retry(session: Session, actor: User, delivery_id: int, *,
          now: datetime | None = None) -> NotifyDelivery:
    """Send a failed delivery again (admin): it is pending again with a fresh budget of
    attempts; the earlier attempts stay in its log."""
    require_role(actor, *RETRIERS, action="retry notifications")
    d = session.get(NotifyDelivery, int(delivery_id), with_for_update=True)
    if d is None:
        raise NotFoundError(f"unknown delivery #{delivery_id} (see `assay notify list`)")
    if d.state != "failed":
        raise ConflictError(f"delivery #{d.id} is {d.state}; only a failed delivery can be "
                            "retried")
    ch = session.get(NotifyChannel, d.channel_id) if d.channel_id is not None else None
    if ch is None:
        raise ConflictError(f"delivery #{d.id}: channel '{d.channel_name}' no longer exists "
                            "(or never did); add it first")
    if d.kind == "email" and not d.recipient:
        raise ConflictError(f"delivery #{d.id} has no recipient ({d.last_error}); nothing to "
                            "send again")
    now = now or utcnow()
    previous = d.last_error
    d.state, d.attempts, d.max_attempts = "pending", 0, ch.max_attempts
    d.next_attempt_at, d.finished_at, d.claim, d.claimed_until = now, None, None, None
    session.flush()
    append_event(session, actor=actor, action="notify.retry", subject_type="notify_delivery",
                 subject_id=d.id, payload={"channel": d.channel_name, "recipient": d.recipient,
                                           "event_kind": d.event_kind,
                                           "previous_error": previous})
    return d


def send_test(session: Session, actor: User, name: str, *,
              now: datetime | None = None) -> Notification:
    """Queue a ``channel.test`` message on one channel (admin): to the webhook, or by
    e-mail to the admin (when they have an address) and the channel's ``to``."""
    require_role(actor, *CHANNEL_ADMINS, action="test notification channels")
    ch = get_channel(session, name)
    if not ch.enabled:
        raise ConflictError(f"channel '{name}' is disabled; enable it first")
    users: list[str] = []
    if ch.kind == "email":
        if (actor.email or "").strip():
            users.append(actor.username)
        elif not (ch.config or {}).get("to"):
            raise InputError(f"channel '{name}': nobody to send a test to; give yourself an "
                             "e-mail address or the channel a 'to' address")
    return notify(session, actor, "channel.test", f"Test message from assay on channel "
                  f"'{name}'", {"channel": name, "sent_by": actor.username}, channels=[name],
                  users=users, subscribers=False, now=now)
