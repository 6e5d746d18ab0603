"""Trusted keys and signed certifications in the store, on SQLite and PostgreSQL: a
certification recorded with an envelope is verified (signature, trusted non-revoked key,
model artefact, results digest, verdict) before anything is stored."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from _results import consistent_results
from assay import registry
from assay.api.app import create_app
from assay.auth import service as auth
from assay.cli import main
from assay.errors import ConflictError, InputError, PermissionDenied
from assay.evidence import attest, digest_bytes, open_artifact
from assay.evidence import keys as K
from assay.evidence.predicates import certification_statement
from assay.evidence.tables import Attestation, TrustedKey
from assay.registry.tables import Certification
from assay.store import Store
from assay.store.audit import list_events, verify_chain

MODEL, VERSION = "credit-pd", "1.0"
ARTEFACT = "sha256:" + "c1" * 32
OTHER = "sha256:" + "d2" * 32
RECORD = f"/api/models/{MODEL}/versions/{VERSION}/certifications"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def ci_key() -> attest.PrivateKey:
    return attest.generate_key()


@pytest.fixture
def people(db: Store, ci_key) -> Store:
    with db.transaction() as s:
        admin = registry.add_user(s, None, "ada")
        registry.add_user(s, admin, "vic", roles=["validator"])
        registry.add_user(s, admin, "dana", roles=["data_scientist"])
        registry.add_user(s, admin, "aud", roles=["auditor"])
        dana = registry.get_user(s, "dana")
        registry.register_model(s, dana, MODEL, owner="dana", decision_type="automated",
                                criticality="high")
        registry.add_version(s, dana, MODEL, VERSION, artifact_digest=ARTEFACT)
        K.register_key(s, admin, "ci-runner", attest.public_pem(ci_key), purpose="ci")
    return db


def _results(model_sha: str = ARTEFACT) -> bytes:
    doc = consistent_results("default", "low", model_sha=model_sha)
    return (json.dumps(doc, indent=2) + "\n").encode()


def _envelope(raw: bytes, key, *, edit: Callable[[dict], None] | None = None) -> bytes:
    stmt = certification_statement(json.loads(raw), digest_bytes(raw))
    if edit is not None:
        edit(stmt)
    return json.dumps(attest.sign_statement(stmt, key)).encode()


def _counts(db: Store) -> tuple[int, int]:
    with db.transaction() as s:
        return (s.scalar(select(func.count()).select_from(Certification)),
                s.scalar(select(func.count()).select_from(Attestation)))


def _record(db: Store, raw: bytes, envelope: bytes, user: str = "vic") -> Certification:
    with db.transaction() as s:
        return registry.record_certification(s, registry.get_user(s, user), MODEL, VERSION,
                                             None, raw, attestation=envelope)


def test_tables_match_the_migration(db: Store) -> None:
    from _schema import schema_diffs

    assert schema_diffs(db.engine, {"trusted_keys", "attestations"}) == []


def test_a_signed_certification_is_verified_and_kept(people, ci_key) -> None:
    raw = _results()
    env = _envelope(raw, ci_key)
    cert = _record(people, raw, env)
    with people.transaction() as s:
        (att,) = K.attestations_of(s, f"{MODEL}@{VERSION}")
        assert att.kind == "certification" and att.ref == f"certification:{cert.id}"
        assert att.keyid == attest.keyid(ci_key.public_key())
        assert att.subject_digest == ARTEFACT
        stored = open_artifact(people.settings, att.envelope_digest)
        assert attest.verify_envelope(stored, [ci_key.public_key()]).predicate["verdict"] == \
            cert.status
        (ev,) = list_events(s, action="certification.record")
        assert ev.evidence["attestation"] == att.envelope_digest
        assert verify_chain(s).ok


def _payload_byte_changed(env: bytes) -> bytes:
    doc = json.loads(env)
    raw = bytearray(base64.b64decode(doc["payload"]))
    raw[raw.index(b'"verdict"') + 12] ^= 0x01
    doc["payload"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(doc).encode()


def _subject_swapped(env: bytes) -> bytes:
    doc = json.loads(env)
    stmt = json.loads(base64.b64decode(doc["payload"]))
    stmt["subject"][0]["digest"]["sha256"] = OTHER.removeprefix("sha256:")
    doc["payload"] = base64.b64encode(attest.canonical_json(stmt)).decode()
    return json.dumps(doc).encode()


def _payload_type(env: bytes) -> bytes:
    return json.dumps({**json.loads(env), "payloadType": "application/json"}).encode()


@pytest.mark.parametrize("attack, reason", [
    (lambda raw, key: _payload_byte_changed(_envelope(raw, key)), "signature"),
    (lambda raw, key: _subject_swapped(_envelope(raw, key)), "signature"),
    (lambda raw, key: _payload_type(_envelope(raw, key)), "payload_type"),
    (lambda raw, key: _envelope(raw, attest.generate_key()), "untrusted_key"),
    (lambda raw, key: _envelope(_results(OTHER), key), "other_model"),
    (lambda raw, key: _envelope(raw + b" ", key), "results_digest"),
    (lambda raw, key: _envelope(raw, key, edit=lambda s: s["predicate"].update(
        verdict="blocked")), "verdict"),
    (lambda raw, key: _envelope(raw, key, edit=lambda s: s.update(
        predicateType=attest.GATE_DECISION)), "predicate_type"),
])
def test_refused_envelopes_name_their_reason_and_store_nothing(people, ci_key, attack,
                                                               reason) -> None:
    raw = _results()
    before = _counts(people)
    with pytest.raises(InputError) as err:
        _record(people, raw, attack(raw, ci_key))
    assert err.value.details["reason"] == reason
    assert f"attestation refused ({reason})" in str(err.value)
    assert _counts(people) == before


def test_a_revoked_key_is_refused(people, ci_key) -> None:
    raw = _results()
    with people.transaction() as s:
        K.revoke_key(s, registry.get_user(s, "ada"), "ci-runner")
    with pytest.raises(InputError) as err:
        _record(people, raw, _envelope(raw, ci_key))
    assert err.value.details["reason"] == "revoked_key"
    assert "ci-runner" in str(err.value)
    with people.transaction() as s:
        actions = [e.action for e in list_events(s) if e.action.startswith("key.")]
        assert actions == ["key.revoke", "key.register"]  # newest first


def test_only_admins_manage_keys(people, ci_key) -> None:
    pem = attest.public_pem(attest.generate_key())
    with people.transaction() as s:
        for user in ("vic", "dana", "aud"):
            with pytest.raises(PermissionDenied):
                K.register_key(s, registry.get_user(s, user), "mine", pem, purpose="ci")
            with pytest.raises(PermissionDenied):
                K.revoke_key(s, registry.get_user(s, user), "ci-runner")
        with pytest.raises(PermissionDenied):
            K.list_keys(s, registry.get_user(s, "dana"))
        assert [k.name for k in K.list_keys(s, registry.get_user(s, "aud"))] == ["ci-runner"]
        admin = registry.get_user(s, "ada")
        with pytest.raises(InputError, match="'service' is assay's own key"):
            K.register_key(s, admin, "svc", pem, purpose="service")
        with pytest.raises(InputError, match="expected one of ci, approver, service"):
            K.register_key(s, admin, "x", pem, purpose="root")
        with pytest.raises(ConflictError, match="registered already as 'ci-runner'"):
            K.register_key(s, admin, "again", attest.public_pem(ci_key), purpose="ci")
        with pytest.raises(InputError, match="not a PEM public key"):
            K.register_key(s, admin, "junk", "hello", purpose="ci")


def test_service_key_is_made_once_private_and_trusted(db: Store, monkeypatch) -> None:
    monkeypatch.delenv(K.SIGNING_KEY_ENV, raising=False)
    with db.transaction() as s:
        key = K.service_key(s, db.settings)
    path = Path(db.settings.home) / K.SIGNING_KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    with db.transaction() as s:
        again = K.service_key(s, db.settings)
        assert attest.keyid(again.public_key()) == attest.keyid(key.public_key())
        (row,) = s.scalars(select(TrustedKey)).all()
        assert row.purpose == "service" and row.keyid == attest.keyid(key.public_key())


def test_signing_key_from_the_environment(db: Store, tmp_path, monkeypatch) -> None:
    key = attest.generate_key()
    path = tmp_path / "svc.pem"
    path.write_bytes(attest.private_pem(key))
    monkeypatch.setenv(K.SIGNING_KEY_ENV, str(path))
    with db.transaction() as s:
        got = K.service_key(s, db.settings)
    assert attest.keyid(got.public_key()) == attest.keyid(key.public_key())
    assert not (Path(db.settings.home) / K.SIGNING_KEY_FILE).exists()
    monkeypatch.setenv(K.SIGNING_KEY_ENV, str(tmp_path / "missing.pem"))
    with db.transaction() as s, pytest.raises(InputError, match="ASSAY_SIGNING_KEY="):
        K.service_key(s, db.settings)


# --------------------------------------------------------------------------- CLI and API


def _write(tmp_path: Path, raw: bytes, key) -> tuple[Path, Path]:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "results.json").write_bytes(raw)
    env = run / "results.intoto.json"
    env.write_bytes(_envelope(raw, key))
    return run, env


def test_cli_record_with_attestation(people, ci_key, tmp_path, capsys) -> None:
    raw = _results()
    run, env = _write(tmp_path, raw, ci_key)
    stranger = tmp_path / "stranger.json"
    stranger.write_bytes(_envelope(raw, attest.generate_key()))
    with pytest.raises(SystemExit) as exc:
        main(["model", "record", MODEL, VERSION, "--results", str(run), "--attestation",
              str(stranger), "--as", "vic"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "attestation refused (untrusted_key)" in err and "Traceback" not in err
    assert _counts(people) == (0, 0)
    main(["model", "record", MODEL, VERSION, "--results", str(run), "--attestation", str(env),
          "--as", "vic"])
    assert _counts(people) == (1, 1)


def test_cli_keys_and_verify_exit_codes(people, ci_key, tmp_path, capsys) -> None:
    raw = _results()
    _, env = _write(tmp_path, raw, ci_key)
    pub = tmp_path / "approver.pub"
    approver = attest.generate_key()
    pub.write_text(attest.public_pem(approver))
    with pytest.raises(SystemExit) as exc:
        main(["attest", "keys", "add", "approver-1", "--public-key", str(pub), "--purpose",
              "approver", "--as", "vic"])
    assert exc.value.code == 2
    assert "admin" in capsys.readouterr().err
    main(["attest", "keys", "add", "approver-1", "--public-key", str(pub), "--purpose",
          "approver", "--owner", "vic", "--as", "ada"])
    assert attest.keyid(approver.public_key()) in capsys.readouterr().out
    main(["attest", "keys", "list", "--format", "json", "--as", "aud"])
    listed = json.loads(capsys.readouterr().out)
    assert [k["name"] for k in listed] == ["ci-runner", "approver-1"]
    # verify against the store's trusted keys: valid, then invalid once revoked
    main(["attest", "verify", str(env)])
    assert "valid" in capsys.readouterr().out
    main(["attest", "keys", "revoke", "ci-runner", "--as", "ada"])
    with pytest.raises(SystemExit) as exc:
        main(["attest", "verify", str(env)])
    assert exc.value.code == 1
    assert "revoked_key" in capsys.readouterr().err


def test_api_upload_with_attestation(people, ci_key) -> None:
    with people.transaction() as s:
        admin = registry.get_user(s, "ada")
        token = auth.create_token(s, admin, "vic", "tests")[1]
    client = TestClient(create_app(people.settings, store=people))
    headers = {"Authorization": f"Bearer {token}"}
    raw = _results()
    bad = _envelope(raw, ci_key, edit=lambda s: s["predicate"].update(verdict="blocked"))
    resp = client.post(RECORD, headers=headers,
                       files={"results": ("results.json", raw), "attestation": ("e.json", bad)})
    assert resp.status_code == 400, resp.text
    assert "attestation refused (verdict)" in resp.json()["error"]["message"]
    assert resp.json()["error"]["details"]["reason"] == "verdict"
    assert _counts(people) == (0, 0)
    resp = client.post(RECORD, headers=headers,
                       files={"results": ("results.json", raw),
                              "attestation": ("e.json", _envelope(raw, ci_key))})
    assert resp.status_code == 201, resp.text
    assert _counts(people) == (1, 1)


def test_api_keys_are_admin_only_and_attestations_are_served(people, ci_key) -> None:
    with people.transaction() as s:
        admin = registry.get_user(s, "ada")
        tokens = {u: auth.create_token(s, admin, u, "tests")[1]
                  for u in ("ada", "vic", "dana", "aud")}
    client = TestClient(create_app(people.settings, store=people))

    def call(user: str | None, method: str, path: str, **kw: Any):
        headers = {"Authorization": f"Bearer {tokens[user]}"} if user else {}
        return client.request(method, path, headers=headers, **kw)

    key = attest.generate_key()
    body = {"name": "approver-vic", "purpose": "approver",
            "public_key": attest.public_pem(key), "owner": "vic"}
    assert call(None, "POST", "/api/keys", json=body).status_code == 401
    for user in ("vic", "dana", "aud"):
        assert call(user, "POST", "/api/keys", json=body).status_code == 403
        assert call(user, "POST", "/api/keys/ci-runner/revoke").status_code == 403
    assert call("dana", "GET", "/api/keys").status_code == 403
    assert call("ada", "POST", "/api/keys",
                json={**body, "purpose": "service"}).status_code == 422
    bad = call("ada", "POST", "/api/keys",
               json={**body, "public_key": attest.private_pem(key).decode()})
    assert bad.status_code == 400 and "a private key" in bad.json()["error"]["message"]
    made = call("ada", "POST", "/api/keys", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["keyid"] == attest.keyid(key.public_key())
    assert call("ada", "POST", "/api/keys", json={**body, "name": "dup"}).status_code == 409
    listed = call("aud", "GET", "/api/keys").json()
    assert [k["name"] for k in listed] == ["ci-runner", "approver-vic"]
    revoked = call("ada", "POST", "/api/keys/approver-vic/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert call("ada", "POST", "/api/keys/approver-vic/revoke").status_code == 409
    assert call("ada", "POST", "/api/keys/nope/revoke").status_code == 404
    # a version's attestations, with their envelopes
    raw = _results()
    _record(people, raw, _envelope(raw, ci_key))
    path = f"/api/models/{MODEL}/versions/{VERSION}/attestations"
    assert call(None, "GET", path).status_code == 401
    got = call("aud", "GET", path)
    assert got.status_code == 200, got.text
    (att,) = got.json()
    assert att["kind"] == "certification" and att["subject_digest"] == ARTEFACT
    verified = attest.verify_envelope(att["envelope"], [ci_key.public_key()])
    assert verified.predicate["results"]["sha256"] == digest_bytes(raw).removeprefix("sha256:")
    assert call("aud", "GET", f"/api/models/{MODEL}/versions/9.9/attestations"
                ).status_code == 404
    with people.transaction() as s:
        assert [e.action for e in list_events(s) if e.action.startswith("key.")] == \
            ["key.revoke", "key.register", "key.register"]


def test_two_first_signatures_at_once_register_the_service_key_once(db: Store, backend,
                                                                    monkeypatch) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    import threading

    monkeypatch.delenv(K.SIGNING_KEY_ENV, raising=False)
    a_registered, errors = threading.Event(), []

    def first() -> None:
        try:
            with db.transaction() as s:
                K.service_key(s, db.settings)
                a_registered.set()
                threading.Event().wait(0.5)  # the second one now waits on the key's row
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
            a_registered.set()

    def second() -> None:
        a_registered.wait(10)
        try:
            with db.transaction() as s:
                K.service_key(s, db.settings)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(TrustedKey)) == 1
        assert [e.action for e in list_events(s)] == ["key.register"]
        assert verify_chain(s).ok
