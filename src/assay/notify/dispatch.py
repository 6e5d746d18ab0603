"""Delivering the outbox: claim due rows, send, record every attempt.

:func:`dispatch_due` is safe with several dispatchers at once: rows are
claimed in a short transaction (``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL; on SQLite one ``UPDATE`` that takes the database's write lock)
with a lease, sent outside any transaction, and each outcome is recorded in
its own transaction. A dispatcher that dies mid-way leaves its rows claimed
until the lease ends; another then sends them again (delivery is at least
once: a receiver de-duplicates on the delivery id).

A failed attempt is retried with exponential back-off
(``backoff_seconds * 2 ** (attempt - 1)``, at most six hours) until the
channel's ``max_attempts``; then the delivery is *failed*, visible in the
log and in the audit trail, and an admin may retry it.
"""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from assay import __version__
from assay.notify.secrets import unseal
from assay.notify.tables import NotifyAttempt, NotifyChannel, NotifyDelivery
from assay.registry.roles import DISPATCHER_ACTOR
from assay.store.audit import append_event
from assay.store.db import as_utc, transaction, utcnow

#: Seconds a claim holds before another dispatcher may take the row.
LEASE_SECONDS = 300
#: The longest wait between two attempts.
MAX_DELAY = 6 * 3600
#: Seconds to wait for a webhook receiver or an SMTP server.
TIMEOUT = 15.0
#: The audit trail's actor for deliveries when no user runs the dispatcher.
DISPATCHER = DISPATCHER_ACTOR
SIGNATURE_HEADER = "X-Assay-Signature"
TIMESTAMP_HEADER = "X-Assay-Timestamp"


@dataclass
class DispatchResult:
    """What one dispatch run did, by delivery id."""

    delivered: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No delivery failed for good in this run."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"delivered": list(self.delivered), "retrying": list(self.retrying),
                "failed": list(self.failed)}

    def summary(self) -> str:
        return (f"{len(self.delivered)} delivered, {len(self.retrying)} to retry, "
                f"{len(self.failed)} failed")


@dataclass
class _Outcome:
    ok: bool
    status_code: int | None = None
    response: str = ""
    error: str = ""


@dataclass
class _Job:
    id: int
    notification: str
    event_kind: str
    subject: str
    payload: dict[str, Any]
    recipient: str
    kind: str
    channel: str
    config: dict[str, Any] | None
    secret: str | None
    backoff: int
    problem: str = ""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Assay-Signature`` value: ``sha256=`` and the hex HMAC-SHA256, keyed with
    the channel's secret, of the timestamp header, a dot and the raw body."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _sessions(target: Any) -> Callable[[], Session]:
    return getattr(target, "sessions", target)


def _now(now: datetime | None) -> datetime:
    return utcnow() if now is None else as_utc(now)


def dispatch_due(sessions: Any, *, now: datetime | None = None, limit: int = 100,
                 ids: list[int] | None = None, actor: Any = DISPATCHER,
                 lease_seconds: int = LEASE_SECONDS) -> DispatchResult:
    """Deliver the pending deliveries that are due (or only ``ids``), after their commit.

    ``sessions`` is a :class:`assay.store.Store` or a session factory; each claim
    and each outcome is its own transaction. ``now`` fixes the clock (tests
    advance it to see the back-off). Returns what was delivered, what waits
    for another attempt and what failed for good.
    """
    factory = _sessions(sessions)
    result = DispatchResult()
    at = _now(now)
    token = uuid.uuid4().hex
    with transaction(factory) as s:
        jobs = _claim(s, at, limit, ids, token, lease_seconds)
    for job in jobs:
        outcome = _Outcome(False, error=job.problem) if job.problem else _send(job)
        with transaction(factory) as s:
            state = _record(s, job, token, outcome, _now(now), actor)
        if state == "delivered":
            result.delivered.append(job.id)
        elif state == "failed":
            result.failed.append(job.id)
        elif state == "pending":
            result.retrying.append(job.id)
    return result


