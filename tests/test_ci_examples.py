"""The CI examples (examples/ci): the shell script both pipelines call, run for real with
the installed ``assay`` on a small model and data built here; and the two pipeline files,
which must call that script and upload the evidence it writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import yaml

from _mlflow import frame

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / "examples" / "ci"
SCRIPT = CI / "assay-ci.sh"
EVIDENCE = ("results.json", "report.html", "results.intoto.json")


def _assay() -> str:
    beside = Path(sys.executable).with_name("assay")
    found = str(beside) if beside.exists() else shutil.which("assay")
    if not found:
        pytest.skip("the assay command is not installed")
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository: a good model, a model trained on shuffled labels, the data."""
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("model-repo")
    train, evaluation = frame(2000, 1), frame(1500, 2)
    (root / "data").mkdir()
    evaluation.to_parquet(root / "data" / "evaluation.parquet", index=False)
    train.to_parquet(root / "data" / "train.parquet", index=False)
    features = ["income", "debt"]
    (root / "models").mkdir()
    good = LogisticRegression().fit(train[features], train["default"])
    joblib.dump(good, root / "models" / "good.joblib")
    shuffled = np.random.default_rng(3).permutation(train["default"].to_numpy())
    joblib.dump(LogisticRegression().fit(train[features], shuffled),
                root / "models" / "shuffled.joblib")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    (root / "signing.pem").write_bytes(pem)
    return root


def _run(project: Path, model: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("ASSAY_", "MLFLOW_", "GITHUB_"))}
    full.update({"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "ASSAY_BIN": _assay(),
                 "ASSAY_MODEL": f"models/{model}", "ASSAY_DATA": "data/evaluation.parquet",
                 "ASSAY_TARGET": "default", "ASSAY_SENSITIVE": "sex",
                 "ASSAY_POLICY": "default", "ASSAY_TIER": "medium",
                 "ASSAY_HOME": str(project / ".assay"), **env})
    return subprocess.run(["bash", str(SCRIPT)], cwd=project, env=full, text=True,
                          capture_output=True, timeout=600)


def test_a_passing_model_exits_0_with_the_signed_evidence(project: Path, tmp_path: Path):
    summary = tmp_path / "summary.md"
    done = _run(project, "good.joblib", ASSAY_OUT="evidence-pass",
                ASSAY_SIGN_KEY_PEM=(project / "signing.pem").read_text(),
                GITHUB_STEP_SUMMARY=str(summary))
    assert done.returncode == 0, done.stdout + done.stderr
    out = project / "evidence-pass"
    assert all((out / name).is_file() for name in EVIDENCE)
    results = json.loads((out / "results.json").read_text())
    assert results["status"] in ("passed", "passed_with_warnings")
    envelope = json.loads((out / "results.intoto.json").read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert f"verdict {results['status']}" in done.stdout
    assert f"**{results['status']}** (exit code 0)" in summary.read_text()


def test_a_blocked_model_fails_with_the_gates_code_and_keeps_the_evidence(project: Path):
    done = _run(project, "shuffled.joblib", ASSAY_OUT="evidence-fail",
                ASSAY_SIGN_KEY=str(project / "signing.pem"))
    assert done.returncode == 1, done.stdout + done.stderr
    out = project / "evidence-fail"
    assert all((out / name).is_file() for name in EVIDENCE)
    assert json.loads((out / "results.json").read_text())["status"] == "blocked"
    assert "exit code 1, verdict blocked" in done.stdout


def test_bad_input_exits_2_and_says_which(project: Path):
    done = _run(project, "missing.joblib", ASSAY_OUT="evidence-bad")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "missing.joblib" in done.stderr and "Traceback" not in done.stderr
    done = _run(project, "good.joblib", ASSAY_TARGET="")
    assert done.returncode != 0 and "ASSAY_TARGET" in done.stderr


def _commands(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_commands(v) for v in value)
    return ""


def test_github_actions_calls_the_script_and_uploads_the_evidence():
    doc = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = doc["jobs"]["certify"]["steps"]
    runs = "\n".join(str(s.get("run", "")) for s in steps)
    assert "examples/ci/assay-ci.sh" in runs and "pip install" in runs
    upload = next(s for s in steps if str(s.get("uses", "")).startswith(
        "actions/upload-artifact"))
    assert upload["if"] == "always()"
    out = doc["jobs"]["certify"]["env"]["ASSAY_OUT"]
    paths = upload["with"]["path"].split()
    assert paths == [f"{out}/{name}" for name in EVIDENCE]


def test_gitlab_ci_calls_the_script_and_keeps_the_evidence():
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    job = doc["assay-certify"]
    assert "examples/ci/assay-ci.sh" in _commands(job["script"])
    assert "pip install" in _commands(job["before_script"])
    assert job["artifacts"]["when"] == "always"
    out = job["variables"]["ASSAY_OUT"]
    assert job["artifacts"]["paths"] == [f"{out}/{name}" for name in EVIDENCE]
    assert job["stage"] in doc["stages"]


def test_the_deployment_gate_fails_a_passing_certification_of_an_unapproved_version(
        project: Path, tmp_path: Path):
    """ASSAY_GATE: the certification passes, the version is not approved: exit 1, with
    the gate's decision kept beside the evidence."""
    from assay import registry
    from assay.config import Settings
    from assay.store import open_store

    home = tmp_path / "store"
    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'assay.db'}"))
    try:
        with store.transaction() as s:
            admin = registry.add_user(s, None, "root")
            registry.register_model(s, admin, "credit", owner="root",
                                    decision_type="automated", criticality="high")
            registry.add_version(s, admin, "credit", "1")
    finally:
        store.dispose()
    done = _run(project, "good.joblib", ASSAY_OUT="evidence-gate", ASSAY_GATE="credit@1",
                ASSAY_HOME=str(home), ASSAY_DATABASE_URL=f"sqlite:///{home / 'assay.db'}",
                ASSAY_USER="root")
    assert done.returncode == 1, done.stdout + done.stderr
    out = project / "evidence-gate"
    assert json.loads((out / "results.json").read_text())["status"] != "blocked"
    decision = json.loads((out / "gate.json").read_text())
    assert decision["allowed"] is False
    assert "not submitted for approval (assay submit)" in decision["reasons"]
    assert "deployment gate of credit@1 exit code 1" in done.stdout
