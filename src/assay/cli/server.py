"""``assay serve``, ``assay init`` and ``assay token create/list/revoke``.

``assay init`` creates the store and the first admin, whose one-time
password is printed once. Token commands act as the user named by ``--as``
or ``ASSAY_USER`` (unknown user: exit 2); the token is printed once and only
a salted hash of it is stored.
"""

from __future__ import annotations

import os

import typer
from rich.console import Console
from rich.table import Table

from assay.errors import InputError

console = Console()

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


def _store():
    from assay.store import open_store

    return open_store()


def _actor_name(as_user: str | None) -> str:
    name = as_user or os.environ.get("ASSAY_USER")
    if not name:
        raise InputError("no acting user: pass --as USER or set ASSAY_USER")
    return name


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, max=64,
                                help="Worker processes (PostgreSQL stores only)."),
    secure_cookies: bool | None = typer.Option(
        None, "--secure-cookies/--no-secure-cookies",
        help="Mark cookies Secure (default: yes unless the request is to a loopback address)."),
    sample: bool = typer.Option(
        False, "--sample",
        help="Fill an empty store with a sample governance history to try the UI "
             "(prints the users' password)."),
) -> None:
    """Serve the REST API and the web UI (API reference at /docs)."""
    import uvicorn

    from assay.api.app import create_app
    from assay.config import load_settings

    settings = load_settings()
    if sample:
        _fill_sample()
    if workers > 1 and settings.database_url.startswith("sqlite"):
        raise InputError("--workers: more than one worker needs a PostgreSQL store "
                         "(set ASSAY_DATABASE_URL)")
    console.print(f"assay serving {settings.database_url.split('@')[-1]} on "
                  f"http://{host}:{port} (API reference at /docs)", highlight=False)
    if settings.monitor_interval > 0:
        console.print(f"closed monitoring windows are evaluated every "
                      f"{settings.monitor_interval:g} s (ASSAY_MONITOR_INTERVAL; 0 turns it off)",
                      highlight=False)
    if settings.notify_interval > 0:
        console.print(f"due notifications are delivered every {settings.notify_interval:g} s "
                      "(ASSAY_NOTIFY_INTERVAL; 0 turns it off)", highlight=False)
    if workers > 1:  # each worker process builds its own app from the environment
        if secure_cookies is not None:
            os.environ["ASSAY_SECURE_COOKIES"] = "1" if secure_cookies else "0"
        uvicorn.run("assay.api.app:app_from_env", factory=True, workers=workers, host=host,
                    port=port, log_level="info", proxy_headers=True, server_header=False)
        return
    app = create_app(settings, secure_cookies=secure_cookies)
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True,
                server_header=False)


def _fill_sample() -> None:
    from sqlalchemy import func, select

    from assay.api.sample import USERS, populate
    from assay.auth.secrets import generate_password
    from assay.registry.tables import User
    from assay.store import open_store

    store = open_store()
    with store.transaction() as s:
        if s.scalar(select(func.count()).select_from(User)):
            raise InputError("--sample: the store has users already; use an empty ASSAY_HOME")
    password = generate_password()
    populate(store, password=password)
    store.dispose()
    console.print("sample history added; sign in as any of "
                  + ", ".join(USERS) + f" with the password: {password}", highlight=False)


def init(
    admin: str = typer.Option("admin", "--admin", help="User name of the first admin."),
    display_name: str = typer.Option("Administrator", "--display-name"),
) -> None:
    """Create the store and the first admin; print the admin's one-time password."""
    from assay.auth.bootstrap import initialise
    from assay.store import open_store

    store = open_store(auto_upgrade=True)
    password = initialise(store, admin, display_name=display_name)
    if password is None:
        console.print(f"store ready at {store.url}; users exist already, no admin created",
                      highlight=False)
        return
    console.print(f"store ready; admin '{admin}' created.", highlight=False)
    console.print(f"one-time password: {password}", highlight=False, soft_wrap=True)
    console.print("It is shown only now. Sign in at /login and choose your own password.")


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., "--name", help="What the token is for (e.g. 'ci deploy gate')."),
    user: str | None = typer.Option(None, "--user", help="Owner (admins only); default: you."),
    days: int = typer.Option(90, "--days", min=1, help="Lifetime in days."),
    never_expires: bool = typer.Option(False, "--never-expires", help="No expiry (admins only)."),
    as_user: str | None = typer.Option(None, "--as", help="Acting user (or ASSAY_USER)."),
) -> None:
    """Create an API token and print it once."""
    from assay.auth import service as auth
    from assay.registry import get_user

    store = _store()
    with store.transaction() as s:
        actor = get_user(s, _actor_name(as_user))
        row, token = auth.create_token(s, actor, user or actor.username, name,
                                       expires_in_days=None if never_expires else days)
        expires = row.expires_at.date().isoformat() if row.expires_at else "never"
        key_id = row.key_id
    console.print(f"token {key_id} for {user or actor.username}, expires {expires}:",
                  highlight=False)
    typer.echo(token)
    console.print("Store it now: it is not shown again.")


