"""What a new user reads at the command line: flags named as flags, exit codes, help text."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay import certify
from assay.cli import app, main
from assay.errors import InputError


def run(args: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def scored_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    label = rng.integers(0, 2, n)
    score = np.clip(label * 0.3 + rng.random(n) * 0.7, 0, 1)
    path = tmp_path / "scored.csv"
    pd.DataFrame({"x": rng.normal(size=n), "sex": rng.choice(["F", "M"], n), "label": label,
                  "score": score, "decision": (score >= 0.5).astype(int)}).to_csv(path,
                                                                                index=False)
    return path


# --------------------------------------------------------------------------- flags, not keywords


def test_nothing_to_certify_names_the_flags(scored_csv, capsys):
    code, _, err = run(["certify", "--policy", "default", "--tier", "high", "--data", scored_csv,
                          "--target", "label", "--no-progress"], capsys)
    assert code == 2
    text = one_line(err)
    assert "give --model, --prediction, --score or --class-scores" in text
    assert "model=" not in text and "prediction=" not in text and "Traceback" not in text


def test_the_python_api_keeps_its_keyword_names(scored_csv):
    with pytest.raises(InputError) as info:
        certify(data=scored_csv, policy="default", tier="high", target="label")
    assert "give model=..., prediction=..., score=... or class_scores=..." in str(info.value)
    assert "--model" not in str(info.value)


def test_an_unknown_task_names_the_flag_and_suggests_the_task(scored_csv, capsys):
    code, _, err = run(["certify", "--policy", "default", "--tier", "high", "--data", scored_csv,
                          "--target", "label", "--task", "regresion", "--no-progress"], capsys)
    assert code == 2
    text = one_line(err)
    assert ("--task: expected 'classification', 'multiclass' or 'regression', got 'regresion'; "
            "did you mean 'regression'?") in text
    assert "Value error" not in text
    # the Python API names its keyword
    with pytest.raises(InputError, match=r"^task: expected .* did you mean 'regression'\?"):
        certify(data=scored_csv, policy="default", tier="high", target="label",
                score="score", task="regresion")


def test_an_unknown_format_names_the_choices(scored_csv, capsys):
    code, _, err = run(["certify", "--policy", "default", "--tier", "high", "--data", scored_csv,
                        "--target", "label", "--score", "score", "--format", "jsn"], capsys)
    assert code == 2
    assert "--format: expected 'table' or 'json', got 'jsn'; did you mean 'json'?" in one_line(err)


def test_a_braced_value_in_a_message_is_not_taken_for_a_field():
    err = InputError("{task}: expected a task, got '{model}'", fields=["task"])
    assert str(err) == "task: expected a task, got '{model}'"
    assert err.rename({"task": "--task", "model": "--model"}).message == \
        "--task: expected a task, got '{model}'"


# --------------------------------------------------------------------------- assay checks


def test_checks_with_an_unknown_family_exits_2_and_lists_the_families(capsys):
    from assay.policy import load_check_modules

    families = sorted({d.family for d in load_check_modules().values()})
    code, out, err = run(["checks", "--family", "bogus"], capsys)
    assert code == 2
    text = one_line(err)
    assert "--family: expected one of " + ", ".join(f"'{f}'" for f in families) in text
    assert "got 'bogus'" in text
    code, _, err = run(["checks", "--family", "fairnes"], capsys)
    assert code == 2 and "did you mean 'fairness'?" in one_line(err)
    code, out, _ = run(["checks", "--family", "fairness"], capsys)
    assert code == 0 and "fairness.demographic_parity_ratio" in out


# --------------------------------------------------------------------------- help


def _command_paths() -> list[list[str]]:
    import typer.main

    def walk(cmd: object, path: list[str]) -> list[list[str]]:
        found = [path]
        if hasattr(cmd, "list_commands"):
            for name in sorted(cmd.list_commands(None)):
                found += walk(cmd.get_command(None, name), [*path, name])
        return found

    return walk(typer.main.get_command(app), [])


def test_every_command_has_help_and_no_flag_shows_a_value_placeholder(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    paths = _command_paths()
    assert ["certify"] in paths and ["policy", "show"] in paths and len(paths) > 10
    for path in paths:
        code, out, err = run([*path, "--help"], capsys)
        assert code == 0, (path, err)
        assert "--help" in out, path
        assert "<bool>" not in out and "BOOLEAN" not in out, (path, out)
    _, out, _ = run(["certify", "--help"], capsys)
    assert "--no-progress" in out and "Do not draw progress bars." in out
    # every option of assay certify names what it takes (TIER, FILE, COL), not a Python type
    assert "<str>" not in out and "<path>" not in out and "TIER" in out


def test_flags_still_work_after_the_help_change(tmp_path, capsys):
    code, out, _ = run(["policy", "show", "default", "--raw"], capsys)
    assert code == 0 and out.startswith(("#", "name:"))


# --------------------------------------------------------------------------- renamed tiers

RENAMED = """\
name: renamed
version: "1"
tiers:
  standrd:
    checks:
      - id: performance.roc_auc
        threshold: {min: 0.7}
  high:
    extends: standard
    checks:
      - id: performance.ece
        threshold: {max: 0.05}
