"""``assay channel add / update / list / remove / test`` and
``assay notify list / show / dispatch / retry``.

Channel commands are for admins (checked in :mod:`assay.notify`). Secrets are
never taken on the command line (where ``ps`` and shell history would see
them): ``--secret-env VAR`` reads an environment variable, ``--secret-stdin``
the first line of standard input; no command prints a secret.
``assay notify dispatch`` delivers what is due: run it from cron; it exits 1
when a delivery failed for good in this run. Commands that raise alerts or
move a stage forward dispatch right after their commit (:func:`after_commit`).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assay.errors import InputError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
AS_HELP = "Act as this user (default: $ASSAY_USER)."
FORMAT_HELP = "Output format: table or json."


def _actor_name(as_user: str | None) -> str:
    name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
    if not name:
        raise InputError("no acting user: pass --as USER or set ASSAY_USER")
    return name


def _open() -> Any:
    from assay.store import open_store

    return open_store()


def _act(as_user: str | None, fn: Any) -> Any:
    from assay.registry import get_user

    store = _open()
    name = _actor_name(as_user)
    with store.transaction() as session:
        session.info["settings"] = store.settings
        return fn(session, get_user(session, name))


def _format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise InputError(f"--format: expected table or json, got {fmt!r}")


def _emit(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _e(v: Any) -> str:
    return escape(str(v))


def _secret(env: str | None, stdin: bool) -> str | None:
    if env and stdin:
        raise InputError("give --secret-env or --secret-stdin, not both")
    if env:
        value = os.environ.get(env)
        if not value:
            raise InputError(f"--secret-env {env}: the environment variable is not set or "
                             "empty")
        return value
    if stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise InputError("--secret-stdin: standard input held no secret")
        return value
    return None


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _config(kind: str | None, url: str | None, host: str | None, port: int | None,
            sender: str | None, starttls: bool | None, username: str | None,
            to: str | None) -> dict[str, Any]:
    given = {"url": url, "host": host, "port": port, "sender": sender, "starttls": starttls,
             "username": username, "to": _csv(to)}
    given = {k: v for k, v in given.items() if v is not None}
    if kind == "webhook":
        wrong = [k for k in given if k != "url"]
        if wrong:
            raise InputError(f"--{wrong[0]}: an e-mail setting; a webhook channel takes --url")
    elif kind == "email" and "url" in given:
        raise InputError("--url: a webhook setting; an e-mail channel takes --host, --port, "
                         "--sender, --starttls, --username, --to")
    return given


def _print_deliveries(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("no deliveries")
        return
    table = Table()
    for col in ("id", "event", "channel", "recipient", "state", "attempts", "created",
                "last error / note"):
        table.add_column(col)
    for d in rows:
        table.add_row(str(d["id"]), _e(d["event_kind"]), _e(d["channel"]),
                      _e(d["recipient"] or "-"), d["state"],
                      f"{d['attempts']}/{d['max_attempts']}", (d["created_at"] or "")[:19],
                      _e(d["last_error"] or d["note"]))
    console.print(table)


def after_commit(actor: str | None = None) -> None:
    """Deliver what is due right after a command's commit; best effort, never fails the
    command (an undelivered notification stays in the log for ``assay notify dispatch``)."""
    from assay.notify import dispatch_after_commit
    from assay.notify.dispatch import DISPATCHER

    try:
        store = _open()
    except Exception as exc:  # the command's own work is committed
        err_console.print(f"notifications not sent now: {_e(exc)}")
        return
    res, summary = dispatch_after_commit(store, actor=actor or DISPATCHER)
    if res is None or res.delivered or res.retrying or res.failed:
        err_console.print(f"notifications: {_e(summary)}"
                          + ("" if res is not None and res.ok and not res.retrying
                             else " (see `assay notify list`)"))


def register(app: typer.Typer) -> None:
    channel = typer.Typer(help="Notification channels: SMTP e-mail and signed webhooks.",
                          no_args_is_help=True)
    notify = typer.Typer(help="The notification log: list, show, dispatch, retry.",
                         no_args_is_help=True)
    app.add_typer(channel, name="channel", rich_help_panel="Monitoring")
    app.add_typer(notify, name="notify", rich_help_panel="Monitoring")

    @channel.command("add")
    def channel_add_cmd(
        name: str = typer.Argument(..., help="Channel name (letters, digits, . _ -)."),
        kind: str = typer.Option(..., "--kind", help="email or webhook."),
        url: str | None = typer.Option(None, "--url", help="webhook: the http(s) URL."),
        host: str | None = typer.Option(None, "--host", help="email: the SMTP server."),
        port: int | None = typer.Option(None, "--port", help="email: its port (25)."),
        sender: str | None = typer.Option(None, "--sender", help="email: the From address."),
        starttls: bool = typer.Option(False, "--starttls", help="email: use STARTTLS."),
        username: str | None = typer.Option(None, "--username",
                                            help="email: SMTP user (password: --secret-*)."),
        to: str | None = typer.Option(None, "--to",
                                      help="email: addresses that get every message, a,b."),
        events: str = typer.Option("*", "--events",
                                   help="Event kinds taken, a,b: '*', monitor.alert, "
                                        "approval.awaiting, monitor.* ..."),
        secret_env: str | None = typer.Option(None, "--secret-env",
                                              help="Read the secret (webhook HMAC key, SMTP "
                                                   "password) from this variable."),
        secret_stdin: bool = typer.Option(False, "--secret-stdin",
                                          help="Read the secret from standard input."),
        max_attempts: int = typer.Option(5, "--max-attempts", help="Attempts per delivery."),
        backoff: int = typer.Option(60, "--backoff",
                                    help="Seconds before the first retry (doubling)."),
        disabled: bool = typer.Option(False, "--disabled", help="Add it switched off."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Add a channel (admin)."""
        from assay.notify import add_channel

        if kind not in ("email", "webhook"):
            raise InputError(f"--kind: expected email or webhook, got {kind!r}")
        config = _config(kind, url, host, port, sender, starttls if kind == "email" else None,
                         username, to)
        secret = _secret(secret_env, secret_stdin)
        ch = _act(as_user, lambda s, a: add_channel(
            s, a, name, kind=kind, config=config, secret=secret, events=_csv(events) or [],
            enabled=not disabled, max_attempts=max_attempts, backoff_seconds=backoff))
        console.print(f"channel {_e(ch.name)} ({ch.kind}) added"
                      + ("" if ch.enabled else ", disabled")
                      + f"; takes {', '.join(ch.events)}")

    @channel.command("update")
    def channel_update_cmd(
        name: str = typer.Argument(..., help="Channel name."),
        url: str | None = typer.Option(None, "--url", help="webhook: the http(s) URL."),
        host: str | None = typer.Option(None, "--host", help="email: the SMTP server."),
        port: int | None = typer.Option(None, "--port", help="email: its port."),
        sender: str | None = typer.Option(None, "--sender", help="email: the From address."),
        starttls: bool | None = typer.Option(None, "--starttls/--no-starttls",
                                             help="email: use STARTTLS."),
        username: str | None = typer.Option(None, "--username", help="email: SMTP user."),
        to: str | None = typer.Option(None, "--to", help="email: fixed addresses, a,b."),
        events: str | None = typer.Option(None, "--events", help="Event kinds taken, a,b."),
        secret_env: str | None = typer.Option(None, "--secret-env",
                                              help="New secret from this variable."),
        secret_stdin: bool = typer.Option(False, "--secret-stdin",
                                          help="New secret from standard input."),
        max_attempts: int | None = typer.Option(None, "--max-attempts",
                                                help="Attempts per delivery."),
        backoff: int | None = typer.Option(None, "--backoff", help="Seconds before a retry."),
        enabled: bool | None = typer.Option(None, "--enable/--disable",
                                            help="Switch the channel on or off."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Change a channel (admin)."""
        from assay.notify import update_channel

        config = _config(None, url, host, port, sender, starttls, username, to)
        secret = _secret(secret_env, secret_stdin)
        ch = _act(as_user, lambda s, a: update_channel(
            s, a, name, config=config or None, secret=secret, events=_csv(events),
            enabled=enabled, max_attempts=max_attempts, backoff_seconds=backoff))
        console.print(f"channel {_e(ch.name)} updated")

    @channel.command("list")
    def channel_list_cmd(
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Every channel, its settings and the events it takes (admin; secrets never shown)."""
        from assay.notify import channel_to_dict, list_channels

        _format(fmt)
        rows = _act(as_user, lambda s, a: [channel_to_dict(c) for c in list_channels(s, a)])
        if fmt == "json":
            _emit(rows)
            return
        if not rows:
            console.print("no channels (assay channel add NAME --kind email|webhook ...)")
            return
        table = Table()
        for col in ("name", "kind", "target", "events", "enabled", "secret", "attempts",
                    "back-off"):
            table.add_column(col)
        for c in rows:
            cfg = c["config"]
            target = cfg.get("url") or (f"{cfg.get('host')}:{cfg.get('port')} from "
                                        f"{cfg.get('sender')}")
            table.add_row(_e(c["name"]), c["kind"], _e(target), _e(", ".join(c["events"])),
                          "yes" if c["enabled"] else "no", "set" if c["has_secret"] else "-",
                          str(c["max_attempts"]), f"{c['backoff_seconds']} s")
        console.print(table)

    @channel.command("remove")
    def channel_remove_cmd(
        name: str = typer.Argument(..., help="Channel name."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Remove a channel (admin); its pending deliveries are marked failed."""
        from assay.notify import remove_channel

        out = _act(as_user, lambda s, a: remove_channel(s, a, name))
        console.print(f"channel {_e(name)} removed"
                      + (f"; {out['pending_abandoned']} pending delivery(ies) marked failed"
                         if out["pending_abandoned"] else ""))

    @channel.command("test")
    def channel_test_cmd(
        name: str = typer.Argument(..., help="Channel name."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Send a test message now (admin); exit 1 if it was not delivered."""
        from assay.notify import dispatch_due, send_test

        note = _act(as_user, lambda s, a: send_test(s, a, name))
        ids = [d.id for d in note.deliveries if d.state == "pending"]
        res = dispatch_due(_open(), ids=ids, actor=_actor_name(as_user))
        with _open().transaction() as s:
            from assay.notify.tables import NotifyDelivery

            rows = [s.get(NotifyDelivery, i) for i in ids]
            for d in rows:
                where = d.recipient or "webhook"
                if d.state == "delivered":
                    console.print(f"delivery #{d.id} to {_e(where)}: delivered")
                else:
                    console.print(f"delivery #{d.id} to {_e(where)}: {d.state}: "
                                  f"{_e(d.last_error)}")
        if res.delivered != ids:
            raise typer.Exit(1)

    @notify.command("list")
    def notify_list_cmd(
        state: str | None = typer.Option(None, "--state", help="pending, delivered or failed."),
        event: str | None = typer.Option(None, "--event", help="Only this event kind."),
        channel_name: str | None = typer.Option(None, "--channel", help="Only this channel."),
        limit: int = typer.Option(200, "--limit", help="At most this many, newest first."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """The delivery log, newest first."""
        from assay.notify import delivery_to_dict, list_deliveries

        _format(fmt)
        rows = _act(as_user, lambda s, a: [delivery_to_dict(d) for d in list_deliveries(
            s, a, state=state, event_kind=event, channel=channel_name, limit=limit)])
        _emit(rows) if fmt == "json" else _print_deliveries(rows)

    @notify.command("show")
    def notify_show_cmd(
        delivery: int = typer.Argument(..., help="Delivery id (assay notify list)."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """One delivery and every attempt at it."""
        from assay.notify import attempts_of, delivery_to_dict, get_delivery

        _format(fmt)
        d = _act(as_user, lambda s, a: delivery_to_dict(get_delivery(s, a, delivery),
                                                        attempts_of(s, delivery)))
        if fmt == "json":
            _emit(d)
            return
        _print_deliveries([d])
        console.print(f"subject: {_e(d['subject'])}")
        for at in d["attempt_log"]:
            console.print(f"  attempt {at['number']} at {at['at']}: {at['outcome']}"
                          + (f" ({at['status_code']})" if at["status_code"] else "")
                          + (f" {_e(at['error'])}" if at["error"] else "")
                          + (f" {_e(at['response'][:200])}" if at["response"] else ""))

    @notify.command("dispatch")
    def notify_dispatch_cmd(
        limit: int = typer.Option(100, "--limit", help="At most this many deliveries."),
        as_user: str | None = typer.Option(None, "--as",
                                           help="Record deliveries as this user (default: "
                                                "$ASSAY_USER, else assay-dispatcher)."),
    ) -> None:
        """Deliver every due notification; exit 1 if one failed for good (cron-friendly)."""
        from assay.notify import dispatch_due
        from assay.notify.dispatch import DISPATCHER
        from assay.notify.roles import LOG_READERS
        from assay.registry import get_user, require_role

        name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
        store = _open()
        if name:
            with store.transaction() as s:
                require_role(get_user(s, name), *LOG_READERS, action="dispatch notifications")
        res = dispatch_due(store, limit=limit, actor=name or DISPATCHER)
        console.print(res.summary())
        if res.failed:
            raise typer.Exit(1)

    @notify.command("retry")
    def notify_retry_cmd(
        delivery: int = typer.Argument(..., help="Id of a failed delivery."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Send a failed delivery again (admin)."""
        from assay.notify import retry

        d = _act(as_user, lambda s, a: retry(s, a, delivery))
        console.print(f"delivery #{d.id} is pending again")
        after_commit(_actor_name(as_user))
