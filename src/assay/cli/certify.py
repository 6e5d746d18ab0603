"""``assay certify``, ``assay demo``, ``assay policy ...`` and ``assay checks``.

Commands parse their options, call the domain layer (``assay.certification``,
``assay.policy``, ``assay.checks``, ``assay.demo``) and render the result with
rich. Exit codes: 0 passed (warnings allowed), 1 blocked by the policy,
2 bad input (an :class:`~assay.errors.AssayError`, printed on one line by the
handler in ``assay.cli``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from assay.errors import AssayError, InputError, PolicyError, choice_error

if TYPE_CHECKING:
    from rich.progress import Progress

STATUS_STYLE = {
    "pass": ("✓", "green"),
    "warn": ("!", "yellow"),
    "fail": ("✗", "bold red"),
    "skip": ("–", "dim"),
    "error": ("⚠", "magenta"),
}
VERDICT_STYLE = {
    "passed": ("✓ PASSED", "bold green"),
    "passed_with_warnings": ("! PASSED WITH WARNINGS", "bold yellow"),
    "blocked": ("✗ BLOCKED", "bold red"),
}
EXIT_PASSED = 0
EXIT_BLOCKED = 1


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


#: How ``assay certify`` names the arguments of :func:`assay.certification.certify`, for
#: errors that name them (see :meth:`assay.errors.AssayError.rename`).
CERTIFY_FLAGS = {
    "data": "--data", "policy": "--policy", "tier": "--tier", "target": "--target",
    "model": "--model", "reference": "--train", "prediction": "--prediction",
    "score": "--score", "sensitive": "--sensitive", "features": "--features",
    "weight": "--weight", "positive_label": "--positive-label", "task": "--task",
    "na_values": "--na-values", "csv": "--delimiter", "trust_model_file": "--trust-model-file",
    "class_scores": "--class-scores",
}


@contextmanager
def flag_names(names: Mapping[str, str]) -> Iterator[None]:
    """Errors raised inside name the arguments they are about by these command-line flags."""
    try:
        yield
    except AssayError as exc:
        raise exc.rename(names) from exc.__cause__


def choice(value: str, choices: Sequence[str], flag: str) -> str:
    """``value`` if it is one of ``choices``; else an InputError naming the flag and the choices."""
    if value in choices:
        return value
    raise choice_error(flag, value, choices)


# ---------------------------------------------------------------------------
# progress: the orchestration reports long steps; rich draws them


class RichProgress:
    """Draws the certification's progress reports with rich.

    Implements ``assay.certification.ProgressReporter``: the orchestration
    calls ``start(description, total)`` when a long step begins (``total`` is
    None when unknown) and gets a task whose ``advance(n)`` it calls as work
    completes and whose ``finish()`` it calls (or whose ``with`` block it
    leaves) when the step ends. Calling the reporter itself is the same as
    ``start``.
    """

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def start(self, description: str, total: int | float | None = None) -> _Task:
        task_id = self._progress.add_task(escape(str(description)), total=total)
        return _Task(self._progress, task_id)

    __call__ = start


class _Task:
    def __init__(self, progress: Progress, task_id: Any) -> None:
        self._progress = progress
        self._id = task_id
        self._closed = False

    def advance(self, n: int | float = 1) -> None:
        self._progress.advance(self._id, n)

    def update(self, completed: int | float | None = None, *, total: int | float | None = None,
               description: str | None = None, **_: Any) -> None:
        kwargs: dict[str, Any] = {}
        if completed is not None:
            kwargs["completed"] = completed
        if total is not None:
            kwargs["total"] = total
        if description is not None:
            kwargs["description"] = escape(str(description))
        self._progress.update(self._id, **kwargs)

    def finish(self) -> None:
        """Mark the step done (a step of unknown length shows as complete)."""
        if self._closed:
            return
        self._closed = True
        for task in self._progress.tasks:
            if task.id == self._id:
                total = task.total if task.total is not None else max(task.completed, 1)
                self._progress.update(self._id, total=total, completed=total)

    close = finish

    def __enter__(self) -> _Task:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


@contextmanager
def rich_progress(console: Console, *, enabled: bool = True) -> Iterator[RichProgress | None]:
    """A progress display on ``console`` (stderr), or None when disabled."""
    if not enabled:
        yield None
        return
    # imported here: rich.progress is of no use to any other command, nor to --help
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        yield RichProgress(progress)


# ---------------------------------------------------------------------------
# rendering results


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        if x != x:  # NaN
            return "—"
        return f"{x:.4g}"
    return str(x)


def _fmt_threshold(t: Mapping[str, Any] | None) -> str:
    if not t:
        return "—"
    lo, hi = t.get("min"), t.get("max")
    if lo is not None and hi is not None:
        return f"{_fmt(lo)} to {_fmt(hi)}"
    if lo is not None:
        return f">= {_fmt(lo)}"
    return f"<= {_fmt(hi)}" if hi is not None else "—"


def checks_table(results: Mapping[str, Any], *, compact: bool = False) -> Table:
    """The table of checks that ``assay certify`` prints, from the results dict.

    ``compact`` fits 80 columns: the status is a symbol and the worst group or
    feature goes under the check id.
    """
    policy = results.get("policy") or {}
    title = f"{policy.get('name', 'policy')} · tier {policy.get('tier', '?')}"
    table = Table(title=escape(title), title_justify="left", header_style="bold",
                  expand=False, pad_edge=False)
    ids = [str(c.get("id")) for c in results.get("checks") or []]
    # a check listed twice (two thresholds, two severities) is told apart by its entry's name
    repeated = {i for i in ids if ids.count(i) > 1}
    table.add_column("" if compact else "status", no_wrap=True)
    if compact:
        table.add_column("check · worst group / feature", overflow="fold")
    else:
        table.add_column("check", no_wrap=True, min_width=min(max(map(len, ids), default=5), 44))
        table.add_column("worst group / feature", overflow="fold")
    table.add_column("value [CI]", justify="right", no_wrap=True)
    table.add_column("threshold", justify="right", no_wrap=True)
    table.add_column("sev." if compact else "severity", no_wrap=True)
    for c in results.get("checks") or []:
        status = str(c.get("status"))
        symbol, style = STATUS_STYLE.get(status, ("?", ""))
        value = _fmt(c.get("value"))
        ci = c.get("ci")
        if ci and ci[0] is not None and ci[1] is not None:
            value += f"\n[dim][{_fmt(ci[0])}, {_fmt(ci[1])}][/]"
        if status == "skip":
            worst = f"[dim]{escape(str(c.get('message') or 'skipped'))}[/]"
        elif status == "error":
            worst = f"[magenta]{escape(str(c.get('message') or 'error'))}[/]"
        else:
            worst = escape(str(c.get("worst") or "—"))
        cid = escape(str(c.get("id")))
        if str(c.get("id")) in repeated and c.get("title"):
            cid += f"\n[dim]{escape(str(c.get('title')))}[/]"
        severity = "block" if c.get("severity") == "block" else "warn"
        threshold = escape(_fmt_threshold(c.get("threshold")))
        if compact:
            table.add_row(f"[{style}]{symbol}[/]", f"{cid}\n[dim]{worst}[/]", value, threshold,
                          severity)
        else:
            table.add_row(f"[{style}]{symbol} {status}[/]", cid, worst, value, threshold,
                          severity)
    return table


def print_results(console: Console, results: Mapping[str, Any],
                  written: Mapping[str, Path] | None = None) -> None:
    """Print the checks table, the one-line verdict and the files written."""
    console.print(checks_table(results, compact=console.width < 110))
    s = results.get("summary") or {}
    counts = ", ".join(f"{s.get(k, 0)} {k}" for k in ("pass", "warn", "fail", "skip", "error"))
    from assay.report.verdict import explain_verdict

    label, style = VERDICT_STYLE.get(str(results.get("status")),
                                     (str(results.get("status")).upper(), "bold"))
    text = escape(explain_verdict(results))
    console.print(f"[{style}]{label}[/] ({counts}): {text}", highlight=False)
    for note in results.get("notes") or []:
        console.print(f"[yellow]note:[/] {escape(str(note))}", highlight=False)
    for kind, path in (written or {}).items():
        console.print(f"  {kind}: {escape(str(path))}")


# ---------------------------------------------------------------------------
# the domain calls


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def _certify_fn() -> Any:
    try:
        from assay.certification import certify
    except ModuleNotFoundError as exc:  # pragma: no cover - only while the package is assembled
        if exc.name and exc.name.startswith("assay"):
            raise InputError("certification is not available in this build of assay "
                             f"(missing module {exc.name})") from None
        raise
    return certify


def _written_paths(cert: Any, out_dir: Path, written: Any) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    if isinstance(written, Mapping):
        for k, v in written.items():
            paths[str(k)] = Path(v)
    elif isinstance(written, list | tuple):
        for v in written:
            paths[Path(v).name] = Path(v)
    if not paths:
        for name in ("results.json", "report.html"):
            if (out_dir / name).exists():
                paths[name] = out_dir / name
    return paths


def _red_team_findings(ref: str) -> list[dict[str, Any]]:
    """The findings recorded in the store for ``MODEL@VERSION`` (``--red-team``)."""
    model, sep, version = ref.rpartition("@")
    if not sep or not model or not version:
        raise InputError(f"--red-team: expected MODEL@VERSION, got {ref!r}")
    from assay.registry.redteam import findings_for
    from assay.store import open_store

    with open_store().transaction() as s:
        return findings_for(s, model, version)


def run_certification(console: Console, *, out_dir: Path, output: OutputFormat,
                      quiet_progress: bool = False, sign_key: Path | None = None,
                      engine: str = "local", **kwargs: Any) -> int:
    """Certify, write results.json and report.html (and results.intoto.json, signed with
    ``sign_key``), print, return the exit code. ``engine="spark"`` reads the data with
    Spark (``assay.spark.certify``; ``kwargs`` may then hold ``master``)."""
    key = None
    if sign_key is not None:  # a bad key is refused before any data is read
        from assay.evidence.attest import load_private_key

        key = load_private_key(sign_key)
    if engine == "spark":
        from assay.spark import certify
    else:
        certify = _certify_fn()
    err = Console(stderr=True)
    show_progress = not quiet_progress and err.is_terminal
    with rich_progress(err, enabled=show_progress) as progress:
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError(f"{out_dir}: expected an output directory, got a file")
        cert = certify(progress=progress, **kwargs)
        results = cert.to_dict()
        written = _written_paths(cert, out_dir, cert.write(out_dir, results=results))
        if key is not None:
            from assay.evidence.predicates import sign_results, write_envelope

            envelope = sign_results(out_dir / "results.json", key)
            written["results.intoto.json"] = write_envelope(envelope,
                                                            out_dir / "results.intoto.json")
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    else:
        print_results(console, results, {k: v.resolve() for k, v in written.items()})
    return EXIT_BLOCKED if results.get("status") == "blocked" else EXIT_PASSED


def _read_results(path: Path) -> dict[str, Any]:
    """A results.json file as a dict; InputError naming the file otherwise."""
    if not path.is_file():
        raise InputError(f"{path}: results file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: expected a results.json text file, got binary data") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: expected JSON ({exc.msg})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a results.json object, got {type(data).__name__}")
    return data


# ---------------------------------------------------------------------------
# policies and checks


def _load_policy(path: Path | str) -> Any:
    from assay.policy import load_policy

    return load_policy(path)


def _resolve_policy(name_or_path: str) -> Path:
    from assay.policy import resolve_policy_path

    return resolve_policy_path(name_or_path)


def _policy_tiers(policy: Any) -> dict[str, Any]:
    tiers = getattr(policy, "tiers", None) or {}
    return dict(tiers)


def _policy_table(policy: Any, tier: str | None = None) -> list[Table]:
    tables = []
    for name, t in _policy_tiers(policy).items():
        if tier is not None and name != tier:
            continue
        table = Table(title=f"tier {escape(str(name))}", title_justify="left",
                      header_style="bold")
        for col in ("check", "threshold", "judged on", "severity", "params"):
            table.add_column(col)
        for spec in getattr(t, "checks", []) or []:
            th = spec.threshold.to_dict() if getattr(spec, "threshold", None) else None
            params = getattr(spec, "params", None) or {}
            table.add_row(
                escape(str(spec.id)) + (f"\n[dim]{escape(str(spec.name))}[/]"
                                        if getattr(spec, "name", None) else ""),
                escape(_fmt_threshold(th)),
                str(getattr(spec, "judge_on", "point")),
                str(getattr(spec, "severity", "block")),
                escape(", ".join(f"{k}={v}" for k, v in params.items())),
            )
        tables.append(table)
        plan = getattr(t, "monitoring", None)
        if plan is not None and plan.rules:
            tables.append(_monitoring_table(str(name), plan))
        release = getattr(t, "release", None)
        if release is not None and release.promote_if:
            tables.append(_release_table(str(name), release))
    return tables


def _release_table(tier: str, plan: Any) -> Table:
    """A tier's release rule (docs/releases.md): environments, who takes a version to full,
    and when a challenger may replace the champion."""
    table = Table(title=f"tier {escape(tier)}: release", title_justify="left",
                  header_style="bold")
    for col in ("release", "value"):
        table.add_column(col)
    table.add_row("environments", escape(", ".join(plan.environments)))
    table.add_row("full traffic", "someone other than the developer" if plan.independent_full
                  else "anyone allowed, the developer too")
    table.add_row("test", escape(str(plan.test)))
    table.add_row("labelled rows", f"at least {plan.min_rows}"
                  + ("; a comparison is required" if plan.require_comparison else ""))
    for rule in plan.promote_if:
        table.add_row(f"promote if {escape(rule.label)}",
                      f"not worse than {rule.margin:g} (alpha {rule.alpha:g})")
    return table


def _monitoring_table(tier: str, plan: Any) -> Table:
    """A tier's monitoring plan: window, retention and each rule's alerting options."""
    table = Table(title=f"tier {escape(tier)}: monitoring, {escape(str(plan.window))} windows, "
                        f"rows kept {plan.retention_days} days",
                  title_justify="left", header_style="bold")
    for col in ("rule", "threshold", "judged on", "severity", "alert", "params"):
        table.add_column(col)
    for rule in plan.rules:
        spec = rule.spec
        th = spec.threshold.to_dict() if getattr(spec, "threshold", None) else None
        alert = f"after {rule.consecutive} window(s)"
        if rule.cooldown:
            alert += f", cool-down {rule.cooldown}"
        alert += f"; {rule.action}"
        params = getattr(spec, "params", None) or {}
        table.add_row(
            escape(str(spec.id)) + (f"\n[dim]{escape(str(spec.name))}[/]"
                                    if getattr(spec, "name", None) else ""),
            escape(_fmt_threshold(th)),
            str(getattr(spec, "judge_on", "point")),
            str(getattr(spec, "severity", "block")),
            escape(alert),
            escape(", ".join(f"{k}={v}" for k, v in params.items())),
        )
    return table


# ---------------------------------------------------------------------------
# registration


def stdout_console() -> Console:
    """Standard output; 120 columns when it is not a terminal (logs, pipes, CI)."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=120)
    return console