"""


def test_a_renamed_tier_points_at_its_definition_and_its_use(tmp_path, capsys):
    path = tmp_path / "renamed.yaml"
    path.write_text(RENAMED)
    code, _, err = run(["policy", "check", path], capsys)
    assert code == 2
    text = one_line(err)
    # reported at the line that uses the name ...
    assert text.startswith("error: renamed.yaml:9: tiers.high.extends: expected one of "
                           "'standrd', got 'standard'")
    # ... and at the definition, without telling the user to copy the misspelt name
    assert "the closest is tier 'standrd' defined at line 4" in text
    assert "use the same name at lines 4 and 9" in text
    assert "did you mean 'standrd'" not in text


def test_a_tier_renamed_to_an_unrelated_name_points_at_the_tiers(tmp_path, capsys):
    path = tmp_path / "renamed.yaml"
    path.write_text(RENAMED.replace("standrd", "core").replace("standard", "baseline"))
    code, _, err = run(["policy", "check", path], capsys)
    assert code == 2
    text = one_line(err)
    assert "renamed.yaml:9: tiers.high.extends: expected one of 'core', got 'baseline'" in text
    assert "the tiers are defined under 'tiers' at line 3" in text


def test_an_unknown_tier_on_the_command_line_points_at_the_definition(tmp_path, capsys):
    code, _, err = run(["certify", "--policy", "default", "--tier", "hihg", "--data",
                        tmp_path / "none.csv", "--target", "y", "--score", "s"], capsys)
    from assay.policy import load_policy

    line = load_policy("default").line_of("tiers", "high")
    assert code == 2 and line
    assert (f"unknown tier 'hihg': expected one of 'low', 'medium', 'high'; did you mean 'high' "
            f"(defined at line {line})?") in one_line(err)


# --------------------------------------------------------------------------- the verdict line

SKIPPING = """\
name: skip-policy
version: "1"
settings: {bootstrap: {replicates: 0}%s}
tiers:
  high:
    checks:
      - id: performance.balanced_accuracy
        threshold: {min: 0.5}
      - id: performance.roc_auc
        threshold: {min: 0.6}
      - id: robustness.gaussian_noise
        threshold: {max: 0.05}
        severity: warn
