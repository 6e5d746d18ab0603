"""MLflow's model registry: certify a registered version, write the certification back,
mirror the registry into the inventory, set an alias through the deployment gate.

Against a real MLflow store (SQLite, built once per session by ``_mlflow.build_store``;
each test works on a copy) and, for the REST path, a real ``mlflow server`` on loopback.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from _mlflow import GIT_COMMIT, MODEL, TRAIN_SOURCE, MlflowStore, build_store, copy_store
from assay.cli import main
from assay.store import Store
from assay.store.audit import AuditEvent

pytestmark = pytest.mark.filterwarnings("ignore")

CERTIFY = ("certify", "--policy", "default", "--tier", "medium", "--target", "default",
           "--sensitive", "sex", "--no-progress")


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> MlflowStore:
    return build_store(tmp_path_factory.mktemp("mlflow-template"))


@pytest.fixture
def ml(mlflow_template: MlflowStore, tmp_path: Path, monkeypatch) -> MlflowStore:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    # a new experiment's artefacts go under ./mlruns, as MLflow decides: here, not the repo
    monkeypatch.chdir(tmp_path)
    return copy_store(mlflow_template, tmp_path / "mlflow")


def client(store: MlflowStore):
    from mlflow import MlflowClient

    return MlflowClient(store.uri, store.uri)


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _key(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return path


def _sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- certify


def test_certify_a_registered_version_and_write_it_back(ml: MlflowStore, capsys, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run(capsys, *CERTIFY, "--data", str(ml.data), "--model",
                            f"models:/{MODEL}/1", "--mlflow-uri", ml.uri, "--out", str(out),
                            "--sign-key", str(_key(tmp_path / "key.pem")))
    assert code == 0, stdout + err
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "passed_with_warnings"
    assert results["model"]["name"] == f"models:/{MODEL}/1"
    assert results["model"]["kind"] == "sklearn LogisticRegression"
    # scores came from predict_proba: the sklearn flavour was loaded, not pyfunc
    assert any(c["id"] == "performance.roc_auc" and c["status"] == "pass"
               for c in results["checks"])

    mv = client(ml).get_model_version(MODEL, "1")
    tags = mv.tags
    assert tags["assay.verdict"] == "passed_with_warnings"
    assert tags["assay.policy"] == "default"
    assert tags["assay.policy.tier"] == "medium"
    assert tags["assay.policy.digest"] == "sha256:" + results["policy"]["sha256"]
    assert tags["assay.results.digest"] == _sha(out / "results.json")
    assert tags["assay.model.digest"] == "sha256:" + results["model"]["sha256"]
    assert tags["assay.run_id"] == mv.run_id  # logged to the version's own run
    logged = {f.path for f in client(ml).list_artifacts(mv.run_id, "assay")}
    assert logged == {"assay/results.json", "assay/report.html", "assay/results.intoto.json"}
    # the logged results.json is the file written, byte for byte
    from mlflow.artifacts import download_artifacts

    got = Path(download_artifacts(run_id=mv.run_id, artifact_path="assay/results.json",
                                  dst_path=str(tmp_path / "dl"), tracking_uri=ml.uri))
    assert _sha(got) == _sha(out / "results.json")
    assert "tagged passed_with_warnings" in err
    # version 2 was not touched
    assert not any(k.startswith("assay.") for k in client(ml).get_model_version(MODEL, "2").tags)


def test_the_model_digest_is_the_flavours_model_file(ml: MlflowStore, tmp_path):
    from assay.integrations.mlflow import load_model

    adapter = load_model(f"models:/{MODEL}/1", tracking_uri=ml.uri)
    assert adapter.has_proba and adapter.mlflow.flavor == "sklearn (skops)"
    source = client(ml).get_model_version_download_uri(MODEL, "1")
    from mlflow.artifacts import download_artifacts

    local = Path(download_artifacts(artifact_uri=source, dst_path=str(tmp_path / "m"),
                                    tracking_uri=ml.uri))
    assert "sha256:" + adapter.digest == _sha(local / "model.skops")


def test_a_blocked_version_by_alias_exits_1_and_is_tagged_blocked(ml: MlflowStore, capsys,
                                                                   tmp_path):
    client(ml).set_registered_model_alias(MODEL, "challenger", "2")
    out = tmp_path / "out"
    code, stdout, err = run(capsys, *CERTIFY, "--data", str(ml.data), "--model",
                            f"models:/{MODEL}@challenger", "--mlflow-uri", ml.uri,
                            "--out", str(out))
    assert code == 1, stdout + err
    assert json.loads((out / "results.json").read_text())["model"]["name"] == \
        f"models:/{MODEL}/2"
    mv = client(ml).get_model_version(MODEL, "2")
    assert mv.tags["assay.verdict"] == "blocked"
    assert mv.tags["assay.results.digest"] == _sha(out / "results.json")


def test_no_publish_leaves_the_registry_alone(ml: MlflowStore, capsys, tmp_path):
    code, stdout, err = run(capsys, *CERTIFY, "--data", str(ml.data), "--model",
                            f"models:/{MODEL}/1", "--mlflow-uri", ml.uri, "--out",
                            str(tmp_path / "out"), "--no-publish")
    assert code == 0, stdout + err
    assert not any(k.startswith("assay.") for k in client(ml).get_model_version(MODEL, "1").tags)


def test_python_api_reads_the_uri_from_the_environment(ml: MlflowStore, monkeypatch):
    from assay.certification import certify

    monkeypatch.setenv("MLFLOW_TRACKING_URI", ml.uri)
    cert = certify(data=ml.data, policy="default", tier="medium", target="default",
                   model=f"models:/{MODEL}/2", sensitive=["sex"])
    assert cert.status == "blocked"
    assert cert.model["name"] == f"models:/{MODEL}/2"


def test_publish_command_to_a_version_without_a_run(ml: MlflowStore, capsys, tmp_path):
    """A version registered from a path (no run) gets a new assay run holding the evidence."""
    c = client(ml)
    source = c.get_model_version_download_uri(MODEL, "1")
    c.create_model_version(MODEL, source)  # version 3, no run
    out = tmp_path / "out"
    assert run(capsys, *CERTIFY, "--data", str(ml.data), "--model", f"models:/{MODEL}/1",
               "--mlflow-uri", ml.uri, "--out", str(out), "--no-publish")[0] == 0
    code, stdout, err = run(capsys, "mlflow", "publish", MODEL, "3", "--results", str(out),
                            "--uri", ml.uri)
    assert code == 0, stdout + err
    mv = c.get_model_version(MODEL, "3")
    assert mv.tags["assay.verdict"] == "passed_with_warnings"
    new_run = c.get_run(mv.tags["assay.run_id"])
    assert new_run.data.tags["assay.model"] == MODEL
    assert new_run.data.tags["assay.model_version"] == "3"
    assert {f.path for f in c.list_artifacts(new_run.info.run_id, "assay")} == \
        {"assay/results.json", "assay/report.html"}


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("model, uri, expected", [
    ("models:/nope/1", None, "no registered model 'nope'"),
    (f"models:/{MODEL}/9", None, f"model '{MODEL}' has no version 9 (versions: 1, 2)"),
    (f"models:/{MODEL}@champion", None, f"model '{MODEL}' has no alias 'champion'"),
    (f"models:/{MODEL}", None, "expected models:/NAME/VERSION"),
    (f"models:/{MODEL}/1", "sqlite:////nonexistent/mlflow.db", "no such SQLite file"),
    (f"models:/{MODEL}/1", "ftp://example.org", "unknown scheme"),
    (f"models:/{MODEL}/1", "closed-port", "does not answer"),
    (f"models:/{MODEL}/1", "", "no MLflow tracking URI: pass --mlflow-uri"),
])
def test_bad_registry_input_is_one_line_and_exit_2(ml: MlflowStore, capsys, tmp_path, model,
                                                   uri, expected):
    if uri == "closed-port":
        uri = f"http://127.0.0.1:{_free_port()}"
    args = [*CERTIFY, "--data", str(ml.data), "--model", model, "--out", str(tmp_path / "o")]
    if uri is None:
        args += ["--mlflow-uri", ml.uri]
    elif uri:
        args += ["--mlflow-uri", uri]
    code, stdout, err = run(capsys, *args)
    assert code == 2, stdout + err
    assert expected in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "o").exists()


def test_publish_bad_input(ml: MlflowStore, capsys, tmp_path):
    code, _, err = run(capsys, "mlflow", "publish", MODEL, "1", "--results",
                       str(tmp_path / "missing"), "--uri", ml.uri)
    assert code == 2 and "results folder not found" in err
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "results.json").write_text("{not json")
    code, _, err = run(capsys, "mlflow", "publish", MODEL, "1", "--results",
                       str(tmp_path / "r"), "--uri", ml.uri)
    assert code == 2 and "expected a results.json file" in err
    code, _, err = run(capsys, "mlflow", "publish", MODEL, "latest", "--results",
                       str(tmp_path / "r"), "--uri", ml.uri)
    assert code == 2 and "expected an MLflow version number" in err


def test_publish_refuses_results_of_another_model(ml: MlflowStore, capsys, tmp_path):
    out = tmp_path / "v2"
    assert run(capsys, *CERTIFY, "--data", str(ml.data), "--model", f"models:/{MODEL}/2",
               "--mlflow-uri", ml.uri, "--out", str(out), "--no-publish")[0] == 1
    code, _, err = run(capsys, "mlflow", "publish", MODEL, "1", "--results", str(out),
                       "--uri", ml.uri)
    assert code == 2 and "these results are not of this version" in err, err
    by_columns = tmp_path / "cols"
    import pandas as pd

    frame = pd.read_parquet(ml.data).assign(pred=0)
    frame.to_parquet(tmp_path / "cols.parquet")
    assert run(capsys, "certify", "--policy", "default", "--tier", "medium", "--target",
               "default", "--prediction", "pred", "--data", str(tmp_path / "cols.parquet"),
               "--out", str(by_columns), "--no-progress")[0] in (0, 1)
    code, _, err = run(capsys, "mlflow", "publish", MODEL, "1", "--results", str(by_columns),
                       "--uri", ml.uri)
    assert code == 2 and "certifies no model" in err, err
    assert not any(k.startswith("assay.") for k in client(ml).get_model_version(MODEL, "1").tags)


# --------------------------------------------------------------------------- sync


def _events(store: Store) -> list[AuditEvent]:
    with store.transaction() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def _count(store: Store) -> int:
    with store.transaction() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent))


@pytest.fixture
def users(db: Store, people, monkeypatch) -> dict[str, str]:
    monkeypatch.delenv("ASSAY_USER", raising=False)
    return people


def test_sync_imports_lineage_and_is_idempotent(db: Store, users, ml: MlflowStore, capsys):
    from assay import registry
    from assay.integrations.mlflow_sync import mirrored

    code, out, err = run(capsys, "mlflow", "sync", "--uri", ml.uri, "--as", "dana",
                         "--owner", "bo", "--criticality", "high", "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["models_registered"] == [MODEL]
    assert report["imported"] == [f"{MODEL}@1", f"{MODEL}@2"]
    with db.transaction() as s:
        model = registry.get_model(s, MODEL)
        assert (model.owner.username, model.criticality) == ("bo", "high")
        v1 = registry.get_version(s, MODEL, "1")
        assert v1.code_revision == GIT_COMMIT
        assert TRAIN_SOURCE in v1.training_data_source
        assert registry.get_version(s, MODEL, "2").parent.version == "1"
        link = mirrored(s, MODEL, "1")
        assert link.run_id == client(ml).get_model_version(MODEL, "1").run_id
        assert link.metadata_["datasets"][0]["context"] == "training"
        assert link.metadata_["source"].startswith("models:/")
    actions = [e.action for e in _events(db)]
    assert actions.count("mlflow.version_link") == 2
    assert "model.register" in actions and actions.count("model.version_add") == 2

    before = _count(db)
    code, out, err = run(capsys, "mlflow", "sync", "--uri", ml.uri, "--as", "dana")
    assert code == 0, out + err
    assert "0 imported, 0 linked, 0 updated, 2 unchanged" in out
    assert _count(db) == before  # nothing changed, nothing recorded

    # a changed MLflow version: its run now names another commit
    run_id = client(ml).get_model_version(MODEL, "2").run_id
    client(ml).set_tag(run_id, "mlflow.source.git.commit", "f" * 40)
    code, out, err = run(capsys, "mlflow", "sync", "--uri", ml.uri, "--as", "dana",
                         "--name", MODEL, "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["updated"] == [f"{MODEL}@2"]
    events = _events(db)
    assert len(events) == before + 1
    assert events[-1].action == "mlflow.version_update"
    assert events[-1].payload["changes"]["git_commit"] == {"from": GIT_COMMIT, "to": "f" * 40}
    with db.transaction() as s:
        assert mirrored(s, MODEL, "2").metadata_["git_commit"] == "f" * 40
    from assay.store.audit import verify_chain

    with db.transaction() as s:
        assert verify_chain(s).ok


def test_sync_links_a_version_already_in_the_inventory(db: Store, users, ml, capsys):
    from assay import registry

    with db.transaction() as s:
        dana = registry.get_user(s, "dana")
        registry.register_model(s, dana, MODEL, owner="bo", decision_type="automated",
                                criticality="low")
        registry.add_version(s, dana, MODEL, "1")
    code, out, err = run(capsys, "mlflow", "sync", "--uri", ml.uri, "--as", "dana",
                         "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["models_registered"] == [] and report["linked"] == [f"{MODEL}@1"]
    assert report["imported"] == [f"{MODEL}@2"]


def test_sync_needs_a_model_writer_and_writes_nothing_otherwise(db: Store, users, ml, capsys):
    before = _count(db)
    for who in ("audrey", "victor"):
        code, _out, err = run(capsys, "mlflow", "sync", "--uri", ml.uri, "--as", who)
        assert code == 2 and "may not import models from MLflow" in err, err
    code, _, err = run(capsys, "mlflow", "sync", "--uri", ml.uri)
    assert code == 2 and "no acting user" in err
    code, _, err = run(capsys, "mlflow", "sync", "--uri", ml.uri, "--as", "dana",
                       "--name", "nope")
    assert code == 2 and "no registered model 'nope'" in err
    code, _, err = run(capsys, "mlflow", "sync", "--as", "dana")
    assert code == 2 and "pass --uri or set MLFLOW_TRACKING_URI" in err
    code, _, err = run(capsys, "mlflow", "sync", "--uri", ml.uri, "--as", "dana",
                       "--criticality", "huge")
    assert code == 2 and "--criticality 'huge': expected one of low, medium" in err
    assert _count(db) == before


def test_mirror_table_matches_its_migration(db: Store):
    from _schema import schema_diffs

    assert schema_diffs(db.engine, {"mlflow_versions"}) == []


# --------------------------------------------------------------------------- promote


@pytest.fixture
def workflow_env(db: Store, tmp_path: Path, ml: MlflowStore, capsys, monkeypatch):
    """test_workflow's users and policy, with MLflow model ``scorer`` (version 1 sharing
    credit's files and run) synced into the inventory by alice."""
    import test_workflow as W
    from assay import registry

    monkeypatch.delenv("ASSAY_USER", raising=False)
    c = client(ml)
    v1 = c.get_model_version(MODEL, "1")
    c.create_registered_model(W.MODEL)
    c.create_model_version(W.MODEL, c.get_model_version_download_uri(MODEL, "1"),
                           run_id=v1.run_id)
    policy = W.write_policy(tmp_path / "wf-test.yaml", W.WORKFLOW)
    with db.transaction() as s:
        admin = registry.add_user(s, None, "root")
        for name, roles in W.USERS.items():
            registry.add_user(s, admin, name, roles=roles)
        W.register(s, policy)
    from assay.evidence import store_bytes

    store_bytes(db.settings, W.DOC)  # the scope document the approval attaches
    code, out, err = run(capsys, "mlflow", "sync", "--uri", ml.uri, "--as", "alice",
                         "--name", W.MODEL, "--owner", "bea", "--decision-type", "automated",
                         "--criticality", "high")
    assert code == 0, out + err
    with db.transaction() as s:
        registry.set_model_tier(s, registry.get_user(s, "rita"), W.MODEL, "high")
    return W.Env(db, policy)


