"""``assay init``, ``assay token create/list/revoke`` and ``assay user password``."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import select

from assay.auth import service as auth
from assay.auth.tables import ApiToken, Credential
from assay.cli import main
from assay.registry import add_user, get_user
from assay.store.audit import list_events


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_init_creates_the_first_admin_with_a_one_time_password(db, capsys) -> None:
    code, out, _ = run(capsys, "init")
    assert code == 0
    password = re.search(r"one-time password: (\S+)", out).group(1)
    with db.transaction() as s:
        admin = get_user(s, "admin")
        assert "admin" in admin.roles
        assert auth.authenticate_password(s, "admin", password, client="cli") is not None
        assert auth.password_must_change(s, admin)
        cred = s.get(Credential, admin.id)
        assert password not in cred.password_hash
    code, out, _ = run(capsys, "init")
    assert code == 0 and "no admin created" in out


def test_token_commands(db, capsys) -> None:
    with db.transaction() as s:
        admin = add_user(s, None, "root")
        add_user(s, admin, "vic", roles=["validator"])
    code, out, _ = run(capsys, "token", "create", "--name", "ci gate", "--user", "vic",
                       "--days", "30", "--as", "root")
    assert code == 0
    token = re.search(r"^(assay_\S+)$", out, re.M).group(1)
    key_id = token.split("_")[1]
    with db.transaction() as s:
        assert auth.user_for_token(s, token).username == "vic"
        row = s.scalars(select(ApiToken)).one()
        assert token.split("_", 2)[2] not in row.secret_hash
    code, out, _ = run(capsys, "token", "list", "--user", "*", "--as", "root")
    assert code == 0 and key_id in out and "active" in out and token not in out
    code, _, err = run(capsys, "token", "create", "--name", "x", "--user", "root", "--as", "vic")
    assert code == 2 and "may not create tokens" in err
    code, _, err = run(capsys, "token", "revoke", key_id, "--as", "nobody")
    assert code == 2 and "unknown user" in err
    code, out, _ = run(capsys, "token", "revoke", key_id, "--as", "vic")
    assert code == 0 and "revoked" in out
    with db.transaction() as s:
        with pytest.raises(auth.AuthenticationError, match="revoked"):
            auth.user_for_token(s, token)
        events = [e.action for e in list_events(s, action="auth.*", limit=10)]
    assert events == ["auth.token_revoked", "auth.token_created"]


def test_user_password_by_an_admin_is_one_time(db, capsys) -> None:
    with db.transaction() as s:
        admin = add_user(s, None, "root")
        add_user(s, admin, "vic", roles=["validator"])
    code, out, _ = run(capsys, "user", "password", "vic", "--as", "root")
    assert code == 0
    password = out.strip().splitlines()[-1]
    with db.transaction() as s:
        assert auth.authenticate_password(s, "vic", password, client="cli") is not None
        assert auth.password_must_change(s, get_user(s, "vic"))
    code, _, err = run(capsys, "user", "password", "root", "--as", "vic")
    assert code == 2 and "may not set the password" in err


def test_user_password_ends_sessions_and_asks_for_ones_own_current_password(
        db, capsys, monkeypatch) -> None:
    with db.transaction() as s:
        admin = add_user(s, None, "root")
        vic = add_user(s, admin, "vic", roles=["validator"])
        auth.set_password(s, vic, "vic", "vic's first password", one_time=False)
        raw, _ = auth.open_session(s, vic)
    code, _, _ = run(capsys, "user", "password", "vic", "--as", "root")
    assert code == 0
    with db.transaction() as s, pytest.raises(auth.AuthenticationError):
        auth.session_user(s, raw)  # the admin's reset ended vic's browser session
    # vic sets their own: the current (one-time) password is asked for first
    with db.transaction() as s:
        one_time = auth.set_password(s, get_user(s, "root"), "vic", None)
    answers = iter(["not the password", "vic's own password 2", "vic's own password 2"])
    monkeypatch.setattr("typer.prompt", lambda *a, **k: next(answers))
    code, _, err = run(capsys, "user", "password", "vic", "--prompt", "--as", "vic")
    assert code == 2 and "current password: does not match" in err
    answers = iter([one_time, "vic's own password 2", "vic's own password 2"])
    code, out, _ = run(capsys, "user", "password", "vic", "--prompt", "--as", "vic")
    assert code == 0 and "password of vic changed" in out
    with db.transaction() as s:
        assert auth.authenticate_password(s, "vic", "vic's own password 2", client="cli")