@token_app.command("list")
def token_list(
    user: str | None = typer.Option(None, "--user", help="Whose tokens ('*' = everyone, admins)."),
    as_user: str | None = typer.Option(None, "--as", help="Acting user (or ASSAY_USER)."),
) -> None:
    """List API tokens (never the tokens themselves)."""
    from assay.auth import service as auth
    from assay.registry import get_user

    store = _store()
    with store.transaction() as s:
        actor = get_user(s, _actor_name(as_user))
        rows = auth.list_tokens(s, actor, user)
        names = auth.usernames(s, {r.user_id for r in rows})
        table = Table()
        table.add_column("id", no_wrap=True)
        for col in ("user", "name", "state", "created", "expires", "last used"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r.key_id, names.get(r.user_id, "?"), r.name, auth.token_state(r),
                          _day(r.created_at), _day(r.expires_at), _day(r.last_used_at))
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    key_id: str = typer.Argument(..., help="Token id (the part after 'assay_')."),
    as_user: str | None = typer.Option(None, "--as", help="Acting user (or ASSAY_USER)."),
) -> None:
    """Revoke an API token now."""
    from assay.auth import service as auth
    from assay.registry import get_user

    store = _store()
    with store.transaction() as s:
        actor = get_user(s, _actor_name(as_user))
        auth.revoke_token(s, actor, key_id)
    console.print(f"token {key_id} revoked", highlight=False)


def user_password(
    username: str = typer.Argument(..., help="Whose password to set."),
    prompt: bool = typer.Option(False, "--prompt",
                                help="Type the new password (hidden) instead of generating "
                                     "a one-time password."),
    as_user: str | None = typer.Option(None, "--as", help="Acting user (or ASSAY_USER)."),
) -> None:
    """Set a user's web password: admins for anyone (a one-time password is printed
    once and must be changed at sign-in; the user's browser sessions end), users for
    themselves with --prompt (typing their current password first, if they have one)."""
    from assay.auth import service as auth
    from assay.registry import get_user

    store = _store()
    with store.transaction() as s:
        actor = get_user(s, _actor_name(as_user))
        own = actor.username == get_user(s, username).username
        needs_current = own and auth.has_password(s, actor)
    current = password = None
    if needs_current:
        current = typer.prompt("Current password", hide_input=True)
    if prompt:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    with store.transaction() as s:
        actor = get_user(s, _actor_name(as_user))
        if own and not needs_current:  # a first password: nothing to prove yet
            result = auth.set_password(s, actor, username, password)
        else:
            result = auth.reset_password(s, actor, username, password, current=current)
    if password is None:
        console.print(f"one-time password for {username} (shown only now; to be changed at "
                      "first sign-in):", highlight=False)
        typer.echo(result)
    else:
        console.print(f"password of {username} changed", highlight=False)


def _day(dt) -> str:
    return dt.date().isoformat() if dt is not None else "—"


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("init")(init)
    app.add_typer(token_app, name="token")
    # ``assay user password`` joins the ``user`` group of the governance commands.
    for group in app.registered_groups:
        if group.name == "user" and group.typer_instance is not None:
            group.typer_instance.command("password")(user_password)
            break
    else:
        user_app = typer.Typer(help="Users and their passwords.", no_args_is_help=True)
        user_app.command("password")(user_password)
        app.add_typer(user_app, name="user")
