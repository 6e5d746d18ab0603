"""A recorded certification is verified against the policy it names, not believed.

The attacks of the insider probe (a results.json whose status was edited, a
minimal object, a check removed, a threshold loosened, a policy the store does
not know or an edited copy of one) are each refused with a clear 4xx through
the API and exit 2 through the CLI, on SQLite and PostgreSQL, with nothing
stored; a genuine results.json written by ``assay certify`` is accepted.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from _results import consistent_results, frame, genuine_results
from assay import registry
from assay.api.app import create_app
from assay.auth import service as auth
from assay.cli import main
from assay.errors import ConflictError, InputError
from assay.evidence import digest_bytes, has_artifact, open_artifact
from assay.policy import SHIPPED_DIR, load_policy
from assay.registry.results import verify_results
from assay.registry.tables import Certification, RegisteredPolicy
from assay.store import Store
from assay.store.audit import AuditEvent, list_events, verify_chain

MODEL, VERSION = "credit-pd", "1.0"
RECORD = f"/api/models/{MODEL}/versions/{VERSION}/certifications"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Real results.json documents from ``certify`` (default policy, tier low): ``good``
    (passed with warnings: drift is skipped) and ``bad`` (blocked: a random score)."""
    out = tmp_path_factory.mktemp("runs")
    bad = frame()
    rng = np.random.default_rng(1)
    bad["score"] = rng.random(len(bad))
    bad["pred"] = (bad["score"] >= 0.5).astype(int)
    docs = {}
    for name, data in (("good", frame()), ("bad", bad)):
        docs[name] = json.loads(genuine_results(out / name, data=data).read_text())
    assert docs["good"]["status"] == "passed_with_warnings"
    assert docs["bad"]["status"] == "blocked"
    return docs


@pytest.fixture
def people(db: Store) -> Store:
    with db.transaction() as s:
        admin = registry.add_user(s, None, "ada")
        registry.add_user(s, admin, "vic", roles=["validator"])
        registry.add_user(s, admin, "dana", roles=["data_scientist"])
        registry.add_user(s, admin, "aud", roles=["auditor"])
        dana = registry.get_user(s, "dana")
        registry.register_model(s, dana, MODEL, owner="dana", decision_type="automated",
                                criticality="high")
        registry.add_version(s, dana, MODEL, VERSION)
    return db


@pytest.fixture
def api(people: Store) -> Callable[..., Any]:
    with people.transaction() as s:
        admin = registry.get_user(s, "ada")
        tokens = {u: auth.create_token(s, admin, u, "tests")[1]
                  for u in ("ada", "vic", "dana", "aud")}
    client = TestClient(create_app(people.settings, store=people))

    def call(user: str, method: str, path: str, **kw: Any) -> Any:
        return client.request(method, path, headers={"Authorization": f"Bearer {tokens[user]}"},
                              **kw)

    return call


def _state(db: Store) -> tuple[int, int, int]:
    with db.transaction() as s:
        return (s.scalar(select(func.count()).select_from(Certification)),
                s.scalar(select(func.count()).select_from(AuditEvent)),
                s.scalar(select(func.count()).select_from(RegisteredPolicy)))


def _raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2).encode()


def _recount(doc: dict[str, Any]) -> None:
    doc["summary"] = {k: sum(1 for c in doc["checks"] if c["status"] == k)
                      for k in ("pass", "warn", "fail", "skip", "error")}


def _first(doc: dict[str, Any], check_id: str) -> int:
    return next(i for i, c in enumerate(doc["checks"]) if c["id"] == check_id)


# --------------------------------------------------------------------------- the attacks

def edited_status(runs, tmp_path):
    doc = copy.deepcopy(runs["bad"])
    doc["status"] = "passed"
    return doc, (400, "results.json status 'passed' but its checks give 'blocked' under policy "
                      "'default' tier 'low' (checks[3] performance.roc_auc is fail)")


def edited_check_status(runs, tmp_path):
    doc = copy.deepcopy(runs["bad"])
    for c in doc["checks"]:
        if c["status"] == "fail":
            c["status"] = "pass"
    _recount(doc)
    doc["status"] = "passed_with_warnings"
    return doc, (400, "results.json checks[3] performance.roc_auc: status 'pass' but its "
                      "measurements, judged against the threshold >= 0.6 with severity "
                      "'block', give 'fail'")


def edited_measurement(runs, tmp_path):
    doc = copy.deepcopy(runs["bad"])
    i = _first(doc, "performance.roc_auc")
    for m in doc["checks"][i]["measurements"]:
        m["status"] = "pass"
    doc["checks"][i]["status"] = "pass"
    return doc, (400, "results.json checks[3] performance.roc_auc measurements[0] (overall): "
                      "status \"pass\" but value")


