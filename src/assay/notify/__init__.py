"""Notifications: channels (SMTP e-mail, signed webhooks), the outbox, the delivery log.

    from assay.notify import notify, dispatch_due

    with store.transaction() as s:          # inside whatever raises the event
        notify(s, actor, "monitor.alert", "PSI breached on credit-pd@1.0",
               {"alert": 12}, roles=["validator"], channels=["ops-hook"])
    dispatch_due(store)                     # after the commit: send what is due

docs/notifications.md describes channels, the webhook signature and the log.
"""

from assay.notify.channels import (
    EVENT_KINDS,
    add_channel,
    channel_to_dict,
    get_channel,
    list_channels,
    remove_channel,
    show_channel,
    update_channel,
)
from assay.notify.dispatch import (
    DispatchResult,
    dispatch_after_commit,
    dispatch_due,
    sign,
)
from assay.notify.outbox import (
    Notification,
    attempts_of,
    delivery_to_dict,
    get_delivery,
    list_deliveries,
    notify,
    retry,
    send_test,
)

__all__ = [
    "EVENT_KINDS",
    "DispatchResult",
    "Notification",
    "add_channel",
    "attempts_of",
    "channel_to_dict",
    "delivery_to_dict",
    "dispatch_after_commit",
    "dispatch_due",
    "get_channel",
    "get_delivery",
    "list_channels",
    "list_deliveries",
    "notify",
    "remove_channel",
    "retry",
    "send_test",
    "show_channel",
    "sign",
    "update_channel",
]
