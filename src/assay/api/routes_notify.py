"""Notifications: channels (admin) and the delivery log.

Routes call :mod:`assay.notify` with the authenticated user as the actor;
roles are checked there (channels: admin; the log: the roles that take
alerts in hand, and auditors; retry: admin). No answer holds a channel's
secret: only ``has_secret``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from assay.api.deps import Principal, acting, current_principal

router = APIRouter(prefix="/api", tags=["notifications"])

CHANNEL = Path(..., min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
               description="Channel name")
DELIVERY = Path(..., ge=1, le=2**31 - 1, description="Delivery id")
EVENT = r"^(\*|[a-z_]+(\.[a-z_]+)*(\.\*)?)$"


class ChannelConfig(BaseModel):
    """e-mail: host, port, sender, starttls, username, to; webhook: url."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=2000)
    host: str | None = Field(None, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    sender: str | None = Field(None, max_length=320)
    starttls: bool | None = None
    username: str | None = Field(None, max_length=320)
    to: list[str] | None = Field(None, max_length=50)


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=100,
                      pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Literal["email", "webhook"]
    config: ChannelConfig
    secret: str | None = Field(None, max_length=1000, description=(
        "Webhook HMAC key (required, 16+ characters) or SMTP password; stored encrypted, "
        "never returned"))
    events: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=20)
    enabled: bool = True
    max_attempts: int = Field(5, ge=1, le=50)
    backoff_seconds: int = Field(60, ge=0, le=86_400)


class ChannelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: ChannelConfig | None = None
    secret: str | None = Field(None, max_length=1000)
    events: list[str] | None = Field(None, min_length=1, max_length=20)
    enabled: bool | None = None
    max_attempts: int | None = Field(None, ge=1, le=50)
    backoff_seconds: int | None = Field(None, ge=0, le=86_400)


class ChannelOut(BaseModel):
    name: str
    kind: str
    config: dict[str, Any]
    events: list[str]
    enabled: bool
    max_attempts: int
    backoff_seconds: int
    has_secret: bool
    created_at: str | None
    updated_at: str | None
    #: on removal: how many pending deliveries were marked failed
    pending_abandoned: int | None = None


class AttemptOut(BaseModel):
    number: int
    at: str | None
    outcome: str
    status_code: int | None
    response: str
    error: str


class DeliveryOut(BaseModel):
    id: int
    notification: str
    event_kind: str
    subject: str
    channel: str
    kind: str
    recipient: str
    recipient_user: str | None
    state: str
    attempts: int
    max_attempts: int
    next_attempt_at: str | None
    last_error: str
    note: str
    created_by: str
    created_at: str | None
    finished_at: str | None
    payload: dict[str, Any]
    attempt_log: list[AttemptOut] | None = None


class NotificationOut(BaseModel):
    id: str
    event_kind: str
    subject: str
    deliveries: list[DeliveryOut]
    problems: list[str]


def _config(c: ChannelConfig | None) -> dict[str, Any]:
    return {} if c is None else c.model_dump(exclude_none=True)


@router.get("/channels", response_model=list[ChannelOut], summary="Notification channels")
def channels(request: Request, principal: Principal = Depends(current_principal)) -> list:
    from assay.notify import channel_to_dict, list_channels

    with acting(request, principal) as (s, actor):
        return [channel_to_dict(c) for c in list_channels(s, actor)]


@router.post("/channels", response_model=ChannelOut, status_code=201,
             summary="Add a channel (admin)")
def add(body: ChannelIn, request: Request,
        principal: Principal = Depends(current_principal)) -> dict:
    from assay.notify import add_channel, channel_to_dict

    with acting(request, principal) as (s, actor):
        ch = add_channel(s, actor, body.name, kind=body.kind, config=_config(body.config),
                         secret=body.secret, events=body.events, enabled=body.enabled,
                         max_attempts=body.max_attempts, backoff_seconds=body.backoff_seconds)
        return channel_to_dict(ch)


