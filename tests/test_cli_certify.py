"""``assay certify``, ``assay policy ...`` and ``assay checks`` through the real CLI."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from rich.progress import Progress

from assay.cli import main
from assay.cli.certify import RichProgress, checks_table, print_results
from test_report import sample_results


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Adult rows with the scores and decisions of a model trained on the training part."""
    from assay.datasets import load_adult
    from assay.demo import build_model

    train, test = load_adult()
    train = train.sample(6000, random_state=1).reset_index(drop=True)
    test = test.iloc[:4000].reset_index(drop=True)
    model = build_model(train, max_iter=30)
    pos = list(model.classes_).index(">50K")
    d = tmp_path_factory.mktemp("certify")
    scored = test.copy()
    scored["score"] = model.predict_proba(test)[:, pos]
    scored["decision"] = (scored["score"] >= 0.5).astype(int)
    scored["label"] = (scored["income"] == ">50K").astype(int)
    paths = {"train": d / "train.parquet", "test": d / "test.csv", "dir": d}
    train.to_parquet(paths["train"], index=False)
    scored.to_csv(paths["test"], index=False)
    import joblib

    paths["model"] = d / "model.joblib"
    joblib.dump(model, paths["model"])
    paths["raw_test"] = d / "raw-test.parquet"
    test.to_parquet(paths["raw_test"], index=False)
    return paths


def policy_file(tmp_path: Path, check_id: str, threshold: str, severity: str = "block") -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(textwrap.dedent(f"""\
        name: test-policy
        version: "2.1"
        settings:
          min_group_size: 30
          bootstrap: {{replicates: 200, confidence: 0.95, seed: 3}}
        tiers:
          high:
            checks:
              - id: {check_id}
                threshold: {threshold}
                severity: {severity}
                rationale: "The model must rank applicants well."
        """))
    return p


def registered(prefix: str) -> str:
    """The id of a registered check whose id starts with ``prefix``."""
    from assay.policy import load_check_modules

    ids = sorted(i for i in load_check_modules() if i.startswith(prefix))
    if not ids:
        pytest.fail(f"no check registered under {prefix!r}")
    return ids[0]


# --------------------------------------------------------------------------- certify


