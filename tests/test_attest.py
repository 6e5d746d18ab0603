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


# --------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A model certified by ``assay certify --sign-key``: its files and the signing key."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    from _results import frame
    from assay.cli import main

    d = tmp_path_factory.mktemp("signed")
    df = frame()
    model = LogisticRegression().fit(df[["x1", "x2"]], df["y"])
    paths = {"model": d / "model.joblib", "data": d / "eval.csv", "key": d / "ci.pem",
             "pub": d / "ci.pub", "out": d / "out"}
    joblib.dump(model, paths["model"])
    df[["x1", "x2", "sex", "y"]].to_csv(paths["data"], index=False)
    key = attest.generate_key()
    paths["key"].write_bytes(attest.private_pem(key))
    paths["pub"].write_text(attest.public_pem(key))
    try:
        main(["certify", "--policy", "default", "--tier", "low", "--data", str(paths["data"]),
              "--target", "y", "--model", str(paths["model"]), "--sensitive", "sex",
              "--features", "x1,x2", "--out", str(paths["out"]), "--no-progress",
              "--sign-key", str(paths["key"])])
    except SystemExit as exc:
        assert exc.code in (0, 1, None)
    return paths


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    from assay.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def test_certify_sign_key_writes_a_verifiable_attestation(certified, capsys):
    import hashlib

    out = certified["out"]
    env_path = out / "results.intoto.json"
    results = json.loads((out / "results.json").read_text())
    ok = attest.verify_envelope(env_path.read_bytes(),
                                [attest.load_public_key(certified["pub"])])
    pred = ok.predicate
    assert ok.subject_digests() == [results["model"]["sha256"]]
    assert pred["verdict"] == results["status"]
    assert pred["results"]["sha256"] == hashlib.sha256(
        (out / "results.json").read_bytes()).hexdigest()
    assert pred["policy"] == {k: results["policy"][k] for k in ("name", "version", "tier",
                                                                "sha256")}
    assert pred["data"]["evaluation"]["sha256"] == results["data"]["evaluation"]["sha256"]
    assert pred["assayVersion"] == results["assay_version"]
    run = _script(env_path, certified["pub"], certified["model"])
    assert run.returncode == 0, run.stderr


def test_attest_sign_and_verify_exit_codes(certified, tmp_path, capsys):
    import hashlib

    env = tmp_path / "e.json"
    code, out, err = _cli(["attest", "sign", str(certified["out"] / "results.json"), "--key",
                           str(certified["key"]), "--out", str(env)], capsys)
    assert code == 0, err
    pub, model = str(certified["pub"]), str(certified["model"])
    code, out, _ = _cli(["attest", "verify", str(env), "--public-key", pub, "--subject", model],
                        capsys)
    assert code == 0 and "valid" in out and attest.CERTIFICATION in out
    code, out, _ = _cli(["attest", "verify", str(env), "--public-key", pub, "--format", "json"],
                        capsys)
    doc = json.loads(out)
    assert code == 0 and doc["valid"] is True
    assert doc["statement"]["predicate"]["results"]["sha256"] == hashlib.sha256(
        (certified["out"] / "results.json").read_bytes()).hexdigest()
    # invalid: exit 1 with the reason
    other = tmp_path / "other.bin"
    other.write_bytes(b"another model")
    code, _, err = _cli(["attest", "verify", str(env), "--public-key", pub, "--subject",
                         str(other)], capsys)
    assert code == 1 and "attestation invalid (subject)" in err
    tampered = tmp_path / "t.json"
    tampered.write_text(json.dumps(_tamper_payload(json.loads(env.read_text()),
                                                   lambda s: s["predicate"].update(
                                                       verdict="passed"))))
    code, _, err = _cli(["attest", "verify", str(tampered), "--public-key", pub], capsys)
    assert code == 1 and "(signature)" in err
    stranger = tmp_path / "s.pub"
    stranger.write_text(attest.public_pem(attest.generate_key()))
    code, _, err = _cli(["attest", "verify", str(env), "--public-key", str(stranger)], capsys)
    assert code == 1 and "(untrusted_key)" in err
    retyped = tmp_path / "r.json"
    retyped.write_text(json.dumps({**json.loads(env.read_text()), "payloadType": "text/plain"}))
    code, _, err = _cli(["attest", "verify", str(retyped), "--public-key", pub], capsys)
    assert code == 1 and "(payload_type)" in err
    # bad input: exit 2, one line, no traceback
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    for args in (["attest", "verify", str(junk), "--public-key", pub],
                 ["attest", "verify", str(env), "--public-key", str(certified["key"])],
                 ["attest", "verify", str(tmp_path / "missing.json"), "--public-key", pub],
                 ["attest", "sign", str(certified["out"] / "results.json"), "--key", pub,
                  "--out", str(tmp_path / "x.json")],
                 ["attest", "sign", str(junk), "--key", str(certified["key"]), "--out",
                  str(tmp_path / "x.json")]):
        code, _, err = _cli(args, capsys)
        assert code == 2, (args, err)
        assert "Traceback" not in err and err.strip().startswith("error:"), err


def test_signing_predictions_without_a_model_says_why(tmp_path, capsys):
    from _results import genuine_results

    results = genuine_results(tmp_path / "run")
    key = tmp_path / "k.pem"
    key.write_bytes(attest.private_pem(attest.generate_key()))
    code, _, err = _cli(["attest", "sign", str(results), "--key", str(key), "--out",
                         str(tmp_path / "e.json")], capsys)
    assert code == 2 and "no model digest to attest" in err


def test_the_documented_script_is_the_one_tested():
    doc = (SCRIPT.parent / "attestations.md").read_text()
    assert SCRIPT.read_text().strip() in doc


@pytest.mark.parametrize("payload, says", [
    (b"not json", "not JSON"),
    (b'{"_type": "https://in-toto.io/Statement/v0.1"}', "expected an in-toto Statement"),
    (b'{"_type": "https://in-toto.io/Statement/v1", "subject": []}', "no subject"),
    (b'{"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "m"}]}',
     "no sha256 digest"),
])
def test_a_signed_payload_that_is_no_statement_is_refused(payload, says):
    key = attest.generate_key()
    env = {"payloadType": attest.PAYLOAD_TYPE,
           "payload": base64.b64encode(payload).decode(),
           "signatures": [{"keyid": attest.keyid(key.public_key()),
                           "sig": base64.b64encode(key.sign(attest.pae(attest.PAYLOAD_TYPE,
                                                                       payload))).decode()}]}
    with pytest.raises(attest.AttestationInvalid, match=says) as err:
        attest.verify_envelope(env, [key.public_key()])
    assert err.value.reason == "statement"
