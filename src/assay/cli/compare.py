"""``assay compare`` (is the new model better?) and ``assay mitigate`` (bias mitigation
proposals).

The numbers come from :mod:`assay.metrics.compare` and :mod:`assay.impact.mitigation`;
these commands parse options, call them, render a table or JSON and, with
``--record MODEL@VERSION``, keep the result as evidence of that version (an impact
analysis of kind ``comparison`` or ``mitigation``: audited, editors of the impact
record only, ``--as USER`` or ``ASSAY_USER``). A proposal changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from assay.cli.monitor import AS_HELP, FORMAT_HELP, _e, _emit, _format, console
from assay.errors import InputError

RECORD_HELP = ("Keep the result as evidence of this model version (MODEL@VERSION; audited; "
               "needs an editor of the impact record, --as USER or ASSAY_USER).")


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}"


def _p(v: Any) -> str:
    return "-" if v is None else (f"{v:.3g}" if v >= 1e-4 else "<1e-4")


def _ci(ci: Any) -> str:
    return "-" if not ci else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _target(record: str | None) -> tuple[str, str] | None:
    if record is None:
        return None
    model, sep, version = record.rpartition("@")
    if not sep or not model.strip() or not version.strip():
        raise InputError(f"--record: expected MODEL@VERSION, got {record!r}")
    return model.strip(), version.strip()


def _keep(record: str | None, as_user: str | None, kind: str, result: dict[str, Any],
          files: dict[str, Path | None], parameters: dict[str, Any]) -> None:
    target = _target(record)
    if target is None:
        return
    from assay.cli.impact_record import _digests, _record, _recorded

    rec = _record(target, as_user, kind, result, _digests(**files), parameters)
    _recorded(rec, target)


def _read_results(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not a results.json of 'assay certify'")
    return doc


def _table(title: str, sections: list[tuple[str, dict[str, dict[str, Any]]]],
           extra: str | None = None) -> None:
    from rich.table import Table

    table = Table(title=title)
    for col in ("scope", "metric", "old", "new", "new - old", "interval", "p", "better"):
        table.add_column(col, justify="left" if col in ("scope", "metric", "better")
                         else "right")
    for scope, rows in sections:
        for name, r in rows.items():
            better = {"no significant difference": "n.s."}.get(r.get("better") or "-",
                                                                r.get("better") or "-")
            style = {"new": "green", "old": "red"}.get(better)
            table.add_row(_e(scope), _e(name), _num(r.get("old")), _num(r.get("new")),
                          _num(r.get("difference")), _ci(r.get("ci")), _p(r.get("p_value")),
                          f"[{style}]{better}[/]" if style else better)
    console.print(table)
    if extra:
        console.print(extra)


def register(app: typer.Typer) -> None:
    """Add ``assay compare`` and the ``assay mitigate`` group."""

    @app.command("compare")
    def compare_cmd(
        old_results: Path | None = typer.Argument(None, help="results.json of the old model."),
        new_results: Path | None = typer.Argument(None, help="results.json of the new model."),
        paired: bool = typer.Option(False, "--paired", help="Results: refuse results of "
                                    "different evaluation data."),
        data: Path | None = typer.Option(None, "--data", help="Paired: the rows both models "
                                         "scored (CSV or Parquet)."),
        target: str | None = typer.Option(None, "--target", help="The label column."),
        positive_label: str = typer.Option("1", "--positive-label", metavar="V",
                                           help="The label value that is the positive outcome."),
        old_score: str | None = typer.Option(None, "--old-score", help="Old model's score."),
        new_score: str | None = typer.Option(None, "--new-score", help="New model's score."),
        old_prediction: str | None = typer.Option(None, "--old-prediction",
                                                  help="Old model's decision column."),
        new_prediction: str | None = typer.Option(None, "--new-prediction",
                                                  help="New model's decision column."),
        old_model: Path | None = typer.Option(None, "--old-model", help="Old model file "
                                              "(applied to --data)."),
        new_model: Path | None = typer.Option(None, "--new-model", help="New model file."),
        sensitive: list[str] | None = typer.Option(None, "--sensitive",
                                                   help="Also compare per group of this "
                                                   "column (repeat for intersections)."),
        threshold: float = typer.Option(0.5, "--threshold", help="Decision: score >= this."),
        confidence: float = typer.Option(0.95, "--confidence"),
        replicates: int = typer.Option(2000, "--replicates", help="Paired bootstrap "
                                       "replicates."),
        seed: int = typer.Option(0, "--seed"),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        record: str | None = typer.Option(None, "--record", metavar="MODEL@VERSION",
                                          help=RECORD_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Is the new model better? Differences with intervals and significance.

        Two results.json files: every metric both carry, overall and per group. Or one
        data set scored by both models (--data): DeLong for AUC, McNemar for accuracy,
        a paired bootstrap for the rest.
        """
        from assay.metrics.compare import compare_data, compare_results

        _format(fmt)
        _target(record)
        files: dict[str, Path | None]
        if data is not None:
            if old_results is not None or new_results is not None:
                raise InputError("give two results.json files or --data, not both")
            if not target:
                raise InputError("--target: the label column is required with --data")
            out = compare_data(data, target=target, positive_label=positive_label,
                               old_score=old_score, new_score=new_score,
                               old_prediction=old_prediction, new_prediction=new_prediction,
                               old_model=old_model, new_model=new_model,
                               sensitive=sensitive or (), threshold=threshold,
                               confidence=confidence, n_boot=replicates, seed=seed)
            files = {"data": data, "old_model": old_model, "new_model": new_model}
            params: dict[str, Any] = {
                "target": target, "positive_label": positive_label, "old_score": old_score,
                "new_score": new_score, "old_prediction": old_prediction,
                "new_prediction": new_prediction, "sensitive": sensitive or [],
                "threshold": threshold, "confidence": confidence, "replicates": replicates,
                "seed": seed}
        else:
            if old_results is None or new_results is None:
                raise InputError("give two results.json files (OLD NEW) or --data FILE "
                                 "with the columns of both models")
            out = compare_results(_read_results(old_results), _read_results(new_results),
                                  paired=paired, confidence=confidence,
                                  old_name=str(old_results), new_name=str(new_results))
            files = {"old_results": old_results, "new_results": new_results}
            params = {"paired": paired, "confidence": confidence}
        _keep(record, as_user, "comparison", out, files, params)
        if fmt == "json":
            _emit(out)
            return
        sections = [("overall", out["overall"]),
                    *[(f"{(out.get('grouping') or '') and out['grouping'] + '='}{g}"
                       if out["kind"] == "paired" else g, rows)
                      for g, rows in out["groups"].items()]]
        if out["kind"] == "results":
            sections.append(("checks", {k: v for k, v in out["checks"].items()
                                        if v.get("difference") is not None}))
            title = ("Same evaluation data (conservative intervals)" if out["same_data"]
                     else "Independent evaluations")
        else:
            title = (f"Paired comparison on {out['rows']} rows "
                     f"({out['positives']} positive)")
        _table(title, sections)
        for note in out["notes"]:
            console.print(f"note: {_e(note)}")

    mitigate = typer.Typer(help="Bias mitigation proposals (group thresholds, reweighing); "
                           "nothing is applied.\n\nA proposal changes no model, threshold or "
                           "policy: applying it means registering a new version and "
                           "certifying it.",
                           no_args_is_help=True)
    app.add_typer(mitigate, name="mitigate")

    @mitigate.command("thresholds")
    def thresholds_cmd(
        data: Path = typer.Option(..., "--data", help="Scored rows (CSV or Parquet)."),
        target: str = typer.Option(..., "--target", help="The label column."),
        positive_label: str = typer.Option("1", "--positive-label", metavar="V",
                                           help="The label value that is the positive outcome."),
        score: str = typer.Option(..., "--score", help="The score column (a positive "
                                  "decision is score >= the group's threshold)."),
        sensitive: list[str] = typer.Option(..., "--sensitive", help="Protected attribute "
                                            "(repeat for intersections)."),
        constraint: str = typer.Option("demographic_parity_difference", "--constraint",
                                       help="demographic_parity_difference, "
                                       "equal_opportunity_difference or "
                                       "equalized_odds_difference."),
        target_gap: float = typer.Option(0.05, "--max-gap", help="The fairness target: the "
                                         "difference must be at most this."),
        threshold: float = typer.Option(0.5, "--threshold", help="Today's single threshold "
                                        "(the 'before')."),
        value: str | None = typer.Option(None, "--value", help="Maximise value instead of "
                                         "accuracy: \"tp=1,fp=-5,tn=0,fn=-1\" (numbers or "
                                         "per-row columns)."),
        html: Path | None = typer.Option(None, "--html", help="Write the HTML report."),
        svg: Path | None = typer.Option(None, "--svg", help="Write the trade-off chart."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        record: str | None = typer.Option(None, "--record", metavar="MODEL@VERSION",
                                          help=RECORD_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Group-specific thresholds that meet a fairness target at the least loss."""
        from assay.impact.mitigation import render_html, thresholds_from_data, tradeoff_svg
        from assay.impact.value import parse_value_model

        _format(fmt)
        _target(record)
        vm = parse_value_model(value) if value else None
        out = thresholds_from_data(data, target=target, positive_label=positive_label,
                                   score=score, sensitive=sensitive, value=vm,
                                   constraint=constraint, max_gap=target_gap,
                                   threshold=threshold)
        _keep(record, as_user, "mitigation", out, {"data": data}, {
            "method": "thresholds", "target": target, "positive_label": positive_label,
            "score": score, "sensitive": sensitive, "constraint": constraint,
            "max_gap": target_gap, "threshold": threshold, "value": value})
        if html is not None:
            html.write_text(render_html(out), encoding="utf-8")
        if svg is not None:
            svg.write_text(tradeoff_svg(out) or "", encoding="utf-8")
        if fmt == "json":
            _emit(out)
            return
        _print_thresholds(out)

    @mitigate.command("reweigh")
    def reweigh_cmd(
        data: Path = typer.Option(..., "--data", help="Training rows (CSV or Parquet)."),
        target: str = typer.Option(..., "--target", help="The label column."),
        positive_label: str = typer.Option("1", "--positive-label", metavar="V",
                                           help="The label value that is the positive outcome."),
        sensitive: list[str] = typer.Option(..., "--sensitive", help="Protected attribute "
                                            "(repeat for intersections)."),
        out_path: Path = typer.Option(..., "--out", help="Per-row weights: .csv or .parquet "
                                      "(one column 'weight', in the rows' order)."),
        cells: Path | None = typer.Option(None, "--cells", help="Also write the per-cell "
                                          "table (CSV)."),
        html: Path | None = typer.Option(None, "--html", help="Write the HTML report."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        record: str | None = typer.Option(None, "--record", metavar="MODEL@VERSION",
                                          help=RECORD_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Reweighing weights (Kamiran-Calders) for retraining: group and label independent."""
        from assay.impact.mitigation import reweigh_data

        _format(fmt)
        _target(record)
        if out_path.suffix.lower() not in (".csv", ".parquet"):
            raise InputError(f"--out {out_path}: expected a .csv or .parquet file name")
        out = reweigh_data(data, target=target, positive_label=positive_label,
                           sensitive=sensitive, out=out_path, cells=cells, html=html)
        _keep(record, as_user, "mitigation", out, {"data": data, "weights": out_path}, {
            "method": "reweigh", "target": target, "positive_label": positive_label,
            "sensitive": sensitive})
        if fmt == "json":
            _emit(out)
            return
        from rich.table import Table

        table = Table(title=f"Reweighing: {out['rows']} rows, weights written to "
                      f"{_e(out_path)}")
        for col in ("group", "label", "rows", "expected rows", "weight"):
            table.add_column(col, justify="left" if col == "group" else "right")
        for r in out["cells"]:
            table.add_row(_e(r["group"]), str(r["label"]), str(r["rows"]),
                          _num(r["expected_rows"]), _num(r["weight"]))
        console.print(table)
        console.print(f"note: {_e(out['notice'])}")


def _print_thresholds(out: dict[str, Any]) -> None:
    from rich.table import Table

    c = out["constraint"]
    console.print(f"[bold]{_e(c)} <= {out['max_gap']:g}[/], objective {out['objective']}, "
                  f"{out['rows']} rows")
    if not out["feasible"]:
        console.print("[red]no set of thresholds meets the target[/]")
    table = Table(title="Per group: before (one threshold) -> after (proposal)")
    for col in ("group", "threshold", "selection rate", "TPR", "FPR", "accuracy",
                "value/decision"):
        table.add_column(col, justify="left" if col == "group" else "right")
    after = (out.get("after") or {}).get("groups") or {}
    for g, b in out["before"]["groups"].items():
        a = after.get(g)

        def pair(k: str, b: dict[str, Any] = b, a: dict[str, Any] | None = a) -> str:
            return _num(b[k]) + (f" -> {_num(a[k])}" if a else "")

        table.add_row(_e(g), pair("threshold"), pair("selection_rate"), pair("tpr"),
                      pair("fpr"), pair("accuracy"), pair("value_per_decision"))
    console.print(table)
    if out.get("cost"):
        cost = out["cost"]
        console.print(f"{_e(c)}: {_num(cost['gap_before'])} -> {_num(cost['gap_after'])}; "
                      f"cost: accuracy {_num(cost['accuracy'])}, value per decision "
                      f"{_num(cost['value_per_decision'])}")
    console.print(f"note: {_e(out['notice'])}")