def register(app: typer.Typer) -> None:
    """Add ``certify``, ``demo``, ``policy`` and ``checks`` to the ``assay`` command."""
    console = stdout_console()

    @app.command("certify")
    def certify_cmd(
        policy: str = typer.Option(..., "--policy", "-p", metavar="POLICY",
                                   help="Policy file, or a shipped policy name "
                                        "(see 'assay policy list')."),
        tier: str = typer.Option(..., "--tier", "-t", metavar="TIER",
                                 help="Risk tier of the policy to apply."),
        data: Path = typer.Option(..., "--data", "-d", metavar="FILE",
                                  help="Evaluation data (Parquet or CSV with a header)."),
        target: str = typer.Option(..., "--target", "-y", metavar="COL",
                                   help="Target (true label) column."),
        model: str | None = typer.Option(None, "--model", "-m", metavar="FILE",
                                         help="Model file (joblib or pickle; it runs code: "
                                              "load only models you trust), or an MLflow "
                                              "registered model: models:/NAME/VERSION or "
                                              "models:/NAME@ALIAS."),
        mlflow_uri: str | None = typer.Option(
            None, "--mlflow-uri", metavar="URI",
            help="MLflow tracking/registry URI for --model models:/... "
                 "(default: $MLFLOW_TRACKING_URI)."),
        no_publish: bool = typer.Option(
            False, "--no-publish",
            help="With --model models:/...: do not write the verdict and the evidence back "
                 "to the MLflow model version."),
        trust_model_file: bool = typer.Option(
            False, "--trust-model-file",
            help="Load the model file even if its scan finds code outside the allow-list "
                 "(the finding is still reported by security.model_file)."),
        red_team: str | None = typer.Option(
            None, "--red-team", metavar="MODEL@VERSION",
            help="Judge the red-team findings recorded in the store for this registered "
                 "version (security.red_team)."),
        train: Path | None = typer.Option(None, "--train", "--reference", metavar="FILE",
                                          help="Reference (training) data for drift checks."),
        sensitive: str | None = typer.Option(None, "--sensitive", "-s", metavar="COLS",
                                             help="Protected attributes, comma separated."),
        prediction: str | None = typer.Option(None, "--prediction", metavar="COL",
                                              help="Column holding the model's decisions."),
        score: str | None = typer.Option(None, "--score", metavar="COL",
                                         help="Column holding the model's scores in [0, 1]."),
        features: str | None = typer.Option(None, "--features", metavar="COLS",
                                            help="Feature columns, comma separated "
                                                 "(default: every other column)."),
        weight: str | None = typer.Option(None, "--weight", metavar="COL",
                                          help="Row weight column."),
        na_values: str | None = typer.Option(None, "--na-values", metavar="MARKERS",
                                             help="CSV: markers of a missing value besides an "
                                                  "empty field, comma separated (e.g. '?,n/a')."),
        delimiter: str | None = typer.Option(None, "--delimiter", metavar="CHAR",
                                             help="CSV: the field separator (default ','; "
                                                  "';' or 'tab')."),
        positive_label: str = typer.Option("1", "--positive-label", metavar="LABEL",
                                           help="Value of the target that is the positive "
                                                "(favourable) outcome."),
        task: str = typer.Option("classification", "--task", metavar="TASK",
                                 help="'classification' (binary target; more than two "
                                      "classes are certified as multiclass), 'multiclass' or "
                                      "'regression' (numeric target and prediction)."),
        class_scores: str | None = typer.Option(
            None, "--class-scores", metavar="CLASS=COL,...",
            help="Multiclass: the column holding each class's probability, e.g. "
                 "'low=p_low,mid=p_mid,high=p_high'."),
        out: Path = typer.Option(Path("assay-out"), "--out", "-o", metavar="DIR",
                                 help="Directory for results.json and report.html."),
        output: str = typer.Option("table", "--format", "-f", metavar="FORMAT",
                                   help="'table', or 'json' to print results.json to stdout."),
        no_progress: bool = typer.Option(False, "--no-progress",
                                         help="Do not draw progress bars."),
        sign_key: Path | None = typer.Option(
            None, "--sign-key", metavar="KEY",
            help="Ed25519 private key (PEM, PKCS#8): also write results.intoto.json, a "
                 "signed in-toto attestation of the certification."),
        engine: str = typer.Option("local", "--engine", metavar="ENGINE",
                                   help="'local', or 'spark': --data (and --train) name a "
                                        "Spark table or a Parquet/CSV path read by Spark."),
        spark_master: str | None = typer.Option(None, "--spark-master", metavar="URL",
                                                envvar="ASSAY_SPARK_MASTER",
                                                help="Spark master (default: the active "
                                                     "session, else local[*])."),
    ) -> None:
        """Certify a model against a policy tier; write results.json and report.html.

        Exit code 0: passed (warnings allowed); 1: blocked by the policy; 2: bad input.
        """
        fmt = OutputFormat(choice(output, list(OutputFormat), "--format"))
        engine = choice(engine, ["local", "spark"], "--engine")
        extra: dict[str, Any] = {}
        if engine == "spark":
            if na_values or delimiter:
                raise InputError("--na-values and --delimiter apply to the local engine's CSV "
                                 "reader; with --engine spark, give Parquet or a Spark table")
            extra = {"master": spark_master, "data": str(data),
                     "reference": str(train) if train is not None else None}
        registered = None
        with flag_names({**CERTIFY_FLAGS, "uri": "--mlflow-uri"}):
            _resolve_policy(policy)  # a clear error before any data is read
            if model is not None and model.startswith("models:/"):
                from assay.integrations.mlflow import load_model

                registered = load_model(model, tracking_uri=mlflow_uri)
            kwargs: dict[str, Any] = dict(
                data=data, policy=policy, tier=tier, target=target,
                model=registered if registered is not None else model,
                reference=train, prediction=prediction, score=score,
                sensitive=_split(sensitive) or (), features=_split(features), weight=weight,
                positive_label=positive_label, task=task, class_scores=class_scores,
                trust_model_file=trust_model_file,
                red_team=_red_team_findings(red_team) if red_team else None)
            if engine == "local":
                kwargs.update(na_values=_split(na_values),
                              csv={"delimiter": delimiter} if delimiter else None)
            kwargs.update(extra)
            code = run_certification(console, out_dir=out, output=fmt,
                                     quiet_progress=no_progress, sign_key=sign_key,
                                     engine=engine, **kwargs)
        if registered is not None and not no_publish:
            from assay.cli.mlflow import publish_and_print

            publish_and_print(Console(stderr=True), registered, out)
        raise typer.Exit(code)

    @app.command("demo")
    def demo_cmd(
        out: Path = typer.Option(Path("assay-demo"), "--out", "-o", metavar="DIR",
                                 help="Directory for the model, the data, results.json and "
                                      "report.html."),
        no_progress: bool = typer.Option(False, "--no-progress",
                                         help="Do not draw progress bars."),
    ) -> None:
        """Train a model on the shipped UCI Adult data and certify it end to end."""
        from assay.demo import run_demo

        err = Console(stderr=True)
        with rich_progress(err, enabled=not no_progress and err.is_terminal) as progress:
            demo = run_demo(out, progress=progress, log=lambda msg: err.print(escape(msg)))
        print_results(console, demo.results, {k: v.resolve() for k, v in demo.written.items()})
        console.print(f"\nOpen the report: [bold]{escape(str(demo.report.resolve()))}[/]",
                      soft_wrap=True, highlight=False)
        # one line, never wrapped, so that it can be copied and pasted
        console.print("Re-run it yourself:\n  " + escape(demo.command), soft_wrap=True,
                      highlight=False)
        # The demo model is expected to be blocked or warned: that is the point of the demo,
        # not an error of the command.
        raise typer.Exit(0)

    @app.command("report")
    def report_cmd(
        results: Path = typer.Argument(..., metavar="RESULTS_JSON",
                                       help="results.json written by 'assay certify'."),
        out: Path | None = typer.Option(None, "--out", "-o", metavar="FILE",
                                        help="HTML file to write (default: report.html next "
                                             "to the results)."),
    ) -> None:
        """Render the HTML validation report again from a results.json file."""
        from assay.report import write_report

        data = _read_results(results)
        target = out or results.with_name("report.html")
        try:
            written = write_report(data, target)
        except InputError as exc:
            raise InputError(f"{results}: {str(exc).removeprefix('report: ')}") from None
        except OSError as exc:
            raise InputError(f"{target}: cannot write the report ({exc.strerror or exc})") \
                from None
        console.print(f"report.html: {escape(str(written.resolve()))}", highlight=False)

    policy_app = typer.Typer(help="Inspect, validate and register policies.",
                             no_args_is_help=True)
    app.add_typer(policy_app, name="policy")
    from assay.cli.governance import policy_register, policy_registered

    policy_app.command("register")(policy_register)
    policy_app.command("registered")(policy_registered)

    @policy_app.command("list")
    def policy_list() -> None:
        """List the policies shipped with assay."""
        table = Table(header_style="bold")
        table.add_column("name")
        table.add_column("version")
        table.add_column("tiers")
        table.add_column("file")
        from assay.policy import shipped_policies

        for name in shipped_policies():
            path = _resolve_policy(name)
            try:
                pol = _load_policy(path)
                version = str(getattr(pol, "version", "") or "")
                tiers = ", ".join(_policy_tiers(pol))
            except PolicyError as exc:
                version, tiers = "", f"[red]invalid: {escape(str(exc))}[/]"
            table.add_row(escape(name), escape(version), tiers, escape(str(path)))
        console.print(table)

    @policy_app.command("show")
    def policy_show(
        name: str = typer.Argument(..., metavar="POLICY",
                                   help="Shipped policy name or policy file."),
        tier: str | None = typer.Option(None, "--tier", metavar="TIER",
                                        help="Show only this tier."),
        raw: bool = typer.Option(False, "--raw", help="Print the YAML file as it is."),
    ) -> None:
        """Show a policy: its tiers and the checks each tier requires."""
        path = _resolve_policy(name)
        if raw:
            sys.stdout.write(path.read_text(encoding="utf-8"))
            return
        pol = _load_policy(path)
        tiers = _policy_tiers(pol)
        if tier is not None and tier not in tiers:
            raise PolicyError(f"{path}: unknown tier {tier!r}; expected one of "
                              f"{', '.join(tiers) or '(no tiers)'}")
        title = getattr(pol, "name", None) or name
        version = getattr(pol, "version", None)
        console.print(f"[bold]{escape(str(title))}[/]"
                      f"{' v' + escape(str(version)) if version else ''}  "
                      f"[dim]{escape(str(path))}[/]")
        description = getattr(pol, "description", None)
        if description:
            console.print(escape(str(description)))
        settings = getattr(pol, "settings", None)
        if settings is not None:
            dump = settings.model_dump() if hasattr(settings, "model_dump") else settings
            console.print(f"[dim]settings: {escape(json.dumps(dump, default=str))}[/]")
        for table in _policy_table(pol, tier):
            console.print(table)

    @policy_app.command("check")
    def policy_check(file: Path = typer.Argument(..., metavar="FILE",
                                                 help="Policy file to validate.")) -> None:
        """Validate a policy file; exit 2 with the file, line and field of the first problem."""
        if not file.is_file():
            raise PolicyError(f"{file}: policy file not found")
        pol = _load_policy(file)
        tiers = _policy_tiers(pol)
        n = sum(len(getattr(t, "checks", []) or []) for t in tiers.values())
        console.print(f"[green]✓[/] {escape(str(file))}: valid policy, "
                      f"{len(tiers)} tier(s) ({escape(', '.join(tiers))}), {n} check entries")

    @app.command("checks")
    def checks_cmd(
        family: str | None = typer.Option(None, "--family", metavar="FAMILY",
                                          help="Only this family."),
    ) -> None:
        """List the checks a policy can name, with their parameters."""
        from assay.policy import load_check_modules

        registry = load_check_modules()
        rows = sorted(registry.values(), key=lambda d: (d.family, d.id))
        if family is not None:
            choice(family, sorted({d.family for d in rows}), "--family")
            rows = [d for d in rows if d.family == family]
        if not rows:
            console.print("[yellow]no checks are registered[/]")
            return
        current = None
        for d in rows:
            if d.family != current:
                current = d.family
                console.print(f"\n[bold underline]{escape(d.family)}[/]")
            needs = f"  [dim]needs {escape(', '.join(d.requires))}[/]" if d.requires else ""
            console.print(f"[bold]{escape(d.id)}[/]{needs}")
            text = escape(d.description or d.title)
            if d.params:
                text += f"\n[dim]params: {escape(', '.join(d.params))}[/]"
            console.print(Padding(text, (0, 0, 0, 4)))
