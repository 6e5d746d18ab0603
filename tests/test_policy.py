"""Policy files: schema, line-numbered errors, tiers and ``extends``, shipped policies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.checks.base import REGISTRY, JudgeOn, Measurement, Severity, check
from assay.errors import PolicyError
from assay.policy import (
    Policy,
    load_check_modules,
    load_policy,
    parse_policy,
)

TEST_IDS = ("testpol.ratio", "testpol.rate")


@pytest.fixture(autouse=True)
def test_checks() -> Iterator[None]:
    """Two checks registered only for these tests (removed afterwards)."""
    load_check_modules()

    @check("testpol.ratio", family="fairness", title="A ratio", params=("metric", "by"))
    def _ratio(ctx, spec):  # pragma: no cover - never run here
        return [Measurement("x", 1.0)]

    @check("testpol.rate", family="performance", title="A rate")
    def _rate(ctx, spec):  # pragma: no cover - never run here
        return [Measurement("x", 1.0)]

    yield
    for cid in TEST_IDS:
        REGISTRY.pop(cid, None)


GOOD = """\
name: test policy
version: 2
description: for tests
settings:
  min_group_size: 50
  bootstrap: {replicates: 200, confidence: 0.9, seed: 7}
workflow:
  deployment_stage: deployment_approval
x-team: credit models
tiers:
  high:
    description: strict
    extends: medium
    review_interval_days: 180
    checks:
      - id: testpol.ratio
        params: {metric: selection_rate}
        threshold: {min: 0.9}
        judge: interval
        rationale: stricter than medium
  medium:
    review_interval_days: 365
    checks:
      - id: testpol.ratio
        params: {metric: selection_rate}
        threshold: {min: 0.8}
        severity: warn
        rationale: four-fifths rule
        regulations: [ECOA]
      - id: testpol.rate
        threshold: {min: 0.7, max: 1}
      - id: testpol.rate
        name: rate floor
        threshold: {min: 0.5}
  low:
    extends: medium
    drop: [rate floor]