def test_promote_is_refused_until_the_gate_allows_it(workflow_env, ml: MlflowStore, capsys):
    import test_workflow as W

    db = workflow_env.store
    code, out, err = run(capsys, "mlflow", "promote", W.MODEL, "1", "--alias", "champion",
                         "--uri", ml.uri, "--as", "rob")
    assert code == 1, out + err
    assert "refused" in out and "not submitted for approval" in out
    assert "champion" not in client(ml).get_registered_model(W.MODEL).aliases
    assert _events(db)[-1].action == "mlflow.alias_refused"
    assert _events(db)[-1].payload["reasons"]

    W.approved(workflow_env, "1")
    assert workflow_env.read(W.wf.gate, "1").allowed
    code, out, err = run(capsys, "mlflow", "promote", W.MODEL, "1", "--alias", "champion",
                         "--uri", ml.uri, "--as", "rob")
    assert code == 0, out + err
    assert client(ml).get_registered_model(W.MODEL).aliases == {"champion": 1}
    last = _events(db)[-1]
    assert (last.action, last.actor, last.subject_id) == ("mlflow.alias_set", "rob",
                                                          f"{W.MODEL}@1")
    assert last.payload["allowed"] is True and last.evidence


def test_promote_roles_separation_and_a_changed_version(workflow_env, ml, capsys):
    import test_workflow as W
    from assay import registry

    db = workflow_env.store
    W.approved(workflow_env, "1")
    before = _count(db)
    for who in ("alice", "val", "aud"):  # developer, validator, auditor: not promoters
        code, _out, err = run(capsys, "mlflow", "promote", W.MODEL, "1", "--alias",
                             "champion", "--uri", ml.uri, "--as", who)
        assert code == 2 and "may not set MLflow aliases" in err, (who, err)
    with db.transaction() as s:  # the one who synced it may not promote it
        registry.grant_role(s, registry.get_user(s, "root"), "alice", "risk_officer")
    code, _out, err = run(capsys, "mlflow", "promote", W.MODEL, "1", "--alias", "champion",
                         "--uri", ml.uri, "--as", "alice")
    assert code == 2 and "separation of duties" in err
    code, _, err = run(capsys, "mlflow", "promote", W.MODEL, "7", "--alias", "champion",
                       "--uri", ml.uri, "--as", "rob")
    assert code == 2 and "has no version 7" in err
    code, _, err = run(capsys, "mlflow", "promote", MODEL, "1", "--alias", "champion",
                       "--uri", ml.uri, "--as", "rob")
    assert code == 2 and "run `assay mlflow sync` first" in err
    # the version's run changed in MLflow after it was synced and approved
    run_id = client(ml).get_model_version(W.MODEL, "1").run_id
    client(ml).set_tag(run_id, "mlflow.source.git.commit", "e" * 40)
    code, _, err = run(capsys, "mlflow", "promote", W.MODEL, "1", "--alias", "champion",
                       "--uri", ml.uri, "--as", "rob")
    assert code == 2 and "changed in MLflow since it was synced" in err
    assert "champion" not in client(ml).get_registered_model(W.MODEL).aliases
    assert _count(db) == before + 1  # the grant; no promotion was recorded


