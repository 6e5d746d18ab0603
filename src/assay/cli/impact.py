"""``assay impact``: what a model's decisions are worth, and what fairness costs.

    assay impact value --data FILE --target COL --positive-label V --score COL
                       --value "tp=..,fp=..,tn=..,fn=.." [--sensitive a,b] [--format json]
    assay impact frontier ... --sensitive COL --constraint demographic_parity_ratio
                       [--levels 0.8,0.9,1] [--randomized]
    assay impact scenarios ... --scenarios FILE.yaml [--model M]
    assay impact sensitivity ... [--model M --sensitive COL --group G --reference R]
                       [--chart tornado.svg]

The commands read local files only and write nothing, except with
``--record MODEL VERSION``: the result (and its chart) is then kept as evidence of
the version and shown in its impact report. Errors print one line and exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from assay.cli.impact_record import _digests, _record, _recorded
from assay.errors import AssayError, InputError, choice_error

impact = typer.Typer(help="Impact: the value of decisions, the price of fairness, "
                          "scenarios and sensitivity.",
                     no_args_is_help=True)

FORMATS = ("table", "json")
NAMES = {"n_boot": "--replicates", "seed": "--seed", "points": "--points",
         "constraint": "--constraint", "levels": "--levels", "sensitive": "--sensitive",
         "value": "--value"}

DATA = typer.Option(..., "--data", metavar="FILE", help="CSV or Parquet file.")
TARGET = typer.Option(..., "--target", metavar="COL", help="The label column.")
POSITIVE = typer.Option(..., "--positive-label", metavar="V",
                        help="The label value that is the positive outcome.")
SCORE = typer.Option(..., "--score", metavar="COL",
                     help="The score column; a positive decision is score >= threshold.")
VALUE = typer.Option(..., "--value", metavar="SPEC",
                     help='Value of each outcome: "tp=1,fp=-5,tn=0,fn=-1"; a name that '
                          "is not a number is a per-row column.")
FORMAT = typer.Option("table", "--format", "-f", help="table or json.")
RECORD = typer.Option(None, "--record", metavar="MODEL VERSION",
                      help="Also keep the result (and its chart) as evidence of this model "
                           "version, shown in its impact report (audited; needs an editor "
                           "of the impact record, --as USER or ASSAY_USER).")
AS_USER = typer.Option(None, "--as", help="Act as this user (default: $ASSAY_USER).")


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _floats(text: str, option: str) -> list[float]:
    out = []
    for p in _split(text):
        try:
            out.append(float(p))
        except ValueError:
            raise InputError(f"{option}: {p!r} is not a number") from None
    if not out:
        raise InputError(f"{option}: expected a comma-separated list of numbers")
    return out


def _working(text: str) -> Any:
    """A spinner on stderr while a long step runs (nothing when stderr is not a terminal)."""
    from rich.console import Console

    return Console(stderr=True).status(text)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise choice_error("--format", fmt, FORMATS)


def _emit_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:,.{digits}f}"
    return str(x)


def _ci(pair: Any) -> str:
    return "-" if not pair else f"[{_num(pair[0])}, {_num(pair[1])}]"


@impact.command("value")
def value_cmd(
    data: Path = DATA, target: str = TARGET, positive_label: str = POSITIVE,
    score: str = SCORE, value: str = VALUE,
    sensitive: str | None = typer.Option(None, "--sensitive", metavar="A,B",
                                         help="Sensitive columns: value per group "
                                              "(several: their intersections)."),
    points: int = typer.Option(200, "--points", help="Thresholds printed on the curve, "
                                                     "with intervals."),
    n_boot: int = typer.Option(1000, "--replicates", help="Bootstrap replicates (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    fmt: str = FORMAT, record: tuple[str, str] | None = RECORD, as_user: str | None = AS_USER,
) -> None:
    """Value of the rule score >= t at every threshold, and the best threshold.

    Overall and per group, with bootstrap intervals; the best threshold is exact over
    the distinct scores.
    """
    _check_format(fmt)
    from assay.impact import compute

    try:
        with _working("reading the data and computing the value curve..."):
            out = compute.value(data, target=target, positive_label=positive_label,
                                score=score, value=value, sensitive=_split(sensitive),
                                points=points, n_boot=n_boot, seed=seed)
    except AssayError as exc:
        raise exc.rename(NAMES) from None
    _recorded(_record(record, as_user, "value", out, _digests(data=data), {
        "target": target, "positive_label": positive_label, "score": score, "value": value,
        "sensitive": _split(sensitive), "points": points, "replicates": n_boot,
        "seed": seed}), record)
    if fmt == "json":
        _emit_json(out)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    b = out["best"]
    console.print(f"best threshold {_num(b['threshold'])}: value per decision "
                  f"{_num(b['value_per_decision'])} {_ci(b['value_per_decision_ci'])}, "
                  f"total {_num(b['total_value'], 2)}, selection rate "
                  f"{_num(b['selection_rate'])} ({out['settings']['exactness']})")
    t = Table("group", "n", "value/decision at best", "interval", "own best threshold",
              "own best value/decision", title="Per group")
    for g, row in out["groups"].items():
        t.add_row(g, str(row["n"]), _num(row["value_per_decision_at_best"]),
                  _ci(row["value_per_decision_at_best_ci"]),
                  _num(row["own_best_threshold"]), _num(row["own_best_value_per_decision"]))
    console.print(t)
    c = Table("threshold", "value/decision", "interval", "selection rate",
              title=f"Curve ({out['settings']['interval_grid']})")
    step = max(1, len(out["curve"]) // 20)
    for row in out["curve"][::step]:
        c.add_row(_num(row["threshold"]), _num(row["value_per_decision"]),
                  _ci(row["value_per_decision_ci"]), _num(row["selection_rate"]))
    console.print(c)


@impact.command("frontier")
def frontier_cmd(
    data: Path = DATA, target: str = TARGET, positive_label: str = POSITIVE,
    score: str = SCORE, value: str = VALUE,
    sensitive: str = typer.Option(..., "--sensitive", metavar="A,B",
                                  help="Sensitive columns (several: their intersections)."),
    constraint: str = typer.Option("demographic_parity_ratio", "--constraint",
                                   help="demographic_parity_ratio (>= level) or "
                                        "equal_opportunity_difference (<= level)."),
    levels: str | None = typer.Option(None, "--levels", metavar="L1,L2",
                                      help="Constraint levels (default 0.5..1 for the "
                                           "ratio, 0.2..0 for the difference)."),
    randomized: bool = typer.Option(False, "--randomized",
                                    help="Let each group mix two thresholds at random "
                                         "(as Fairlearn's ThresholdOptimizer does)."),
    fmt: str = FORMAT, record: tuple[str, str] | None = RECORD, as_user: str | None = AS_USER,
) -> None:
    """The value kept at each level of a fairness constraint (the price of fairness).

    Group-specific thresholds, deterministic or randomised; the price is in the value
    model's currency.
    """
    _check_format(fmt)
    from assay.impact import compute
    from assay.impact.frontier import CONSTRAINTS

    if constraint not in CONSTRAINTS:
        raise choice_error("--constraint", constraint, CONSTRAINTS)
    lv = _floats(levels, "--levels") if levels is not None else None
    try:
        with _working("reading the data and computing the frontier..."):
            out = compute.frontier(data, target=target, positive_label=positive_label,
                                   score=score, value=value, sensitive=_split(sensitive),
                                   constraint=constraint, levels=lv, randomized=randomized)
    except AssayError as exc:
        raise exc.rename(NAMES) from None
    _recorded(_record(record, as_user, "frontier", out, _digests(data=data), {
        "target": target, "positive_label": positive_label, "score": score, "value": value,
        "sensitive": _split(sensitive), "constraint": constraint, "levels": lv,
        "randomized": randomized}), record)
    if fmt == "json":
        _emit_json(out)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    u, s1 = out["unconstrained"], out["single_threshold"]
    console.print(f"single best threshold {_num(s1['threshold'])}: value per decision "
                  f"{_num(s1['value_per_decision'])}; group thresholds without constraint: "
                  f"{_num(u['value_per_decision'])} ({out['settings']['thresholds']})")
    t = Table("level", "value/decision", "price/decision", "achieved", "thresholds",
              title=f"Frontier: {constraint}")
    for row in out["levels"]:
        if not row["feasible"]:
            t.add_row(_num(row["level"]), "infeasible", "-", "-", "-")
            continue
        if randomized:
            thr = "; ".join(f"{g}: {_num(v['threshold_high'])}/{_num(v['threshold_low'])}"
                            f" p={_num(v['probability_high'], 3)}"
                            for g, v in row["groups"].items())
        else:
            thr = "; ".join(f"{g}: {_num(v['threshold'])}" for g, v in row["groups"].items())
        t.add_row(_num(row["level"]), _num(row["value_per_decision"]),
                  _num(row["price_per_decision"]), _num(row["achieved"]), thr)
    console.print(t)


MODEL = typer.Option(None, "--model", metavar="FILE",
                     help="Fitted model (joblib/pickle) that scores the data; needed to "
                          "change features. Load only files you trust.")
OPT_SCORE = typer.Option(None, "--score", metavar="COL",
                         help="The score column (or give --model to score the data).")


def _adapter(model_path: Path | None) -> Any:
    """The fitted model of ``--model`` (None without it)."""
    if model_path is None:
        return None
    from assay.data.model import load_model

    return load_model(model_path)


def _metric_table(title: str, base: dict[str, Any], rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    keys = [k for k in ("value_per_decision", "selection_rate", "true_positive_rate",
                        "accuracy", "demographic_parity_ratio",
                        "equal_opportunity_difference") if k in base]
    t = Table("scenario", "thresholds", *keys, title=title)
    for name, r in [("baseline", base), *[(r["name"], r) for r in rows]]:
        thr = sorted({_num(v) for v in r["thresholds"].values()})
        t.add_row(name, ", ".join(thr),
                  *[f"{_num(r.get(k))} {_ci(r.get(k + '_ci'))}" for k in keys])
    return t


@impact.command("scenarios")
def scenarios_cmd(
    data: Path = DATA, target: str = TARGET, positive_label: str = POSITIVE,
    value: str = VALUE,
    scenarios: Path = typer.Option(..., "--scenarios", metavar="FILE",
                                   help="Scenarios (YAML), see docs/impact.md."),
    score: str | None = OPT_SCORE, model_path: Path | None = MODEL,
    sensitive: str | None = typer.Option(None, "--sensitive", metavar="A,B",
                                         help="Sensitive columns (groups for fairness)."),
    threshold: float | None = typer.Option(None, "--threshold",
                                           help="Baseline threshold (default: the best "
                                                "single threshold for the value model)."),
    n_boot: int = typer.Option(1000, "--replicates", help="Bootstrap replicates (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    fmt: str = FORMAT, record: tuple[str, str] | None = RECORD, as_user: str | None = AS_USER,
) -> None:
    """Each scenario's metrics, value and fairness beside the baseline's.

    With bootstrap intervals; see docs/impact.md for the scenarios file.
    """
    _check_format(fmt)
    from assay.impact import compute

    try:
        if not scenarios.is_file():
            raise InputError(f"{scenarios}: no such scenarios file")
        text = scenarios.read_text(encoding="utf-8")
        with _working("scoring the data and running the scenarios..."):
            out = compute.scenarios(data, target=target, positive_label=positive_label,
                                    value=value, text=text, source=str(scenarios),
                                    score=score, adapter=_adapter(model_path),
                                    sensitive=_split(sensitive), threshold=threshold,
                                    n_boot=n_boot, seed=seed)
    except AssayError as exc:
        raise exc.rename({**NAMES, "model": "--model", "score": "--score"}) from None
    _recorded(_record(record, as_user, "scenarios", out,
                      _digests(data=data, scenarios=scenarios, model=model_path), {
        "target": target, "positive_label": positive_label, "score": score, "value": value,
        "sensitive": _split(sensitive), "threshold": threshold, "replicates": n_boot,
        "seed": seed}), record)
    if fmt == "json":
        _emit_json(out)
        return
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    console.print(f"baseline rule: {out['settings']['baseline_rule']} "
                  f"({_num(out['settings']['baseline_threshold'])})")
    console.print(_metric_table("Scenarios", out["baseline"], out["scenarios"]))


@impact.command("sensitivity")
def sensitivity_cmd(
    data: Path = DATA, target: str = TARGET, positive_label: str = POSITIVE,
    value: str = VALUE,
    score: str | None = OPT_SCORE, model_path: Path | None = MODEL,
    sensitive: str | None = typer.Option(None, "--sensitive", metavar="A,B",
                                         help="Sensitive columns (with --model, --group "
                                              "and --reference: which features drive the gap)."),
    group: str | None = typer.Option(None, "--group", help="The group whose gap is studied."),
    reference: str | None = typer.Option(None, "--reference", help="The reference group."),
    features: str | None = typer.Option(None, "--features", metavar="A,B",
                                        help="Features to swap (default: the model's inputs)."),
    rate: str = typer.Option("selection_rate", "--rate",
                             help="selection_rate or true_positive_rate."),
    threshold: float | None = typer.Option(None, "--threshold",
                                           help="Decision threshold (default: the best "
                                                "single threshold for the value model)."),
    spread: float = typer.Option(0.5, "--spread",
                                 help="Tornado range: each assumption +/- this share."),
    chart: Path | None = typer.Option(None, "--chart", metavar="FILE",
                                      help="Write the tornado chart (SVG) to FILE."),
    n_boot: int = typer.Option(1000, "--replicates", help="Bootstrap replicates (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed (bootstrap, category draws)."),
    fmt: str = FORMAT, record: tuple[str, str] | None = RECORD, as_user: str | None = AS_USER,
) -> None:
    """Which assumptions move the value (tornado), and which features drive a gap.

    The feature part needs --model, --group and --reference.
    """
    _check_format(fmt)
    from assay.impact import compute

    try:
        with _working("scoring the data and measuring sensitivity..."):
            out = compute.sensitivity(
                data, target=target, positive_label=positive_label, value=value,
                score=score, adapter=_adapter(model_path), sensitive=_split(sensitive),
                group=group, reference=reference, features=_split(features), rate=rate,
                threshold=threshold, spread=spread, n_boot=n_boot, seed=seed)
            torn = out["tornado"]
    except AssayError as exc:
        raise exc.rename({**NAMES, "group": "--group", "reference": "--reference",
                          "features": "--features", "rate": "--rate", "model": "--model",
                          "score": "--score", "spread": "--spread"}) from None
    _recorded(_record(record, as_user, "sensitivity", out,
                      _digests(data=data, model=model_path), {
        "target": target, "positive_label": positive_label, "score": score, "value": value,
        "sensitive": _split(sensitive), "group": group, "reference": reference,
        "features": _split(features), "rate": rate, "threshold": threshold,
        "spread": spread, "replicates": n_boot, "seed": seed}), record)
    if chart is not None:
        from assay.report.charts import tornado

        svg = tornado([(f"{r['outcome']} = {r['assumption']}",
                        r["low"]["value_per_decision_at_baseline_threshold"],
                        r["high"]["value_per_decision_at_baseline_threshold"])
                       for r in torn["rows"]], torn["baseline_value_per_decision"],
                      title="Value per decision: one assumption at a time",
                      xlabel="value per decision at the baseline threshold")
        chart.write_text((svg or "") + "\n", encoding="utf-8")
    if fmt == "json":
        _emit_json(out)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    t = Table("outcome", "low", "value/decision", "high", "value/decision", "swing",
              title=f"Tornado (baseline {_num(torn['baseline_value_per_decision'])} at "
                    f"threshold {_num(torn['baseline_threshold'])}; {torn['settings']['range']})")
    for r in torn["rows"]:
        t.add_row(r["outcome"], r["low"]["assumption"],
                  _num(r["low"]["value_per_decision_at_baseline_threshold"]),
                  r["high"]["assumption"],
                  _num(r["high"]["value_per_decision_at_baseline_threshold"]), _num(r["swing"]))
    console.print(t)
    if "features" in out:
        fs = out["features"]
        t2 = Table("feature", "gap after", "remaining share", "interval",
                   title=f"{fs['rate']} gap {fs['group']} - {fs['reference']}: "
                         f"{_num(fs['gap'])}")
        for r in fs["features"]:
            t2.add_row(r["feature"], _num(r["gap_after"]), _num(r["remaining_share"]),
                       _ci(r.get("remaining_share_ci")))
        console.print(t2)


def register(app: typer.Typer) -> None:
    from assay.cli.impact_record import register as register_record

    register_record(impact)  # assess, show, kpi, register, feedback, abtest, did, rdd, report
    app.add_typer(impact, name="impact")