"""


def line(text: str, needle: str, start: int = 0) -> int:
    """1-based number of the first line at or after ``start`` that contains ``needle``."""
    lines = text.splitlines()
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def parse(text: str, source: str = "p.yaml") -> Policy:
    return parse_policy(text, source=source)


def error_of(text: str, source: str = "p.yaml") -> str:
    with pytest.raises(PolicyError) as info:
        parse(text, source)
    msg = str(info.value)
    assert "\n" not in msg, "a policy error is one line"
    return msg


# --------------------------------------------------------------------------- valid files


def test_valid_policy_fields_and_settings() -> None:
    p = parse(GOOD)
    assert p.name == "test policy" and p.version == "2" and p.description == "for tests"
    assert p.settings.min_group_size == 50
    assert p.settings.bootstrap.replicates == 200
    assert p.settings.bootstrap.confidence == 0.9
    assert p.settings.bootstrap.seed == 7
    assert p.settings.decision_threshold == 0.5
    assert list(p.tiers) == ["high", "medium", "low"]
    assert p.extra_sections == {"workflow": {"deployment_stage": "deployment_approval"},
                                "x-team": "credit models"}
    assert len(p.sha256) == 64 and p.path is None


def test_defaults_when_settings_absent() -> None:
    p = parse("name: n\nversion: '1'\ntiers:\n  low: {}\n")
    assert p.settings.min_group_size == 30
    assert p.settings.bootstrap.replicates == 1000
    assert p.settings.bootstrap.confidence == 0.95
    assert p.settings.bootstrap.seed == 0
    assert p.tier("low").checks == []


def test_check_specs_carry_threshold_severity_judge_and_source_line() -> None:
    p = parse(GOOD)
    medium = p.tier("medium")
    spec = medium.checks[0]
    assert spec.id == "testpol.ratio"
    assert spec.params == {"metric": "selection_rate"}
    assert spec.threshold is not None and spec.threshold.min == 0.8 and spec.threshold.max is None
    assert spec.severity is Severity.WARN
    assert spec.judge_on is JudgeOn.POINT
    assert spec.rationale == "four-fifths rule"
    assert spec.regulations == ["ECOA"]
    line = GOOD.splitlines().index("      - id: testpol.ratio", 20) + 1
    assert spec.source == f"p.yaml:{line}"


def test_extends_overrides_in_place_and_inherits() -> None:
    p = parse(GOOD)
    high = p.tier("high")
    assert [c.name or c.id for c in high.checks] == ["testpol.ratio", "testpol.rate", "rate floor"]
    ratio = high.checks[0]
    assert ratio.threshold.min == 0.9
    assert ratio.judge_on is JudgeOn.INTERVAL
    assert ratio.severity is Severity.BLOCK  # the override is a whole entry, not a merge
    assert ratio.source.startswith("p.yaml:1")  # the high tier's own line
    assert high.review_interval_days == 180
    assert high.extends == "medium"


def test_drop_removes_inherited_entry_and_review_interval_is_inherited() -> None:
    low = parse(GOOD).tier("low")
    assert [c.name or c.id for c in low.checks] == ["testpol.ratio", "testpol.rate"]
    assert low.review_interval_days == 365


def test_line_of_and_where_for_reserved_sections() -> None:
    p = parse(GOOD)
    assert p.line_of("workflow", "deployment_stage") == line(GOOD, "deployment_stage")
    assert p.where("workflow") == f"p.yaml:{line(GOOD, 'workflow:')}"
    assert p.line_of("tiers", "high", "checks", 0, "threshold") == line(GOOD, "{min: 0.9}")


def test_version_written_as_number_keeps_its_text() -> None:
    p = parse("name: n\nversion: 1.10\ntiers:\n  low: {}\n")
    # YAML reads 1.10 as the float 1.1; what matters is that it is a string
    assert isinstance(p.version, str)


# --------------------------------------------------------------------------- errors


def test_wrong_severity_names_file_line_column_field_and_expected() -> None:
    text = GOOD.replace("severity: warn", "severity: blocker")
    line = text.splitlines().index("        severity: blocker") + 1
    msg = error_of(text, "policies/x.yaml")
    assert msg.startswith(f"policies/x.yaml:{line}:")
    assert "tiers.medium.checks[0].severity: expected 'block' or 'warn', got 'blocker'" in msg


def test_wrong_judge() -> None:
    text = GOOD.replace("judge: interval", "judge: ci")
    msg = error_of(text)
    assert msg.startswith(f"p.yaml:{line(text, 'judge: ci')}:")
    assert "tiers.high.checks[0].judge: expected 'point' or 'interval', got 'ci'" in msg


def test_invalid_yaml_syntax_reports_line() -> None:
    text = "name: n\nversion: 1\ntiers:\n  high: {checks: [\n"
    msg = error_of(text)
    assert re.match(r"p\.yaml:\d+:\d+: invalid YAML: ", msg)
    bad_indent = "name: n\nversion: 1\n  tiers: x\n"
    msg = error_of(bad_indent)
    assert msg.startswith("p.yaml:3:") and "invalid YAML" in msg


def test_duplicate_key_is_refused() -> None:
    msg = error_of("name: a\nversion: 1\nname: b\ntiers: {low: {}}\n")
    assert msg == "p.yaml:3: name: duplicate key (already given at line 1)"


def test_unknown_check_id_lists_close_matches() -> None:
    text = GOOD.replace("- id: testpol.rate\n        threshold: {min: 0.7",
                        "- id: testpol.rat\n        threshold: {min: 0.7")
    line = text.splitlines().index("      - id: testpol.rat") + 1
    msg = error_of(text)
    assert msg.startswith(f"p.yaml:{line}:")
    assert "tiers.medium.checks[1].id: unknown check 'testpol.rat'" in msg
    assert "did you mean 'testpol.rate'" in msg


def test_unknown_param_names_check_and_accepted_params() -> None:
    text = GOOD.replace("params: {metric: selection_rate}\n        threshold: {min: 0.9}",
                        "params: {metrc: selection_rate}\n        threshold: {min: 0.9}")
    msg = error_of(text)
    assert msg.startswith(f"p.yaml:{line(text, 'metrc')}:")
    assert "tiers.high.checks[0].params.metrc" in msg
    assert "has no parameter 'metrc'" in msg and "'metric', 'by'" in msg
    assert "did you mean 'metric'" in msg


def test_param_given_to_check_without_params() -> None:
    text = GOOD.replace("- id: testpol.rate\n        threshold: {min: 0.7",
                        "- id: testpol.rate\n        params: {x: 1}\n        threshold: {min: 0.7")
    msg = error_of(text)
    assert "has no parameter 'x' (accepted: none)" in msg


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        ("{}", "expected 'min', 'max' or both"),
        ("{min: 0.9, max: 0.1}", "expected min <= max, got min 0.9 > max 0.1"),
        ("0.8", "expected a mapping with 'min' and/or 'max', got 0.8"),
        ("{min: high}", "tiers.medium.checks[0].threshold.min: expected a valid number"),
        ("{minimum: 0.8}", "unknown field 'minimum'; did you mean 'min'?"),
    ],
)
def test_bad_thresholds(threshold: str, expected: str) -> None:
    text = GOOD.replace("threshold: {min: 0.8}", f"threshold: {threshold}")
    line = text.splitlines().index(f"        threshold: {threshold}") + 1
    msg = error_of(text)
    assert msg.startswith(f"p.yaml:{line}:"), msg
    assert expected in msg


def test_unknown_field_suggests_the_right_one() -> None:
    msg = error_of(GOOD.replace("severity: warn", "severty: warn"))
    assert "tiers.medium.checks[0].severty: unknown field 'severty'; did you mean 'severity'?" \
        in msg


def test_unknown_top_level_section() -> None:
    msg = error_of("name: n\nversion: 1\nmonitorin: {}\ntiers: {low: {}}\n")
    assert msg.startswith("p.yaml:3:") and "unknown field 'monitorin'" in msg
    assert "did you mean 'monitoring'" in msg


def test_missing_required_fields() -> None:
    msg = error_of("name: n\ntiers: {low: {}}\n")
    assert msg == "p.yaml:1:1: version: required field is missing"
    msg = error_of("name: n\nversion: 1\ntiers:\n  low:\n    checks:\n"
                   "      - threshold: {min: 1}\n")
    assert msg.startswith("p.yaml:6:") and "tiers.low.checks[0].id: required field is missing" \
        in msg


def test_several_problems_report_the_first_and_count_the_rest() -> None:
    text = GOOD.replace("severity: warn", "severity: nope").replace("judge: interval", "judge: x")
    with pytest.raises(PolicyError) as info:
        parse(text)
    # the judge line comes first in the file
    assert str(info.value).startswith(f"p.yaml:{line(text, 'judge: x')}:")
    assert "(and 1 more problem)" in str(info.value)
    assert len(info.value.details["problems"]) == 2


def test_bad_settings() -> None:
    msg = error_of(GOOD.replace("confidence: 0.9", "confidence: 95"))
    assert msg.startswith(f"p.yaml:{line(GOOD, 'confidence')}:")
    assert "settings.bootstrap.confidence: expected less than 1, got 95" in msg
    msg = error_of(GOOD.replace("min_group_size: 50", "min_group_size: 0"))
    assert "settings.min_group_size: expected greater than or equal to 1, got 0" in msg


def test_unknown_tier_requested() -> None:
    p = parse(GOOD)
    with pytest.raises(PolicyError) as info:
        p.tier("hihg")
    msg = str(info.value)
    assert msg.startswith("p.yaml: unknown tier 'hihg'")
    assert "'high', 'medium', 'low'" in msg and "did you mean 'high'" in msg


def test_extends_cycle() -> None:
    text = ("name: n\nversion: 1\ntiers:\n  high:\n    extends: medium\n  medium:\n"
            "    extends: low\n  low:\n    extends: high\n")
    msg = error_of(text)
    assert msg.startswith("p.yaml:5:")
    assert "cycle high -> medium -> low -> high" in msg


def test_extends_unknown_tier() -> None:
    msg = error_of("name: n\nversion: 1\ntiers:\n  high:\n    extends: mediun\n  medium: {}\n")
    assert msg.startswith("p.yaml:5:")
    assert "tiers.high.extends: expected one of 'medium', got 'mediun'" in msg


def test_drop_of_unknown_entry() -> None:
    msg = error_of(GOOD.replace("drop: [rate floor]", "drop: [rate flor]"))
    assert "tiers.low.drop[0]: expected a check of tier 'medium', got 'rate flor'" in msg
    assert "did you mean 'rate floor'" in msg


def test_same_check_twice_needs_distinct_names() -> None:
    msg = error_of(GOOD.replace("        name: rate floor\n", ""))
    assert "tiers.medium.checks[2]: check 'testpol.rate' is already listed at checks[1]" in msg


def test_empty_file_and_non_mapping() -> None:
    assert "got an empty file" in error_of("")
    assert "got a list" in error_of("- a\n- b\n")


def test_tier_must_be_a_mapping() -> None:
    msg = error_of("name: n\nversion: 1\ntiers:\n  high: 3\n")
    assert msg == "p.yaml:4:3: tiers.high: expected a valid dictionary, got 3"


def test_not_utf8() -> None:
    with pytest.raises(PolicyError, match=r"p\.yaml: expected UTF-8 text"):
        parse_policy(b"name: \xff\n", source="p.yaml")


# --------------------------------------------------------------------------- files and names


def test_load_from_path_records_path_digest_and_file_name(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text(GOOD, encoding="utf-8")
    p = load_policy(f)
    import hashlib

    assert p.sha256 == hashlib.sha256(GOOD.encode()).hexdigest()
    assert p.path == f.resolve()
    assert p.tier("medium").checks[0].source.startswith("mine.yaml:")
    assert load_policy(p) is p
    f.write_text(GOOD.replace("severity: warn", "severity: blocker"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"^mine\.yaml:\d+:\d+: tiers\.medium"):
        load_policy(str(f))


def test_yaml_anchors_share_entries_and_errors_still_point_at_the_line() -> None:
    text = ("name: a\nversion: 1\nx-auc: &auc\n  id: testpol.rate\n  judge: interval\n"
            "  rationale: shared\ntiers:\n  low:\n    checks:\n      - <<: *auc\n"
            "        threshold: {min: 0.6}\n  high:\n    checks:\n      - <<: *auc\n"
            "        threshold: {min: 0.8}\n        severity: blocker\n")
    msg = error_of(text)
    assert msg.startswith(f"p.yaml:{line(text, 'blocker')}:")
    p = parse(text.replace("blocker", "warn"))
    low, high = p.tier("low").checks[0], p.tier("high").checks[0]
    assert (low.id, low.judge_on, low.rationale, low.threshold.min) == \
        ("testpol.rate", JudgeOn.INTERVAL, "shared", 0.6)
    assert high.threshold.min == 0.8 and high.severity is Severity.WARN
    assert "x-auc" in p.extra_sections


def test_too_few_bootstrap_replicates() -> None:
    text = GOOD.replace("replicates: 200", "replicates: 20")
    msg = error_of(text)
    assert msg.startswith(f"p.yaml:{line(text, 'replicates')}:")
    assert "settings.bootstrap.replicates: expected 0 (no intervals) or at least 100" in msg
    assert parse(GOOD.replace("replicates: 200", "replicates: 0")).settings.bootstrap \
        .replicates == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: a\nversion: 1\ntiers: {}\n", "p.yaml:3:1: tiers: expected at least one tier"),
        ("name: a\nversion: 1\ntiers:\n  1: {}\n",
         "p.yaml:4:3: tiers[1]: expected names (text) as keys, got 1"),
        ("name: a\nversion: 1\ntiers:\n  low:\n    checks: {id: x}\n",
         "p.yaml:5:5: tiers.low.checks: expected a valid list, got a mapping"),
        ("name:\nversion: 1\ntiers:\n  low: {}\n",
         "p.yaml:1:1: name: expected text, got nothing (an empty value)"),
        ("name: a\nversion: 1\ntiers:\n  low:\n    checks:\n      - id: testpol.rate\n"
         "        regulations: ECOA\n",
         "p.yaml:7:9: tiers.low.checks[0].regulations: expected a valid list, got 'ECOA'"),
    ],
)
def test_shape_errors_read_like_sentences(text: str, expected: str) -> None:
    assert error_of(text) == expected


def test_check_of_a_module_that_failed_to_import(monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.policy import loader

    monkeypatch.setitem(loader.IMPORT_ERRORS, "gpu",
                        "ModuleNotFoundError: No module named 'cupy'")
    msg = error_of("name: n\nversion: 1\ntiers:\n  low:\n    checks:\n      - id: gpu.memory\n")
    assert msg == ("p.yaml:6: tiers.low.checks[0].id: check 'gpu.memory' is not available: "
                   "assay.checks.gpu could not be imported (ModuleNotFoundError: No module "
                   "named 'cupy')")