"""


def test_a_skipped_blocking_check_is_named_in_the_verdict_line(scored_csv, tmp_path, capsys):
    policy = tmp_path / "skip.yaml"
    policy.write_text(SKIPPING % "")
    out = tmp_path / "out"
    code, stdout, err = run(["certify", "--policy", policy, "--tier", "high", "--data", scored_csv,
                             "--target", "label", "--prediction", "decision", "--out", out,
                             "--no-progress"], capsys)
    assert code == 0, err
    text = one_line(stdout)
    assert ("! PASSED WITH WARNINGS (1 pass, 0 warn, 0 fail, 2 skip, 0 error): no blocking "
            "finding; 1 blocking check was skipped and is not evidence (performance.roc_auc); "
            "1 warn-only check was skipped (robustness.gaussian_noise)") in text
    assert "review" not in text  # there is no warning to review
    html = " ".join((out / "report.html").read_text().split())
    assert ("No blocking finding; 1 blocking check was skipped and is not evidence "
            "(performance.roc_auc)") in html
    assert "the warnings below" not in html
    # the report rendered again from results.json says the same
    code, _, _ = run(["report", out / "results.json", "--out", tmp_path / "again.html"], capsys)
    assert code == 0
    assert "(performance.roc_auc)" in (tmp_path / "again.html").read_text()


def test_on_skip_block_names_the_skipped_check_that_blocks(scored_csv, tmp_path, capsys):
    policy = tmp_path / "skip.yaml"
    policy.write_text(SKIPPING % ", on_skip: block")
    code, stdout, _ = run(["certify", "--policy", policy, "--tier", "high", "--data", scored_csv,
                           "--target", "label", "--prediction", "decision",
                           "--out", tmp_path / "out", "--no-progress"], capsys)
    assert code == 1
    assert ("✗ BLOCKED (1 pass, 0 warn, 0 fail, 2 skip, 0 error): the policy does not allow this "
            "model to be approved: 1 blocking check was skipped and the policy's on_skip is "
            "'block' (performance.roc_auc)") in one_line(stdout)


def _check(cid: str, status: str, severity: str = "block", title: str = "") -> dict:
    return {"id": cid, "status": status, "severity": severity, "title": title or cid}


def test_explain_verdict_counts_and_names():
    from assay.report.verdict import explain_verdict

    assert explain_verdict({"status": "passed_with_warnings", "checks": []}) == \
        "the tier has no checks: nothing was judged"
    assert explain_verdict({"status": "passed", "checks": [_check("a.b", "pass")]}) == \
        "every check required by the policy passed"
    warned = {"status": "passed_with_warnings",
              "checks": [_check("a.b", "warn", "warn"), _check("a.c", "warn"),
                         _check("a.d", "pass")]}
    assert explain_verdict(warned) == "no blocking finding; review 2 warnings"
    blocked = {"status": "blocked",
               "checks": [_check("drift.psi", "fail", title="Population stability index"),
                          _check("drift.psi", "pass", "warn", title="Moderate drift"),
                          _check("a.e", "error"), _check("a.f", "warn", "warn")]}
    assert explain_verdict(blocked) == (
        "the policy does not allow this model to be approved: 1 blocking check failed "
        "(drift.psi (Population stability index)); 1 blocking check could not be computed (a.e)")


# --------------------------------------------------------------------------- continuous attribute


def test_a_continuous_sensitive_column_is_noted_and_binning_suggested(tmp_path, capsys):
    rng = np.random.default_rng(1)
    n = 800
    label = rng.integers(0, 2, n)
    age = rng.choice(np.arange(60) / 2 + 18, n)  # 60 values: an age, not a group code
    data = tmp_path / "ages.csv"
    pd.DataFrame({"age": age, "sex": rng.choice(["F", "M"], n), "band": rng.choice([1, 2, 3], n),
                  "label": label, "score": rng.random(n)}).to_csv(data, index=False)
    distinct = pd.read_csv(data)["age"].nunique()
    assert distinct > 50
    policy = tmp_path / "fair.yaml"
    policy.write_text("name: fair\nversion: '1'\nsettings: {bootstrap: {replicates: 0}}\n"
                      "tiers:\n  low:\n    checks:\n"
                      "      - {id: fairness.demographic_parity_ratio, threshold: {min: 0.5}}\n")
    out = tmp_path / "out"
    code, stdout, err = run(["certify", "--policy", policy, "--tier", "low", "--data", data,
                             "--target", "label", "--score", "score", "--sensitive",
                             "age,sex,band", "--out", out, "--no-progress"], capsys)
    assert code in (0, 1), err
    notes = json.loads((out / "results.json").read_text())["notes"]
    about_age = [n for n in notes if "'age'" in n]
    assert len(about_age) == 1, notes
    assert f"protected attribute with {distinct} distinct numeric values" in about_age[0]
    assert "bin it into a few ranges" in about_age[0] and "'age_band'" in about_age[0]
    # a small integer code and a text column are not continuous
    assert not [n for n in notes if "'sex'" in n or "'band'" in n]
    text = one_line(stdout)
    assert "ages.csv: column 'age': protected attribute with " + str(distinct) + " distinct" in text
    assert "note: " in text
    assert "bin it into a few ranges" in text


# --------------------------------------------------------------------------- a check listed twice


def _rows_of(text: str, cid: str) -> list[str]:
    """Each table row that starts at a line holding ``cid``, with the row's following lines."""
    lines = text.splitlines()
    rows = []
    for i, line in enumerate(lines):
        if cid in line:
            rows.append(" ".join(lines[i:i + 3]))
    return rows