def minimal_object(runs, tmp_path):
    policy = {k: runs["good"]["policy"][k] for k in ("name", "version", "tier", "sha256")}
    return {"status": "passed", "policy": policy, "checks": []}, (
        400, "results.json checks: check 'integrity.missing_values' of policy 'default' tier "
             "'low' (default.yaml:")


def check_removed(runs, tmp_path):
    doc = copy.deepcopy(runs["bad"])
    del doc["checks"][_first(doc, "performance.roc_auc")]
    del doc["checks"][_first(doc, "performance.balanced_accuracy")]
    _recount(doc)
    doc["status"] = "passed_with_warnings"
    return doc, (400, "results.json checks: check 'performance.roc_auc' of policy 'default' "
                      "tier 'low' (default.yaml:")


def threshold_loosened(runs, tmp_path):
    doc = copy.deepcopy(runs["bad"])
    for c in doc["checks"]:
        if c["id"] in ("performance.roc_auc", "performance.balanced_accuracy"):
            c["threshold"] = {"min": 0.4}
            c["status"] = "pass"
            for m in c["measurements"]:
                m["status"] = "pass"
    _recount(doc)
    doc["status"] = "passed_with_warnings"
    return doc, (400, "results.json checks[3] performance.roc_auc: threshold {\"min\": 0.4} but "
                      "the policy states >= 0.6 (default.yaml:")


def severity_lowered(runs, tmp_path):
    doc = copy.deepcopy(runs["bad"])
    i = _first(doc, "performance.roc_auc")
    doc["checks"][i]["severity"] = "warn"
    return doc, (400, "results.json checks[3] performance.roc_auc: severity 'warn' but the "
                      "policy states 'block'")


def summary_edited(runs, tmp_path):
    doc = copy.deepcopy(runs["good"])
    doc["summary"]["skip"] = 0
    doc["summary"]["pass"] += 1
    return doc, (400, "results.json summary.pass: 7 but the checks hold 6 with status 'pass'")


def settings_edited(runs, tmp_path):
    doc = copy.deepcopy(runs["good"])
    doc["settings"]["on_skip"] = "warn" if doc["settings"]["on_skip"] == "block" else "block"
    return doc, (400, "results.json settings: expected the settings of policy 'default'")


def unknown_policy(runs, tmp_path):
    custom = _custom_policy(tmp_path)
    doc = copy.deepcopy(runs["good"])
    doc["policy"].update(name="house", version="7", sha256=hashlib.sha256(
        custom.read_bytes()).hexdigest())
    return doc, (409, "results.json policy: policy 'house' version 7 (sha256:")


def edited_policy(runs, tmp_path):
    doc = copy.deepcopy(runs["bad"])
    edited = (SHIPPED_DIR / "default.yaml").read_text().replace("min: 0.6", "min: 0.4")
    doc["policy"]["sha256"] = hashlib.sha256(edited.encode()).hexdigest()
    return doc, (409, "results.json policy: policy 'default' version 1.0 is known as sha256:")


def renamed_policy(runs, tmp_path):
    doc = copy.deepcopy(runs["good"])
    doc["policy"]["version"] = "2.0"
    return doc, (409, "results.json policy: the results name policy 'default' version 2.0, but "
                      "the policy file sha256:")


ATTACKS = [edited_status, edited_check_status, edited_measurement, minimal_object,
           check_removed, threshold_loosened, severity_lowered, summary_edited, settings_edited,
           unknown_policy, edited_policy, renamed_policy]


def _custom_policy(folder: Path, *, version: str = "7", auc: float = 0.6) -> Path:
    doc = yaml.safe_load((SHIPPED_DIR / "default.yaml").read_text())
    doc.update(name="house", version=version)
    for c in doc["tiers"]["low"]["checks"]:
        if c["id"] == "performance.roc_auc":
            c["threshold"] = {"min": auc}
    path = folder / f"house-{version}-{auc}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda f: f.__name__)