def test_certify_with_the_default_policy_writes_results_and_report(data, capsys, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run(["certify", "--policy", "default", "--tier", "high",
                             "--data", data["test"], "--train", data["train"],
                             "--target", "label", "--score", "score", "--prediction", "decision",
                             "--sensitive", "sex,race", "--out", out, "--no-progress"], capsys)
    assert "Traceback" not in err
    results = json.loads((out / "results.json").read_text())
    assert code == (1 if results["status"] == "blocked" else 0)
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert str((out / "results.json").resolve()) in stdout.replace("\n", "")
    for c in results["checks"]:
        assert c["id"] in stdout
    verdict = {"passed": "PASSED", "passed_with_warnings": "PASSED WITH WARNINGS",
               "blocked": "BLOCKED"}[results["status"]]
    assert verdict in stdout
    assert results["data"]["reference"]["rows"] == 6000
    assert results["roles"]["sensitive"] == ["sex", "race"]


def test_exit_code_follows_the_verdict(data, capsys, tmp_path):
    check = registered("performance.")
    common = ["certify", "--tier", "high", "--data", data["test"], "--target", "label",
              "--score", "score", "--prediction", "decision", "--sensitive", "sex",
              "--no-progress"]
    lenient = policy_file(tmp_path, check, "{min: 0.0}")
    code, stdout, _ = run([*common, "--policy", lenient, "--out", tmp_path / "a"], capsys)
    status = json.loads((tmp_path / "a" / "results.json").read_text())["status"]
    assert status in ("passed", "passed_with_warnings") and code == 0, stdout
    strict_dir = tmp_path / "strict"
    strict_dir.mkdir()
    strict = policy_file(strict_dir, check, "{min: 0.9999}")
    code, stdout, _ = run([*common, "--policy", strict, "--out", tmp_path / "b"], capsys)
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["status"] == "blocked" and code == 1
    assert "BLOCKED" in stdout and "✗" in stdout
    # a warn-only failure does not block
    warn_dir = tmp_path / "warn"
    warn_dir.mkdir()
    warn = policy_file(warn_dir, check, "{min: 0.9999}", severity="warn")
    code, stdout, _ = run([*common, "--policy", warn, "--out", tmp_path / "c"], capsys)
    assert code == 0 and "PASSED WITH WARNINGS" in stdout


def test_json_format_prints_results_json(data, capsys, tmp_path):
    out = tmp_path / "out"
    code, stdout, _ = run(["certify", "--policy", "default", "--tier", "high", "--format", "json",
                           "--data", data["test"], "--target", "label", "--score", "score",
                           "--sensitive", "sex", "--out", out, "--no-progress"], capsys)
    printed = json.loads(stdout)
    written = json.loads((out / "results.json").read_text())
    assert printed == written
    assert code == (1 if printed["status"] == "blocked" else 0)


def test_results_are_built_once_and_printed_as_written(data, capsys, tmp_path, monkeypatch):
    """The command builds the results document once: the file, the report and the printed
    JSON come from it (rendering the report leaves it as it was)."""
    from assay.certification import Certification

    built: list[dict] = []
    to_dict = Certification.to_dict

    def counted(self: Certification) -> dict:
        built.append(to_dict(self))
        return built[-1]

    monkeypatch.setattr(Certification, "to_dict", counted)
    out = tmp_path / "out"
    run(["certify", "--policy", "default", "--tier", "high", "--format", "json",
         "--data", data["test"], "--target", "label", "--score", "score",
         "--sensitive", "sex", "--out", out, "--no-progress"], capsys)
    assert len(built) == 1
    written = (out / "results.json").read_text()
    assert json.loads(written) == built[0]
    assert written == json.dumps(built[0], indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def test_certify_with_a_model_file(data, capsys, tmp_path):
    out = tmp_path / "out"
    code, _, err = run(["certify", "-p", "default", "-t", "low", "-m", data["model"],
                        "-d", data["raw_test"], "--train", data["train"], "-y", "income",
                        "--positive-label", ">50K", "-s", "sex,race", "-o", out,
                        "--no-progress"], capsys)
    assert "Traceback" not in err
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["sha256"]
    assert results["roles"]["positive_label"] == ">50K"
    assert code == (1 if results["status"] == "blocked" else 0)


# --------------------------------------------------------------------------- policies, checks


def test_policy_list_and_show(capsys):
    code, out, _ = run(["policy", "list"], capsys)
    assert code == 0
    assert "default" in out and "credit-lending" in out
    code, out, _ = run(["policy", "show", "default"], capsys)
    assert code == 0 and "tier high" in out
    code, out, _ = run(["policy", "show", "default", "--raw"], capsys)
    assert code == 0 and "tiers:" in out
    code, _, err = run(["policy", "show", "default", "--tier", "nope"], capsys)
    assert code == 2 and "nope" in err


def test_policy_show_lists_each_tiers_monitoring_rules(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(["policy", "show", "credit-lending", "--tier", "high"], capsys)
    assert code == 0
    assert "tier high: monitoring" in out
    section = out[out.index("tier high: monitoring"):]
    for rule in ("drift.feature", "performance.drop", "fairness.gap"):
        assert rule in section
    assert "recertify" in section and "against=training" in section


def test_policy_check_accepts_a_valid_file(tmp_path, capsys):
    p = policy_file(tmp_path, registered("performance."), "{min: 0.7}")
    code, out, _ = run(["policy", "check", p], capsys)
    assert code == 0
    assert "valid policy" in out and "1 tier" in out


def test_checks_lists_the_registry(capsys):
    from assay.policy import load_check_modules

    code, out, _ = run(["checks"], capsys)
    assert code == 0
    flat = out.replace("\n", " ")
    for cid in load_check_modules():
        assert cid.split(".")[-1][:10] in flat
    code, out, _ = run(["checks", "--family", "fairness"], capsys)
    assert code == 0 and "performance." not in out


# --------------------------------------------------------------------------- rendering pieces


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=160, force_terminal=False, color_system=None), buf


def test_checks_table_and_verdict_line():
    console, buf = _console()
    results = sample_results()
    print_results(console, results, {"report.html": Path("/tmp/x/report.html")})
    text = buf.getvalue()
    assert "✗ fail" in text and "✓ pass" in text and "– skip" in text
    assert "fairness.equalized_odds_difference" in text
    assert "0.142" in text and "[0.118, 0.166]" in text
    assert "<= 0.1" in text and ">= 0.7" in text
    assert "✗ BLOCKED (3 pass, 2 warn, 1 fail, 1 skip, 0 error)" in text
    assert "report.html: /tmp/x/report.html" in text
    assert "needs a model file" in text  # the reason a check was skipped


def test_compact_table_fits_80_columns():
    buf = io.StringIO()
    console = Console(file=buf, width=80, color_system=None)
    print_results(console, sample_results())
    lines = buf.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    text = buf.getvalue()
    assert "fairness.equalized_odds_difference" in text  # ids are never cut
    assert "robustness.perturbation" in text


def test_checks_table_escapes_markup():
    results = sample_results()
    results["checks"][0]["worst"] = "[bold red]group[/]"
    console, buf = _console()
    console.print(checks_table(results))
    assert "[bold red]group[/]" in buf.getvalue()


def test_rich_progress_adapter_follows_the_protocol():
    console, _ = _console()
    with Progress(console=console) as progress:
        reporter = RichProgress(progress)
        task = reporter.start("Running 3 checks", 3)
        task.advance(1)
        task.advance(2)
        task.finish()
        with reporter.start("Reading the data", None) as t:
            t.advance(10)
        tasks = progress.tasks
    assert [t.description for t in tasks] == ["Running 3 checks", "Reading the data"]
    assert tasks[0].completed == 3 and tasks[0].finished
    assert tasks[1].finished


def test_progress_is_driven_by_a_real_certification(data):
    """The orchestration reports its steps to the adapter."""
    from assay.certification import certify

    console, _ = _console()
    df = pd.read_csv(data["test"])
    with Progress(console=console) as progress:
        certify(data=df, policy="default", tier="high", target="label", score="score",
                sensitive=["sex"], progress=RichProgress(progress))
        descriptions = [t.description for t in progress.tasks]
        finished = [t.finished for t in progress.tasks]
    assert any("check" in d.lower() for d in descriptions), descriptions
    assert all(finished)


# --------------------------------------------------------------------------- report


def test_report_command_renders_results_again(tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(sample_results()), encoding="utf-8")
    code, out, _ = run(["report", results], capsys)
    assert code == 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Blocked by the policy" in html
    assert str((tmp_path / "report.html").resolve()) in out.replace("\n", "")
    code, _, _ = run(["report", results, "--out", tmp_path / "other.html"], capsys)
    assert code == 0 and (tmp_path / "other.html").is_file()


@pytest.mark.parametrize(("content", "needle"), [
    (None, "not found"),
    ('{"status": ', "expected JSON"),
    ("[1, 2]", "expected a results.json object"),
    ('{"status": "passed"}', "'checks'"),
])
def test_report_command_bad_input(tmp_path, capsys, content, needle):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    code, _, err = run(["report", path], capsys)
    assert code == 2 and "Traceback" not in err
    line = err.strip()
    assert "\n" not in line and "results.json" in line and needle in line


def test_certify_a_regression_model(data, capsys, tmp_path):
    check = registered("performance.rmse")
    df = pd.read_csv(data["test"])
    rng = np.random.default_rng(0)
    df["predicted_hours"] = df["hours_per_week"] + rng.normal(0, 5, len(df))
    path = tmp_path / "hours.parquet"
    df.to_parquet(path, index=False)
    policy = policy_file(tmp_path, check, "{max: 8.0}")
    out = tmp_path / "out"
    code, stdout, err = run(["certify", "--policy", policy, "--tier", "high", "--task",
                             "regression", "--data", path, "--target", "hours_per_week",
                             "--prediction", "predicted_hours", "--sensitive", "sex",
                             "--out", out, "--no-progress"], capsys)
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["roles"]["task"] == "regression"
    rmse = float(np.sqrt(np.mean((df["predicted_hours"] - df["hours_per_week"]) ** 2)))
    overall = next(m for m in results["checks"][0]["measurements"] if m["label"] == "overall")
    assert overall["value"] == pytest.approx(rmse, rel=1e-9)
    assert "performance.rmse" in stdout and "PASSED" in stdout
    assert "performance.rmse" in (out / "report.html").read_text()
