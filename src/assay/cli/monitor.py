"""``assay monitor ingest / labels / run / status`` and ``assay alert list / ack / resolve``.

Commands that change something act as ``--as USER`` or ``ASSAY_USER`` and
run one domain call from :mod:`assay.monitor` in one transaction (a failure
leaves nothing written). ``monitor run`` exits 0 when no rule was breached,
1 when an alert was raised and 2 on bad input, so cron can act on it.
Heavy modules (numpy, pandas, SQLAlchemy) are imported inside the commands.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assay.errors import InputError

console = Console(highlight=False, soft_wrap=True)
AS_HELP = "Act as this user (default: $ASSAY_USER)."
FORMAT_HELP = "Output format: table or json."


def _actor_name(as_user: str | None) -> str:
    name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
    if not name:
        raise InputError("no acting user: pass --as USER or set ASSAY_USER")
    return name


def _change(as_user: str | None, fn: Any) -> Any:
    from assay.registry import get_user
    from assay.store import open_store

    store = _store(open_store)
    name = _actor_name(as_user)
    with store.transaction() as session:
        session.info["settings"] = store.settings
        return fn(session, get_user(session, name))


def _read(fn: Any) -> Any:
    from assay.store import open_store

    store = _store(open_store)
    with store.transaction() as session:
        session.info["settings"] = store.settings
        return fn(session)


def _store(open_store: Any) -> Any:
    return open_store()


def _format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise InputError(f"--format: expected table or json, got {fmt!r}")


def _emit(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _e(v: Any) -> str:
    return escape(str(v))


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}"


def _ci(ci: Any) -> str:
    return "" if not ci else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _threshold(t: dict[str, float]) -> str:
    parts = []
    if "min" in t:
        parts.append(f">= {t['min']:g}")
    if "max" in t:
        parts.append(f"<= {t['max']:g}")
    return " and ".join(parts)


def _data_path(data: Path) -> Path:
    if not data.exists():
        raise InputError(f"--data {data}: file not found")
    return data


def _print_alerts(alerts: list[dict[str, Any]]) -> None:
    if not alerts:
        console.print("no alerts")
        return
    table = Table(show_lines=False)
    for col in ("id", "model", "rule", "metric", "feature/group", "window", "value", "interval",
                "threshold", "severity", "state"):
        table.add_column(col)
    for a in alerts:
        table.add_row(str(a["id"]), _e(f"{a['model']}@{a['version']}"), _e(a["rule"]),
                      _e(a["metric"]), _e(a["label"]),
                      f"{a['window']['period']} {a['window']['start'][:10]}", _num(a["value"]),
                      _ci(a["ci"]), _threshold(a["threshold"]), a["severity"], a["state"])
    console.print(table)


def register(app: typer.Typer) -> None:
    monitor = typer.Typer(help="Monitor models in production: windows, rules, alerts.",
                          no_args_is_help=True)
    alert = typer.Typer(help="Alerts raised by monitoring: list, acknowledge, resolve.",
                        no_args_is_help=True)
    app.add_typer(monitor, name="monitor", rich_help_panel="Monitoring")
    app.add_typer(alert, name="alert", rich_help_panel="Monitoring")

    @monitor.command("ingest")
    def ingest_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        data: Path = typer.Option(..., "--data", help="Parquet or CSV file of production rows."),
        time_column: str | None = typer.Option(None, "--time-column",
                                               help="Column with each row's time (UTC)."),
        window_start: str | None = typer.Option(None, "--window-start",
                                                help="YYYY-MM-DD: the window of every row "
                                                     "(without a time column)."),
        id_column: str | None = typer.Option(None, "--id-column",
                                             help="Row id column (kept to join late labels)."),
        prediction: str | None = typer.Option(None, "--prediction", help="Prediction column."),
        score: str | None = typer.Option(None, "--score", help="Score (probability) column."),
        target: str | None = typer.Option(None, "--target", help="Label column, if known."),
        sensitive: str | None = typer.Option(None, "--sensitive",
                                             help="Protected attribute columns, a,b."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
        engine: str = typer.Option("local", "--engine", metavar="ENGINE",
                                   help="'local', or 'spark': --data names a Spark table or "
                                        "a Parquet/CSV path read by Spark."),
        spark_master: str | None = typer.Option(None, "--spark-master", metavar="URL",
                                                envvar="ASSAY_SPARK_MASTER",
                                                help="Spark master (default: local[*])."),
    ) -> None:
        """Send one batch of production rows."""
        from assay.cli.certify import choice
        from assay.monitor import ingest

        _format(fmt)
        engine = choice(engine, ["local", "spark"], "--engine")
        source: Any
        if engine == "spark":
            from assay.spark import ingest as spark_ingest

            source = str(data)

            def send(s: Any, a: Any, *args: Any, **kw: Any) -> Any:
                return spark_ingest(s, a, *args, master=spark_master, **kw)
        else:
            source = _data_path(data)
            send = ingest
        res = _change(as_user, lambda s, a: send(
            s, a, model, version, source, time_column=time_column, window_start=window_start,
            id_column=id_column, prediction=prediction, score=score, target=target,
            sensitive=(sensitive or "").split(",") if sensitive else ()))
        if fmt == "json":
            _emit(res.to_dict())
            return
        console.print(f"batch #{res.batch_id}: {res.rows} rows of {_e(res.source)} into "
                      f"{len(res.windows)} window(s)"
                      + (f", {res.kept_rows} rows kept for late labels" if res.kept_rows else ""))
        for day, n in res.windows.items():
            console.print(f"  {day}: {n} rows")
        if res.extra_columns:
            console.print("  columns not in the training data (counted, not profiled): "
                          + ", ".join(_e(c) for c in res.extra_columns))

    @monitor.command("labels")
    def labels_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        data: Path = typer.Option(..., "--data", help="Parquet or CSV file of row id, label."),
        id_column: str = typer.Option(..., "--id-column", help="Row id column."),
        target: str = typer.Option(..., "--target", help="Label column."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Join late labels to the rows ingested earlier, by row id."""
        from assay.monitor import add_labels

        _format(fmt)
        path = _data_path(data)
        res = _change(as_user, lambda s, a: add_labels(s, a, model, version, path,
                                                       id_column=id_column, target=target))
        if fmt == "json":
            _emit(res.to_dict())
            return
        console.print(f"label batch #{res.batch_id}: {res.joined} of {res.rows} labels joined")
        if res.unknown:
            console.print(f"  {res.unknown} unknown row id(s) skipped (e.g. "
                          + ", ".join(_e(x) for x in res.unknown_examples) + ")")
        if res.already_labeled:
            console.print(f"  {res.already_labeled} row(s) already labelled, skipped")
        if res.duplicates:
            console.print(f"  {res.duplicates} repeated row id(s) in the batch, skipped")

    @monitor.command("run")
    def run_cmd(
        model: str | None = typer.Argument(None, help="Model name (default: every model)."),
        version: str | None = typer.Argument(None, help="Model version (default: all)."),
        policy: str | None = typer.Option(None, "--policy",
                                          help="Policy name or file (default: the version's "
                                               "certification)."),
        tier: str | None = typer.Option(None, "--tier", help="Risk tier of the policy."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Evaluate every closed window not yet evaluated; exit 1 when an alert is raised."""
        from assay.monitor import run

        _format(fmt)
        res = _change(as_user, lambda s, a: run(s, a, model, version, policy=policy, tier=tier))
        if res.alerts:
            from assay.cli.notify import after_commit

            after_commit(_actor_name(as_user))
        if fmt == "json":
            _emit(res.to_dict())
        else:
            for v in res.versions:
                console.print(f"{_e(v.model)}@{_e(v.version)} ({_e(v.policy)}, tier {v.tier}, "
                              f"{v.window} windows): {len(v.windows_evaluated)} window(s) "
                              f"evaluated, {len(v.alerts)} alert(s) raised")
            if res.alerts:
                _print_alerts(res.alerts)
        if res.alerts:
            raise typer.Exit(1)

    @monitor.command("status")
    def status_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """Per window and rule: the value with its interval, the threshold and the state."""
        from assay.monitor import status

        _format(fmt)
        st = _read(lambda s: status(s, model, version))
        if fmt == "json":
            _emit(st)
            return
        console.print(f"[bold]{_e(model)}@{_e(version)}[/]: {len(st['windows'])} day(s) of "
                      f"data, {sum(w['rows'] for w in st['windows'])} rows, "
                      f"{sum(w['labeled'] for w in st['windows'])} labelled")
        if not st["evaluations"]:
            console.print("no window evaluated yet (run `assay monitor run`)")
        else:
            table = Table()
            for col in ("window", "rule", "feature/group", "value", "interval", "threshold",
                        "state", "note"):
                table.add_column(col)
            for e in st["evaluations"]:
                colour = {"fail": "red", "warn": "yellow", "pass": "green"}.get(e["state"], "")
                state = f"[{colour}]{e['state']}[/]" if colour else e["state"]
                table.add_row(f"{e['window']['period']} {e['window']['start'][:10]}",
                              _e(e["rule"]), _e(e["label"]), _num(e["value"]), _ci(e["ci"]),
                              _threshold(e["threshold"]), state, _e(e["note"]))
            console.print(table)
        open_alerts = [a for a in st["alerts"] if a["state"] != "resolved"]
        console.print(f"{len(open_alerts)} alert(s) not resolved")

    @alert.command("list")
    def alert_list_cmd(
        model: str | None = typer.Option(None, "--model", help="Only this model's alerts."),
        state: str | None = typer.Option(None, "--state",
                                         help="open, acknowledged or resolved."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """List alerts with their rule, metric, feature or group, window, value and state."""
        from assay.monitor import list_alerts

        _format(fmt)
        alerts = _read(lambda s: list_alerts(s, model=model, state=state))
        _emit(alerts) if fmt == "json" else _print_alerts(alerts)

    @alert.command("ack")
    def alert_ack_cmd(
        alert_id: int = typer.Argument(..., metavar="ID", help="Alert id."),
        note: str = typer.Option("", "--note", help="What is being done about it."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Acknowledge an open alert (take it in hand)."""
        from assay.monitor import acknowledge

        a = _change(as_user, lambda s, u: acknowledge(s, u, alert_id, note=note))
        console.print(f"alert #{a['id']} ({_e(a['rule'])} {_e(a['label'])}) acknowledged")

    @alert.command("resolve")
    def alert_resolve_cmd(
        alert_id: int = typer.Argument(..., metavar="ID", help="Alert id."),
        note: str = typer.Option("", "--note", help="How it was dealt with."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Resolve an alert (not by the version's developer)."""
        from assay.monitor import resolve

        a = _change(as_user, lambda s, u: resolve(s, u, alert_id, note=note))
        console.print(f"alert #{a['id']} ({_e(a['rule'])} {_e(a['label'])}) resolved")