def test_api_refuses_results_that_are_not_what_the_policy_gives(api, people, runs, tmp_path,
                                                                 attack) -> None:
    doc, (code, message) = attack(runs, tmp_path)
    raw = _raw(doc)
    before = _state(people)
    resp = api("vic", "POST", RECORD, files={"results": ("results.json", raw),
                                             "report": ("report.html", b"<html>x</html>")})
    assert resp.status_code == code, resp.text
    assert message in resp.json()["error"]["message"], resp.json()["error"]["message"]
    assert _state(people) == before
    assert not has_artifact(people.settings, digest_bytes(raw))
    assert not has_artifact(people.settings, digest_bytes(b"<html>x</html>"))


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda f: f.__name__)
def test_cli_refuses_results_that_are_not_what_the_policy_gives(people, runs, tmp_path, capsys,
                                                                attack) -> None:
    doc, (_code, message) = attack(runs, tmp_path)
    path = tmp_path / "run" / "results.json"
    path.parent.mkdir()
    path.write_bytes(_raw(doc))
    before = _state(people)
    with pytest.raises(SystemExit) as exc:
        main(["model", "record", MODEL, VERSION, "--results", str(path.parent), "--as", "vic"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert message in " ".join(err.split()), err
    assert lines and lines[0].startswith("error: results.json")
    assert _state(people) == before
    assert not has_artifact(people.settings, digest_bytes(path.read_bytes()))


# --------------------------------------------------------------------------- genuine results

def test_api_accepts_a_genuine_results_json(api, people, runs) -> None:
    for name in ("bad", "good"):
        raw = _raw(runs[name])
        resp = api("vic", "POST", RECORD, files={"results": ("results.json", raw)})
        assert resp.status_code == 201, resp.text
        cert = resp.json()
        assert cert["status"] == runs[name]["status"]
        assert cert["policy_digest"] == "sha256:" + load_policy("default").sha256
        assert open_artifact(people.settings, cert["results_digest"]) == raw
    listed = api("aud", "GET", RECORD).json()
    assert [c["status"] for c in listed] == ["passed_with_warnings", "blocked"]


def test_cli_accepts_a_genuine_results_json(people, tmp_path, capsys) -> None:
    results = genuine_results(tmp_path / "run")  # results.json and report.html
    main(["model", "record", MODEL, VERSION, "--results", str(results.parent), "--as", "dana"])
    out = capsys.readouterr().out
    assert "passed_with_warnings" in out
    with people.transaction() as s:
        (cert,) = registry.list_certifications(s, registry.get_version(s, MODEL, VERSION).id)
        assert cert.status == "passed_with_warnings" and cert.report_digest
        (ev,) = list_events(s, action="certification.record")
        assert ev.evidence["results"] == digest_bytes(results.read_bytes())
        assert verify_chain(s).ok


# --------------------------------------------------------------------------- custom policies

def test_a_custom_policy_is_known_once_registered(people, tmp_path, capsys) -> None:
    policy = _custom_policy(tmp_path)
    results = genuine_results(tmp_path / "run", policy=policy)
    record = ["model", "record", MODEL, VERSION, "--results", str(results), "--as", "vic"]
    with pytest.raises(SystemExit) as exc:
        main(record)
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.code == 2
    assert "policy 'house' version 7" in err and "is not a policy this store knows" in err
    assert "`assay policy register FILE`" in err

    # a data scientist may not register policies; a validator may
    before = _state(people)
    with pytest.raises(SystemExit) as exc:
        main(["policy", "register", str(policy), "--as", "dana"])
    assert exc.value.code == 2 and "may not register policies" in capsys.readouterr().err
    assert _state(people) == before
    main(["policy", "register", str(policy), "--as", "vic"])
    assert "policy house version 7 is registered" in capsys.readouterr().out
    main(["policy", "register", str(policy), "--as", "vic"])  # the same file: nothing new
    capsys.readouterr()
    with people.transaction() as s:
        (ev,) = list_events(s, action="policy.register")
        digest = "sha256:" + hashlib.sha256(policy.read_bytes()).hexdigest()
        assert ev.actor == "vic" and ev.evidence == {"policy": digest}
        assert ev.subject_id == "house@7"
    assert open_artifact(people.settings, digest) == policy.read_bytes()

    main(record)
    assert "recorded certification #1" in capsys.readouterr().out
    main(["policy", "registered", "-f", "json"])
    listed = json.loads(capsys.readouterr().out)
    assert {(p["name"], p["version"]) for p in listed} >= {("house", "7"), ("default", "1.0")}

    # another file under the same name and version is refused: it needs a new version
    loosened = _custom_policy(tmp_path, auc=0.3)
    with pytest.raises(SystemExit) as exc:
        main(["policy", "register", str(loosened), "--as", "vic"])
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.code == 2 and "already registered with other content" in err
    # and results made under it name a file the store does not know
    doc = json.loads(results.read_text())
    doc["policy"]["sha256"] = hashlib.sha256(loosened.read_bytes()).hexdigest()
    with people.transaction() as s, pytest.raises(Exception, match="the policy file was edited"):
        registry.record_certification(s, registry.get_user(s, "vic"), MODEL, VERSION, None,
                                      _raw(doc))


def test_policy_registration_through_the_api(api, people, tmp_path) -> None:
    policy = _custom_policy(tmp_path)
    files = {"file": ("house.yaml", policy.read_bytes())}
    for user in ("aud", "dana"):
        resp = api(user, "POST", "/api/policies", files=files)
        assert resp.status_code == 403, resp.text
    assert _state(people)[2] == 0
    resp = api("vic", "POST", "/api/policies", files={"file": ("bad.yaml", b"name: x\n")})
    assert resp.status_code == 422 and "bad.yaml" in resp.json()["error"]["message"]
    resp = api("vic", "POST", "/api/policies",
               files={"file": ("default.yaml", (SHIPPED_DIR / "default.yaml").read_bytes())})
    assert resp.status_code == 409 and "shipped" in resp.json()["error"]["message"]
    resp = api("ada", "POST", "/api/policies", files=files)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["name"], body["version"], body["registered_by"]) == ("house", "7", "ada")
    listed = api("aud", "GET", "/api/policies").json()
    assert [p["name"] for p in listed if not p["shipped"]] == ["house"]
    assert {"default", "credit-lending"} <= {p["name"] for p in listed if p["shipped"]}


# --------------------------------------------------------------------------- the rule itself

def test_verification_reuses_the_frameworks_judging() -> None:
    """A consistent document passes; flipping any one judged fact is caught."""
    policy = load_policy("credit-lending")
    doc = consistent_results(policy, "high", failed=("integrity.duplicates",))
    assert verify_results(doc, policy, "high") == "passed_with_warnings"
    # a failed warn-severity check warns; calling it a failure is as wrong as calling it a pass
    i = _first(doc, "integrity.duplicates")
    for status in ("fail", "pass"):
        bad = copy.deepcopy(doc)
        bad["checks"][i]["status"] = status
        _recount(bad)
        with pytest.raises(InputError, match=rf"checks\[{i}\] integrity.duplicates: status "
                                             rf"'{status}' but its measurements"):
            verify_results(bad, policy, "high")
    # a check in a different order than the policy's
    swapped = copy.deepcopy(doc)
    swapped["checks"][0], swapped["checks"][1] = swapped["checks"][1], swapped["checks"][0]
    with pytest.raises(InputError, match=r"checks\[0\]: expected check 'integrity.missing_"):
        verify_results(swapped, policy, "high")
    # a check the policy does not have
    extra = copy.deepcopy(doc)
    extra["checks"].append(copy.deepcopy(extra["checks"][0]) | {"id": "performance.f1"})
    n = len(doc["checks"])  # the appended check's index: the tier's number of checks
    with pytest.raises(InputError, match=rf"checks\[{n}\] performance.f1: not a check of "
                                         "policy"):
        verify_results(extra, policy, "high")
    # an error holds no measurements
    errored = copy.deepcopy(doc)
    errored["checks"][0]["status"] = "error"
    with pytest.raises(InputError, match="status 'error' but it holds judged measurements"):
        verify_results(errored, policy, "high")


def test_a_registered_policy_file_is_evidence_the_store_keeps(people, tmp_path) -> None:
    from assay.evidence import artifact_path
    from assay.evidence.check import check_evidence

    policy = _custom_policy(tmp_path)
    with people.transaction() as s:
        row = registry.register_policy(s, registry.get_user(s, "ada"), policy.read_bytes(),
                                       source="house.yaml")
        digest = row.digest
    with people.transaction() as s:
        assert check_evidence(s, people.settings).ok
    path = artifact_path(people.settings, digest)
    path.chmod(0o644)
    path.unlink()
    with people.transaction() as s:
        result = check_evidence(s, people.settings)
    assert result.missing == [f"{digest} (registered policy house version 7)"]


def test_an_edited_shipped_policy_cannot_be_registered_under_its_name(people, tmp_path) -> None:
    edited = (SHIPPED_DIR / "default.yaml").read_text().replace("min: 0.6", "min: 0.4")
    before = _state(people)
    with people.transaction() as s, pytest.raises(
            ConflictError, match=r"policy 'default' version 1.0 is shipped with assay "
                                 r"\(default.yaml\) with other content"):
        registry.register_policy(s, registry.get_user(s, "ada"), edited.encode(),
                                 source="default.yaml")
    assert _state(people) == before
    assert not has_artifact(people.settings, digest_bytes(edited.encode()))