# --------------------------------------------------------------------------- REST


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(mlflow_template: MlflowStore, tmp_path_factory):
    """``mlflow server`` on loopback over a copy of the template store."""
    store = copy_store(mlflow_template, tmp_path_factory.mktemp("mlflow-server"))
    port = _free_port()
    log = open(store.root / "server.log", "w")  # noqa: SIM115 - open while the server runs
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", store.uri, "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        cwd=store.root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail("mlflow server exited:\n"
                            + (store.root / "server.log").read_text()[-3000:])
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not start in 120 s")
            time.sleep(0.5)
        yield MlflowStore(root=store.root, uri=url, data=store.data)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_over_rest_certify_write_back_and_sync(mlflow_server: MlflowStore, db: Store, users,
                                               capsys, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)  # no --mlflow-uri
    out = tmp_path / "out"
    code, stdout, err = run(capsys, *CERTIFY, "--data", str(mlflow_server.data), "--model",
                            f"models:/{MODEL}/2", "--out", str(out))
    assert code == 1, stdout + err  # version 2 is blocked
    c = MlflowClient(mlflow_server.uri, mlflow_server.uri)
    mv = c.get_model_version(MODEL, "2")
    assert mv.tags["assay.verdict"] == "blocked"
    assert mv.tags["assay.results.digest"] == _sha(out / "results.json")
    assert {f.path for f in c.list_artifacts(mv.run_id, "assay")} >= {"assay/results.json"}

    code, stdout, err = run(capsys, "mlflow", "sync", "--as", "dana", "--format", "json")
    assert code == 0, stdout + err
    assert json.loads(stdout)["imported"] == [f"{MODEL}@1", f"{MODEL}@2"]

    for model, expected in ((f"models:/{MODEL}/9", "has no version 9 (versions: 1, 2)"),
                            (f"models:/{MODEL}@gone", "has no alias 'gone'"),
                            ("models:/nope/1", "no registered model 'nope'")):
        code, stdout, err = run(capsys, *CERTIFY, "--data", str(mlflow_server.data),
                                "--model", model, "--out", str(tmp_path / "bad"))
        assert code == 2 and expected in err and "Traceback" not in err, err


