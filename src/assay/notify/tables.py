"""Notification tables: channels, the outbox of deliveries, and every attempt.
Created by migration ``0007_notify``.

A notification is written as delivery rows (one per channel and recipient)
in the transaction of whatever raised it, so an alert and its notifications
are committed together or not at all (the outbox pattern). A dispatcher
delivers the due rows after the commit and records each attempt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assay.registry.tables import TZ
from assay.store.db import Base

#: Kinds of channel.
CHANNEL_KINDS = ("email", "webhook")
#: States of a delivery.
DELIVERY_STATES = ("pending", "delivered", "failed")


class NotifyChannel(Base):
    """A way to reach people: an SMTP server or a webhook URL, set up by an admin."""

    __tablename__ = "notify_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    #: email: host, port, sender, starttls, username, to; webhook: url
    config: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    #: the webhook's HMAC key or the SMTP password, encrypted (assay.notify.secrets)
    secret: Mapped[str | None] = mapped_column(Text)
    #: event kinds the channel takes: ``*``, ``monitor.*``, ``monitor.alert``...
    events: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    backoff_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=60)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class NotifyDelivery(Base):
    """One message to one recipient over one channel, and where it stands."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (Index("ix_notify_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the deliveries of one ``notify()`` call share it
    notification: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    event_kind: Mapped[str] = mapped_column(String(100), nullable=False)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    #: NULL once the channel is removed (its name stays)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("notify_channels.id"))
    channel_name: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    #: the e-mail address (empty for a webhook)
    recipient: Mapped[str] = mapped_column(String(320), nullable=False, default="")
    recipient_user: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    next_attempt_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    #: a dispatcher's claim on the row, and until when it holds
    claim: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(TZ)
    last_error: Mapped[str] = mapped_column(Text, nullable=False, default="")
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(TZ)


class NotifyAttempt(Base):
    """One try at a delivery: when, the outcome, the server's answer."""

    __tablename__ = "notify_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("notify_deliveries.id"),
                                             nullable=False, index=True)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    outcome: Mapped[str] = mapped_column(String(20), nullable=False)
    #: the HTTP status or the SMTP reply code
    status_code: Mapped[int | None] = mapped_column(Integer)
    #: the SMTP reply text or the start of the HTTP response
    response: Mapped[str] = mapped_column(Text, nullable=False, default="")
    error: Mapped[str] = mapped_column(Text, nullable=False, default="")
