"""DSSE envelopes and in-toto statements (assay.evidence.attest), checked against an
independent DSSE implementation (securesystemslib) and the documented offline script."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from assay.errors import InputError
from assay.evidence import attest

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "verify_attestation.py"
MODEL = "a" * 64
OTHER = "b" * 64


def _stmt(digest: str = MODEL) -> dict:
    return attest.statement([("model.pkl", digest)], attest.CERTIFICATION,
                            {"verdict": "certified"})


def _tamper_payload(env: dict, fn) -> dict:
    stmt = json.loads(base64.b64decode(env["payload"]))
    fn(stmt)
    return {**env, "payload": base64.b64encode(attest.canonical_json(stmt)).decode()}


def test_pae_matches_the_dsse_specification():
    assert attest.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


def test_round_trip_ed25519_and_p256():
    for key in (attest.generate_key(), ec.generate_private_key(ec.SECP256R1())):
        env = attest.sign_statement(_stmt(), key)
        assert set(env) == {"payloadType", "payload", "signatures"}
        assert env["signatures"][0]["keyid"] == attest.keyid(key.public_key())
        ok = attest.verify_envelope(json.dumps(env), [key.public_key()])
        assert ok.predicate_type == attest.CERTIFICATION
        assert ok.predicate == {"verdict": "certified"}
        attest.require_subject(ok, "sha256:" + MODEL)


def test_keyid_is_sha256_of_der_spki():
    import hashlib

    key = attest.generate_key()
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    assert attest.keyid(key.public_key()) == hashlib.sha256(der).hexdigest()


def test_changed_payload_byte_is_refused_as_signature():
    key = attest.generate_key()
    env = attest.sign_statement(_stmt(), key)
    raw = bytearray(base64.b64decode(env["payload"]))
    raw[raw.index(b"certified")] ^= 0x01
    env["payload"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(attest.AttestationInvalid) as err:
        attest.verify_envelope(env, [key.public_key()])
    assert err.value.reason == "signature"
    assert err.value.exit_code == 1


def test_swapped_subject_digest_is_refused():
    key = attest.generate_key()
    env = attest.sign_statement(_stmt(), key)
    swapped = _tamper_payload(env, lambda s: s["subject"][0]["digest"].update(sha256=OTHER))
    with pytest.raises(attest.AttestationInvalid) as err:
        attest.verify_envelope(swapped, [key.public_key()])
    assert err.value.reason == "signature"


def test_envelope_for_another_model_is_refused_as_subject():
    key = attest.generate_key()
    ok = attest.verify_envelope(attest.sign_statement(_stmt(OTHER), key), [key.public_key()])
    with pytest.raises(attest.AttestationInvalid) as err:
        attest.require_subject(ok, MODEL)
    assert err.value.reason == "subject"


def test_untrusted_key_and_payload_type_are_refused():
    key, other = attest.generate_key(), attest.generate_key()
    env = attest.sign_statement(_stmt(), key)
    with pytest.raises(attest.AttestationInvalid) as err:
        attest.verify_envelope(env, [other.public_key()])
    assert err.value.reason == "untrusted_key"
    with pytest.raises(attest.AttestationInvalid) as err:
        attest.verify_envelope({**env, "payloadType": "application/json"}, [key.public_key()])
    assert err.value.reason == "payload_type"


@pytest.mark.parametrize("doc, says", [
    ("not json", "not JSON"),
    ("[]", "expected a DSSE envelope"),
    ('{"payload": "", "signatures": []}', "missing payloadType"),
    ('{"payloadType": "x", "payload": "***", "signatures": [{"sig": ""}]}', "base64"),
    ('{"payloadType": "x", "payload": "", "signatures": []}', "non-empty"),
])
def test_malformed_envelopes_are_input_errors(doc, says):
    with pytest.raises(InputError, match=says):
        attest.parse_envelope(doc)


def test_key_loading_errors_say_what_is_wrong(tmp_path):
    key = attest.generate_key()
    pub = tmp_path / "k.pub"
    pub.write_text(attest.public_pem(key))
    with pytest.raises(InputError, match="a public key; signing needs the private key"):
        attest.load_private_key(pub)
    enc = tmp_path / "enc.pem"
    enc.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"pw")))
    with pytest.raises(InputError, match="encrypted and no passphrase"):
        attest.load_private_key(enc)
    assert attest.keyid(attest.load_private_key(enc, passphrase=b"pw").public_key()) == \
        attest.keyid(key.public_key())
    rsa_key = tmp_path / "rsa.pem"
    rsa_key.write_bytes(attest.private_pem(rsa.generate_private_key(65537, 2048)))
    with pytest.raises(InputError, match="expected Ed25519"):
        attest.load_private_key(rsa_key)
    with pytest.raises(InputError, match="not a PEM private key"):
        attest.load_private_key(b"garbage")
    with pytest.raises(InputError, match="cannot read"):
        attest.load_private_key(tmp_path / "missing.pem")
    with pytest.raises(InputError, match="a private key; give the public key"):
        attest.load_public_key(attest.private_pem(key))


# --------------------------------------------------------------------------- independent DSSE


def test_assay_envelope_verifies_with_securesystemslib():
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    key = attest.generate_key()
    env = attest.sign_statement(_stmt(), key)
    sslib_key = SSlibKey.from_crypto(key.public_key(), keyid=attest.keyid(key.public_key()))
    parsed = Envelope.from_dict(copy.deepcopy(env))  # from_dict edits its argument
    verified = parsed.verify([sslib_key], 1)
    assert attest.keyid(key.public_key()) in verified
    assert json.loads(parsed.payload)["subject"][0]["digest"]["sha256"] == MODEL
    from securesystemslib.exceptions import VerificationError

    tampered = Envelope.from_dict(_tamper_payload(env, lambda s: s.update(predicate={})))
    with pytest.raises(VerificationError):
        tampered.verify([sslib_key], 1)


def test_securesystemslib_envelope_verifies_with_assay():
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner, SSlibKey

    key = attest.generate_key()
    public = SSlibKey.from_crypto(key.public_key(), keyid=attest.keyid(key.public_key()))
    signer = CryptoSigner(key, public)
    env = Envelope(attest.canonical_json(_stmt()), attest.PAYLOAD_TYPE, {})
    env.sign(signer)
    ok = attest.verify_envelope(env.to_dict(), [key.public_key()])
    attest.require_subject(ok, MODEL)
    with pytest.raises(attest.AttestationInvalid) as err:
        attest.verify_envelope(env.to_dict(), [attest.generate_key().public_key()])
    assert err.value.reason == "untrusted_key"


# --------------------------------------------------------------------------- offline script


def _script(*args: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def test_documented_script_verifies_and_refuses(tmp_path):
    assert len(SCRIPT.read_text().splitlines()) <= 30
    key = attest.generate_key()
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(b"model bytes")
    import hashlib

    digest = hashlib.sha256(b"model bytes").hexdigest()
    env = attest.sign_statement(_stmt(digest), key)
    pub = tmp_path / "k.pub"
    pub.write_text(attest.public_pem(key))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(env))
    run = _script(good, pub, artifact)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("OK " + attest.CERTIFICATION)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_tamper_payload(env, lambda s: s.update(predicate={}))))
    run = _script(bad, pub)
    assert run.returncode == 1 and "INVALID" in run.stderr
    other = tmp_path / "other.bin"
    other.write_bytes(b"another model")
    run = _script(good, pub, other)
    assert run.returncode == 1 and "subject" in run.stderr
    stranger = tmp_path / "s.pub"
    stranger.write_text(attest.public_pem(attest.generate_key()))
    assert _script(good, stranger).returncode == 1