def test_uris_are_parsed_strictly_and_passwords_never_shown(tmp_path):
    from assay.errors import InputError, NotFoundError
    from assay.integrations.mlflow import (
        ModelRef,
        parse_model_uri,
        resolve_tracking_uri,
        safe_uri,
    )

    assert parse_model_uri("models:/credit/07") == ModelRef("credit", version="7")
    assert parse_model_uri("models:/credit@champion") == ModelRef("credit", alias="champion")
    for bad in ("models:/credit/latest", "models:/credit/1/2", "models:/@x", "models:/a@",
                "runs:/abc/model", "models:/credit"):
        with pytest.raises(InputError, match="expected models:/NAME/VERSION"):
            parse_model_uri(bad)
    db = tmp_path / "m.db"
    db.write_bytes(b"")
    assert resolve_tracking_uri(f"sqlite:///{db}?mode=ro") == f"sqlite:///{db}?mode=ro"
    assert resolve_tracking_uri("databricks") == "databricks"
    with pytest.raises(NotFoundError, match="no such folder"):
        resolve_tracking_uri(str(tmp_path / "missing"))
    assert safe_uri("https://u:secret@mlflow.example:8443/x") == \
        "https://u:***@mlflow.example:8443/x"
    with pytest.raises(InputError) as exc:
        resolve_tracking_uri("ftp://u:secret@host")
    assert "secret" not in str(exc.value)