@pytest.mark.parametrize("width", [80, 160])
def test_a_check_listed_twice_shows_its_name_and_severity(width):
    import io

    from rich.console import Console

    from assay.cli.certify import print_results

    def psi(title: str, severity: str, threshold: float) -> dict:
        return {"id": "drift.psi", "family": "drift", "title": title, "status": "pass",
                "severity": severity, "threshold": {"max": threshold}, "value": 0.0035,
                "ci": None, "worst": "native_country", "message": ""}

    results = {"status": "passed", "policy": {"name": "default", "tier": "high"},
               "summary": {"pass": 3},
               "checks": [psi("Population stability index", "block", 0.25),
                          {"id": "performance.roc_auc", "family": "performance",
                           "title": "ROC AUC", "status": "pass", "severity": "block",
                           "threshold": {"min": 0.7}, "value": 0.9, "worst": "overall"},
                          psi("Moderate drift per feature", "warn", 0.1)]}
    buf = io.StringIO()
    print_results(Console(file=buf, width=width, color_system=None), results)
    text = buf.getvalue()
    first, second = _rows_of(text, "drift.psi")
    assert "Population stability index" in first and "block" in first and "0.25" in first
    assert "Moderate drift per feature" in second and "warn" in second and "0.1" in second
    assert "ROC AUC" not in text  # a check listed once keeps its id alone
    assert max(len(line) for line in text.splitlines()) <= width


def test_policy_show_names_the_entries_of_a_check_listed_twice(capsys):
    code, out, _ = run(["policy", "show", "default", "--tier", "high"], capsys)
    assert code == 0
    assert "Moderate drift per feature" in " ".join(out.split())


def test_the_default_output_folders_are_ignored_by_git():
    """A new user runs ``assay demo`` and ``assay certify`` in a checkout: git must not list
    the folders they write by default."""
    from pathlib import Path

    import typer.main

    root = Path(__file__).resolve().parents[1]
    ignored = {line.strip().rstrip("/") for line in (root / ".gitignore").read_text().splitlines()}
    cli = typer.main.get_command(app)
    for name in ("demo", "certify"):
        out = next(p for p in cli.get_command(None, name).params if p.name == "out")
        assert str(out.default) in ignored, (name, out.default)


def test_a_skipped_check_does_not_name_python_keywords(scored_csv, tmp_path, capsys):
    """The reason a check was skipped is stored in results.json and shown by every face:
    it names what is missing, not a keyword of the Python API."""
    policy = tmp_path / "fair.yaml"
    policy.write_text("name: fair\nversion: '1'\nsettings: {bootstrap: {replicates: 0}}\n"
                      "tiers:\n  low:\n    checks:\n"
                      "      - {id: fairness.demographic_parity_ratio, threshold: {min: 0.5}}\n")
    out = tmp_path / "out"
    code, stdout, _ = run(["certify", "--policy", policy, "--tier", "low", "--data", scored_csv,
                           "--target", "label", "--score", "score", "--out", out,
                           "--no-progress"], capsys)
    assert code == 0
    (check,) = json.loads((out / "results.json").read_text())["checks"]
    assert check["status"] == "skip"
    assert check["message"] == "not run: needs protected attribute columns, which were not given"
    assert "sensitive=" not in stdout


@pytest.mark.parametrize(("args", "expected"), [
    (["inventory", "--format", "JSON"],
     "--format: expected one of 'table', 'json', 'csv', got 'JSON'; did you mean 'json'?"),
    (["user", "list", "-f", "jsn"],
     "--format: expected 'table' or 'json', got 'jsn'; did you mean 'json'?"),
])
def test_a_value_outside_an_options_choices_is_said_plainly(args, expected, capsys):
    code, _, err = run(args, capsys)
    assert code == 2
    assert expected in one_line(err)
    assert "Value error" not in err and "Traceback" not in err


def test_an_error_message_is_printed_as_text_not_markup(capsys):
    code, _, err = run(["checks", "--family", "[bold]x[/bold]"], capsys)
    assert code == 2
    assert "got '[bold]x[/bold]'" in one_line(err)