def _claim(s: Session, now: datetime, limit: int, ids: list[int] | None, token: str,
           lease: int) -> list[_Job]:
    D = NotifyDelivery
    cond = [D.state == "pending", D.next_attempt_at <= now,
            or_(D.claimed_until.is_(None), D.claimed_until < now)]
    if ids is not None:
        cond.append(D.id.in_([int(i) for i in ids] or [-1]))
    until = now + timedelta(seconds=lease)
    if s.get_bind().dialect.name == "postgresql":
        chosen = s.scalars(select(D.id).where(*cond).order_by(D.id).limit(limit)
                           .with_for_update(skip_locked=True)).all()
        if chosen:
            s.execute(update(D).where(D.id.in_(chosen)).values(claim=token, claimed_until=until)
                      .execution_options(synchronize_session=False))
    else:  # SQLite: the UPDATE takes the write lock; a second dispatcher waits, then sees it
        first = select(D.id).where(*cond).order_by(D.id).limit(limit).scalar_subquery()
        s.execute(update(D).where(D.id.in_(first), *cond).values(claim=token,
                                                                 claimed_until=until)
                  .execution_options(synchronize_session=False))
    rows = s.scalars(select(D).where(D.claim == token).order_by(D.id)).all()
    settings = s.info.get("settings")
    jobs = []
    for d in rows:
        ch = s.get(NotifyChannel, d.channel_id) if d.channel_id is not None else None
        job = _Job(id=d.id, notification=d.notification, event_kind=d.event_kind,
                   subject=d.subject, payload=dict(d.payload or {}), recipient=d.recipient,
                   kind=d.kind, channel=d.channel_name, config=None, secret=None, backoff=0)
        if ch is None:
            job.problem = f"channel '{d.channel_name}' no longer exists"
        elif not ch.enabled:
            job.problem, job.backoff = f"channel '{ch.name}' is disabled", ch.backoff_seconds
        else:
            job.config, job.backoff = dict(ch.config or {}), ch.backoff_seconds
            if ch.secret:
                if settings is None:
                    from assay.config import load_settings

                    settings = load_settings()
                try:
                    job.secret = unseal(settings, ch.secret)
                except Exception as exc:  # recorded as the attempt's error
                    job.problem = str(exc)
        jobs.append(job)
    return jobs


def _record(s: Session, job: _Job, token: str, outcome: _Outcome, now: datetime,
            actor: Any) -> str | None:
    d = s.get(NotifyDelivery, job.id, with_for_update=True)
    if d is None or d.claim != token or d.state != "pending":
        return None  # removed, or the lease ran out and another dispatcher took it
    number = int(s.scalar(select(func.count()).select_from(NotifyAttempt)
                          .where(NotifyAttempt.delivery_id == d.id)) or 0) + 1
    s.add(NotifyAttempt(delivery_id=d.id, number=number, at=now,
                        outcome="delivered" if outcome.ok else "error",
                        status_code=outcome.status_code, response=outcome.response[:2000],
                        error=outcome.error[:2000]))
    d.attempts += 1
    d.claim, d.claimed_until = None, None
    event = None
    if outcome.ok:
        d.state, d.finished_at, d.last_error = "delivered", now, ""
        event = "notify.delivered"
    else:
        d.last_error = outcome.error[:2000]
        if d.attempts >= d.max_attempts:
            d.state, d.finished_at = "failed", now
            event = "notify.failed"
        else:
            delay = min(MAX_DELAY, job.backoff * 2 ** (d.attempts - 1))
            d.next_attempt_at = now + timedelta(seconds=delay)
    s.flush()
    if event is not None:
        append_event(s, actor=actor, action=event, subject_type="notify_delivery",
                     subject_id=d.id,
                     payload={"notification": d.notification, "event_kind": d.event_kind,
                              "channel": d.channel_name, "recipient": d.recipient,
                              "attempts": d.attempts, "status_code": outcome.status_code,
                              "error": d.last_error})
    return d.state


# --------------------------------------------------------------------------- sending