def test_pickle_and_pyfunc_flavours(ml: MlflowStore, tmp_path, monkeypatch):
    """A cloudpickle sklearn model goes through assay's own model-file loader (the rules of
    any pickle given to assay certify); a model without the sklearn flavour is loaded as
    pyfunc: predictions only, and the checks that need scores are skipped, not failed."""
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    import assay.data
    from _mlflow import frame
    from assay.certification import certify
    from assay.integrations.mlflow import load_model

    class Threshold(mlflow.pyfunc.PythonModel):
        """A model of the pyfunc flavour only: a rule on one column, no probabilities."""

        def predict(self, context, model_input, params=None):
            return (model_input["debt"] > 10).astype(int).to_numpy()

    train = frame(500, 5)
    mlflow.set_tracking_uri(ml.uri)
    mlflow.set_registry_uri(ml.uri)
    try:
        exp = mlflow.create_experiment("flavours",
                                       artifact_location=(tmp_path / "a").as_uri())
        with mlflow.start_run(experiment_id=exp):
            mlflow.sklearn.log_model(
                LogisticRegression().fit(train[["income", "debt"]], train["default"]),
                name="model", registered_model_name="pickled",
                serialization_format="cloudpickle", pip_requirements=["scikit-learn"])
            mlflow.pyfunc.log_model(name="rule", python_model=Threshold(),
                                    registered_model_name="rule", pip_requirements=[])
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)

    seen = []
    real = assay.data.load_model
    monkeypatch.setattr(assay.data, "load_model",
                        lambda path: seen.append(Path(path).name) or real(path))
    pickled = load_model("models:/pickled/1", tracking_uri=ml.uri)
    assert seen == ["model.pkl"]
    assert pickled.has_proba and pickled.mlflow.flavor == "sklearn (cloudpickle)"

    rule = load_model("models:/rule/1", tracking_uri=ml.uri)
    assert rule.mlflow.flavor == "python_function" and not rule.has_proba
    cert = certify(data=ml.data, policy="default", tier="medium", target="default",
                   model=rule, sensitive=["sex"])
    auc = next(c for c in cert.checks if c.id == "performance.roc_auc")
    assert str(auc.status) == "skip"
    assert cert.model["name"] == "models:/rule/1" and len(cert.model["sha256"]) == 64