@router.get("/channels/{name}", response_model=ChannelOut, summary="One channel (admin)")
def show(request: Request, name: str = CHANNEL,
         principal: Principal = Depends(current_principal)) -> dict:
    from assay.notify import channel_to_dict, show_channel

    with acting(request, principal) as (s, actor):
        return channel_to_dict(show_channel(s, actor, name))


@router.patch("/channels/{name}", response_model=ChannelOut, summary="Change a channel (admin)")
def change(body: ChannelPatch, request: Request, name: str = CHANNEL,
           principal: Principal = Depends(current_principal)) -> dict:
    from assay.notify import channel_to_dict, update_channel

    with acting(request, principal) as (s, actor):
        ch = update_channel(s, actor, name, config=_config(body.config) or None,
                            secret=body.secret, events=body.events, enabled=body.enabled,
                            max_attempts=body.max_attempts,
                            backoff_seconds=body.backoff_seconds)
        return channel_to_dict(ch)


@router.delete("/channels/{name}", response_model=ChannelOut,
               summary="Remove a channel (admin); its pending deliveries are marked failed")
def remove(request: Request, name: str = CHANNEL,
           principal: Principal = Depends(current_principal)) -> dict:
    from assay.notify import remove_channel

    with acting(request, principal) as (s, actor):
        return remove_channel(s, actor, name)


@router.post("/channels/{name}/test", response_model=NotificationOut, status_code=201,
             summary="Send a test message on a channel now (admin)")
def send_test_message(request: Request, name: str = CHANNEL,
         principal: Principal = Depends(current_principal)) -> dict:
    from assay.notify import attempts_of, delivery_to_dict, dispatch_due, send_test
    from assay.notify.tables import NotifyDelivery

    with acting(request, principal) as (s, actor):
        note = send_test(s, actor, name)
        out = note.to_dict()
    ids = [d["id"] for d in out["deliveries"] if d["state"] == "pending"]
    store = request.app.state.store
    dispatch_due(store, ids=ids, actor=principal.username)
    with acting(request, principal) as (s, _):
        out["deliveries"] = [delivery_to_dict(s.get(NotifyDelivery, d["id"]),
                                              attempts_of(s, d["id"]))
                             for d in out["deliveries"]]
    return out


@router.get("/notifications", response_model=list[DeliveryOut],
            summary="The delivery log, newest first")
def deliveries(request: Request,
               state: Literal["pending", "delivered", "failed"] | None = Query(None),
               event: str | None = Query(None, max_length=100, pattern=EVENT),
               channel: str | None = Query(None, max_length=100),
               limit: int = Query(200, ge=1, le=1000),
               principal: Principal = Depends(current_principal)) -> list:
    from assay.notify import delivery_to_dict, list_deliveries

    with acting(request, principal) as (s, actor):
        return [delivery_to_dict(d) for d in list_deliveries(
            s, actor, state=state, event_kind=event, channel=channel, limit=limit)]


@router.get("/notifications/{delivery_id}", response_model=DeliveryOut,
            summary="One delivery and every attempt at it")
def delivery(request: Request, delivery_id: int = DELIVERY,
             principal: Principal = Depends(current_principal)) -> dict:
    from assay.notify import attempts_of, delivery_to_dict, get_delivery

    with acting(request, principal) as (s, actor):
        d = get_delivery(s, actor, delivery_id)
        return delivery_to_dict(d, attempts_of(s, d.id))


@router.post("/notifications/{delivery_id}/retry", response_model=DeliveryOut,
             summary="Send a failed delivery again (admin)")
def retry_delivery(request: Request, delivery_id: int = DELIVERY,
                   principal: Principal = Depends(current_principal)) -> dict:
    from assay.notify import delivery_to_dict, retry

    with acting(request, principal) as (s, actor):
        return delivery_to_dict(retry(s, actor, delivery_id))
