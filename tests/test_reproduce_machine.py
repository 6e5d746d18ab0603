"""A reproduction compares what a certification found, not how fast the machine was."""

from __future__ import annotations

import copy

from assay.registry.reproduce import compare_results


def _results() -> dict:
    def check(cid: str, family: str, value: float) -> dict:
        return {"id": cid, "family": family, "status": "pass", "value": value,
                "threshold": {"max": 500}, "severity": "warn",
                "measurements": [{"label": "p99", "value": value, "n": 113}],
                "details": {"latency_ms": {"p99": value}}, "message": f"p99 {value} ms"}

    return {"status": "passed", "summary": {"pass": 2}, "metrics": {"auc": 0.8},
            "policy": {"sha256": "p"}, "model": {"sha256": "m"},
            "data": {"evaluation": {"sha256": "e", "rows": 10}},
            "checks": [check("operational.latency_p99_ms", "operational", 4.95),
                       check("performance.roc_auc", "performance", 0.8)]}


def test_operational_figures_are_measured_again_not_compared() -> None:
    recorded = _results()
    again = copy.deepcopy(recorded)
    op = again["checks"][0]
    op.update(value=4.82, message="p99 4.82 ms")
    op["measurements"][0].update(value=4.82, n=115)
    op["details"]["latency_ms"]["p99"] = 4.82
    _, mismatches = compare_results(recorded, again)
    assert mismatches == []
    # its policy entry is still compared ...
    op["threshold"] = {"max": 100}
    _, mismatches = compare_results(recorded, again)
    assert [m.where for m in mismatches] == ["check operational.latency_p99_ms.threshold.max"]
    # ... and any other family's value, to the last digit
    again = copy.deepcopy(recorded)
    again["checks"][1]["measurements"][0]["value"] = 0.8000001
    _, mismatches = compare_results(recorded, again)
    assert [m.where for m in mismatches] == [
        "check performance.roc_auc.measurements[p99].value"]