def _send(job: _Job) -> _Outcome:
    try:
        if job.kind == "webhook":
            return _send_webhook(job)
        if job.kind == "email":
            return _send_email(job)
        return _Outcome(False, error=f"unknown channel kind '{job.kind}'")
    except Exception as exc:  # any failure is an attempt's recorded error
        return _Outcome(False, error=f"{type(exc).__name__}: {exc}")


def webhook_body(job: _Job, timestamp: datetime) -> bytes:
    doc = {"delivery": job.id, "notification": job.notification, "event": job.event_kind,
           "subject": job.subject, "payload": job.payload,
           "timestamp": timestamp.isoformat().replace("+00:00", "Z")}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()


def _send_webhook(job: _Job) -> _Outcome:
    import httpx

    assert job.config is not None
    ts = int(time.time())
    body = webhook_body(job, datetime.fromtimestamp(ts, UTC))
    stamp = str(ts)
    headers = {"Content-Type": "application/json", "User-Agent": f"assay/{__version__}",
               "X-Assay-Event": job.event_kind, "X-Assay-Delivery": str(job.id),
               TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(job.secret or "", stamp, body)}
    try:
        resp = httpx.post(job.config["url"], content=body, headers=headers, timeout=TIMEOUT,
                          follow_redirects=False)
    except httpx.HTTPError as exc:
        return _Outcome(False, error=f"{type(exc).__name__}: {exc or 'no answer'}")
    text = resp.text[:500]
    if 200 <= resp.status_code < 300:
        return _Outcome(True, status_code=resp.status_code, response=text)
    return _Outcome(False, status_code=resp.status_code, response=text,
                    error=f"HTTP {resp.status_code} {resp.reason_phrase}".strip())


def email_message(job: _Job) -> EmailMessage:
    assert job.config is not None
    msg = EmailMessage()
    msg["From"] = job.config["sender"]
    msg["To"] = job.recipient
    # one line: a line break in a header would be refused (or inject headers)
    msg["Subject"] = "[assay] " + " ".join(job.subject.split())
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=job.config["sender"].rsplit("@", 1)[-1])
    msg["X-Assay-Event"] = job.event_kind
    msg["X-Assay-Delivery"] = str(job.id)
    lines = [job.subject, ""]
    for key, value in job.payload.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        lines.append(f"{key}: {value}")
    lines += ["", f"-- assay ({job.event_kind}, delivery #{job.id})"]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _send_email(job: _Job) -> _Outcome:
    cfg = job.config
    assert cfg is not None
    msg = email_message(job)
    with smtplib.SMTP(cfg["host"], int(cfg.get("port", 25)), timeout=TIMEOUT) as smtp:
        smtp.ehlo()
        if cfg.get("starttls"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if cfg.get("username"):
            smtp.login(cfg["username"], job.secret or "")
        code, reply = smtp.mail(cfg["sender"])
        if code != 250:
            return _Outcome(False, code, _text(reply), f"MAIL FROM refused: {code}")
        code, reply = smtp.rcpt(job.recipient)
        if code not in (250, 251):
            return _Outcome(False, code, _text(reply), f"recipient refused: {code}")
        # CRLF line ends: smtplib sends bytes as they are, and SMTP limits a line to 1,000
        code, reply = smtp.data(msg.as_bytes(policy=email.policy.SMTP))
        if code != 250:
            return _Outcome(False, code, _text(reply), f"message refused: {code}")
        return _Outcome(True, code, _text(reply))


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def dispatch_after_commit(sessions: Any, *, actor: Any = DISPATCHER
                          ) -> tuple[DispatchResult | None, str]:
    """Best effort, right after a command's commit: deliver what is due and say how it
    went; never raises (what was not delivered stays in the log for the next run)."""
    try:
        res = dispatch_due(sessions, actor=actor)
    except Exception as exc:  # the command's own work is committed
        return None, f"notifications not sent now ({exc}); `assay notify dispatch` sends them"
    return res, res.summary()
