"""``assay attest sign / verify / keys add / keys list / keys revoke``.

``sign`` and ``verify`` work on files and need no store unless ``verify`` is
given no ``--public-key`` (it then uses the store's trusted keys). Exit codes of
``verify``: 0 valid, 1 invalid (the reason is printed), 2 bad input. Key
commands are for admins (checked in :mod:`assay.evidence.keys`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assay.errors import InputError

console = Console(highlight=False, soft_wrap=True)
AS_HELP = "Act as this user (default: $ASSAY_USER)."


def _actor_name(as_user: str | None) -> str:
    name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
    if not name:
        raise InputError("no acting user: pass --as USER or set ASSAY_USER")
    return name


def _act(as_user: str | None, fn: Any) -> Any:
    from assay.registry import get_user
    from assay.store import open_store

    store = open_store()
    with store.transaction() as session:
        return fn(session, get_user(session, _actor_name(as_user)))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


def _passphrase(env: str | None) -> bytes | None:
    if env is None:
        return None
    value = os.environ.get(env)
    if not value:
        raise InputError(f"--passphrase-env {env}: the environment variable is not set or empty")
    return value.encode()


def register(app: typer.Typer) -> None:
    attest_app = typer.Typer(help="Signed attestations (in-toto statements in DSSE envelopes) "
                                  "and the trusted keys\nthat verify them.",
                             no_args_is_help=True)
    keys_app = typer.Typer(help="Trusted public keys (CI runners, approvers, assay's own).",
                           no_args_is_help=True)
    app.add_typer(attest_app, name="attest")
    attest_app.add_typer(keys_app, name="keys")

    @attest_app.command("sign")
    def sign_cmd(
        results: Path = typer.Argument(..., metavar="RESULTS_JSON",
                                       help="results.json written by `assay certify`."),
        key: Path = typer.Option(..., "--key", metavar="KEY",
                                 help="Ed25519 (or ECDSA P-256) private key, PEM PKCS#8."),
        out: Path = typer.Option(..., "--out", "-o", metavar="ENVELOPE",
                                 help="Where to write the DSSE envelope (JSON)."),
        passphrase_env: str | None = typer.Option(
            None, "--passphrase-env", metavar="VAR",
            help="Read the passphrase of an encrypted key from this variable."),
    ) -> None:
        """Sign a certification: an in-toto statement about the model artefact, with the
        verdict, policy, data and results digests, in a DSSE envelope."""
        from assay.evidence.attest import keyid, load_private_key
        from assay.evidence.predicates import sign_results, write_envelope

        if results.is_dir():
            results = results / "results.json"
        private = load_private_key(key, passphrase=_passphrase(passphrase_env))
        envelope = sign_results(results, private)
        write_envelope(envelope, out)
        console.print(f"signed {escape(str(results))} with key "
                      f"{keyid(private.public_key())[:16]}...: {escape(str(out))}")

    @attest_app.command("verify")
    def verify_cmd(
        envelope: Path = typer.Argument(..., metavar="ENVELOPE"),
        public_key: Path | None = typer.Option(
            None, "--public-key", metavar="KEY.pub",
            help="Verify with this public key (PEM) instead of the store's trusted keys."),
        subject: Path | None = typer.Option(
            None, "--subject", metavar="ARTIFACT",
            help="Also check that the statement is about this file (by SHA-256)."),
        output: str = typer.Option("table", "--format", "-f", help="table or json."),
    ) -> None:
        """Verify a DSSE envelope. Exit 0: valid; 1: invalid (says why); 2: bad input."""
        from assay.evidence import attest
        from assay.evidence.artifacts import digest_file

        if output not in ("table", "json"):
            raise InputError(f"--format: expected table or json, got {output!r}")
        data = _read(envelope, "envelope")
        env = attest.parse_envelope(data, where=str(envelope))
        if subject is not None and not subject.is_file():
            raise InputError(f"--subject {subject}: file not found")
        if public_key is not None:
            verified = attest.verify_envelope(env, [attest.load_public_key(public_key)])
        else:
            from assay.evidence.keys import verify_trusted
            from assay.store import open_store

            with open_store().transaction() as session:
                verified = verify_trusted(session, env.raw)
        if subject is not None:
            attest.require_subject(verified, digest_file(subject), what=str(subject))
        stmt = verified.statement
        if output == "json":
            sys.stdout.write(json.dumps({"valid": True, "keyid": verified.keyid,
                                         "statement": stmt}, indent=2) + "\n")
            return
        console.print(f"[green]valid[/]: {escape(verified.predicate_type)} signed by key "
                      f"{verified.keyid[:16]}...")
        for s in stmt["subject"]:
            console.print(f"  subject {escape(str(s.get('name')))} "
                          f"sha256:{escape(s['digest']['sha256'])}")

    @keys_app.command("add")
    def keys_add_cmd(
        name: str = typer.Argument(..., help="A name for the key (e.g. ci-runner-1)."),
        public_key: Path = typer.Option(..., "--public-key", metavar="KEY.pub",
                                        help="The public key, PEM (SubjectPublicKeyInfo)."),
        purpose: str = typer.Option(..., "--purpose", help="ci or approver."),
        owner: str | None = typer.Option(None, "--owner", help="The user who holds the key."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Register a public key as trusted (admins)."""
        from assay.evidence.keys import register_key

        pem = _read(public_key, "public key")
        kid = _act(as_user, lambda s, actor: register_key(
            s, actor, name, pem, purpose=purpose, owner=owner).keyid)
        console.print(f"registered trusted key {escape(name)}: keyid {kid}")

    @keys_app.command("list")
    def keys_list_cmd(
        output: str = typer.Option("table", "--format", "-f", help="table or json."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Trusted keys, revoked ones included."""
        from assay.evidence.keys import key_to_dict, list_keys

        if output not in ("table", "json"):
            raise InputError(f"--format: expected table or json, got {output!r}")
        rows = _act(as_user, lambda s, actor: [key_to_dict(k) for k in list_keys(s, actor)])
        if output == "json":
            sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
            return
        table = Table("name", "purpose", "algorithm", "keyid", "revoked")
        for r in rows:
            table.add_row(escape(r["name"]), r["purpose"], r["algorithm"], r["keyid"][:16],
                          f"{r['revoked_at']:%Y-%m-%d}" if r["revoked_at"] else "")
        console.print(table)

    @keys_app.command("revoke")
    def keys_revoke_cmd(
        key: str = typer.Argument(..., help="The key's name or keyid."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Revoke a trusted key (admins): its signatures are refused from now on."""
        from assay.evidence.keys import revoke_key

        name = _act(as_user, lambda s, actor: revoke_key(s, actor, key).name)
        console.print(f"revoked trusted key {escape(name)}")
