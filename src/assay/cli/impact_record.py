"""``assay impact assess / show / kpi / register / feedback / abtest / did / rdd / report``.

The commands of the impact record and the causal estimates, added to the ``assay impact``
group by :func:`register` (``assay.cli.impact`` creates the group and calls it).
Commands that change something act as ``--as USER`` or ``ASSAY_USER`` and run one call
of :mod:`assay.impact` in one transaction; bad input exits 2 with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from assay.cli.monitor import AS_HELP, FORMAT_HELP, _change, _e, _emit, _format, _read, console
from assay.errors import InputError

DATA_HELP = "Data file (CSV or Parquet), one row per unit and period (or per person)."


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}"


def _print_estimate(r: dict[str, Any]) -> None:
    ci = r["ci"]
    console.print(f"[bold]{_e(r['method'])}[/]")
    console.print(f"estimate {r['estimate']:.4g} (se {r['se']:.4g}), "
                  f"{r['confidence']:.0%} interval [{ci[0]:.4g}, {ci[1]:.4g}], "
                  f"p {_num(r.get('p_value'))}")
    for w in r.get("warnings", []):
        console.print(f"[red]warning[/]: {_e(w)}")
    for a in r.get("assumptions", []):
        console.print(f"  assumes: {_e(a)}")


RECORD_HELP = ("Also keep the estimate (and, for DiD, its event-study chart) as evidence of "
               "this model version, shown in its impact report (audited; needs an editor "
               "of the impact record, --as USER or ASSAY_USER).")


def _digests(**files: Path | None) -> dict[str, str]:
    from assay.evidence import digest_file

    out = {}
    for name, path in files.items():
        if path is None:
            continue
        try:
            out[name] = digest_file(path)
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return out


def _record(record: tuple[str, str] | None, as_user: str | None, kind: str,
            result: dict[str, Any], inputs: dict[str, str], parameters: dict[str, Any]
            ) -> dict[str, Any] | None:
    """Record ``result`` for ``--record MODEL VERSION`` (None without it)."""
    if not record or record[0] is None:
        return None
    from assay.cli.monitor import _change
    from assay.impact.analyses import record_analysis

    model, version = record
    return _change(as_user, lambda s, a: record_analysis(
        s, a, model, version, kind, result, inputs=inputs, parameters=parameters))


def _recorded(rec: dict[str, Any] | None, record: tuple[str, str] | None) -> None:
    if rec is None or record is None:
        return
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"recorded as {rec['kind']} analysis {rec['id']} of {record[0]}@{record[1]} "
        f"({rec['result_digest']})")


def _keep(record: tuple[str, str] | None, as_user: str | None, kind: str,
          result: dict[str, Any], data: Path, parameters: dict[str, Any]) -> None:
    """Record a causal estimate for ``--record MODEL VERSION`` (nothing without it)."""
    _recorded(_record(record, as_user, kind, result, _digests(data=data), parameters),
              record)


def register(impact: typer.Typer) -> None:
    """Add the record and causal commands to the ``assay impact`` group."""
    kpi = typer.Typer(help="Impact KPIs: define, observe, list, evaluate guardrails.",
                      no_args_is_help=True)
    reg = typer.Typer(help="The impact register: anticipated impacts and their links.",
                      no_args_is_help=True)
    fb = typer.Typer(help="Stakeholder feedback and complaints.", no_args_is_help=True)
    impact.add_typer(kpi, name="kpi")
    impact.add_typer(reg, name="register")
    impact.add_typer(fb, name="feedback")

    @impact.command("assess")
    def assess_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        file: Path = typer.Option(..., "--file", help="Theory of impact (YAML)."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Save a new revision of the theory of impact of a model version."""
        from assay.impact import save_assessment

        _format(fmt)
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise InputError(f"{file}: cannot read the theory of impact: "
                             f"{exc.strerror or exc}") from None
        out = _change(as_user, lambda s, a: save_assessment(s, a, model, version, raw,
                                                            source=file.name))
        if fmt == "json":
            _emit(out)
        else:
            console.print(f"{_e(model)}@{_e(version)}: impact assessment revision "
                          f"{out['revision']} saved ({out['digest'][:19]})")

    @impact.command("show")
    def show_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """The current assessment, KPIs, register and feedback of a model version."""
        from assay.impact.report import gather

        _format(fmt)
        rec = _read(lambda s: gather(s, model, version))
        if fmt == "json":
            _emit(rec)
            return
        a = rec["assessment"]
        if a is None:
            console.print(f"{_e(model)}@{_e(version)}: no impact assessment yet "
                          "(assay impact assess MODEL VERSION --file theory.yaml)")
        else:
            t = a["theory"]
            console.print(f"[bold]{_e(model)}@{_e(version)}[/] impact assessment revision "
                          f"{a['revision']} by {_e(a['created_by'])} at {a['created_at']}")
            for o in t["intended_outcomes"]:
                console.print(f"  outcome: {_e(o['outcome'])} (for {_e(', '.join(o['for_whom']))})")
            for step in t["pathway"]:
                console.print(f"  -> {_e(step)}")
        console.print(f"KPIs {len(rec['kpis'])}, register entries {len(rec['register'])}, "
                      f"feedback records {len(rec['feedback'])}")

    @kpi.command("add")
    def kpi_add(
        model: str = typer.Argument(...), version: str = typer.Argument(...),
        name: str = typer.Option(..., "--name"),
        direction: str = typer.Option(..., "--direction", help="increase or decrease "
                                      "(which way is better)."),
        unit: str = typer.Option("", "--unit"),
        baseline: float | None = typer.Option(None, "--baseline"),
        target: float | None = typer.Option(None, "--target"),
        guardrail: float | None = typer.Option(None, "--guardrail",
                                               help="A value beyond it raises an alert."),
        owner: str = typer.Option("", "--owner"),
        cadence: str = typer.Option("monthly", "--cadence", help="daily, weekly, monthly."),
        source: str = typer.Option("observations", "--source",
                                   help="observations, monitoring or feedback."),
        metric: str = typer.Option("", "--metric", help="Monitoring metric, or feedback "
                                   "category."),
        by: str = typer.Option("", "--by", help="Group column (feedback: 'group')."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Define a KPI of a model version."""
        from assay.impact import add_kpi

        _format(fmt)
        out = _change(as_user, lambda s, a: add_kpi(
            s, a, model, version, name=name, direction=direction, unit=unit,
            baseline=baseline, target=target, guardrail=guardrail, owner=owner,
            cadence=cadence, source=source, metric=metric, by=by))
        _emit(out) if fmt == "json" else console.print(f"KPI '{_e(out['name'])}' added")

    @kpi.command("observe")
    def kpi_observe(
        model: str = typer.Argument(...), version: str = typer.Argument(...),
        name: str = typer.Argument(..., help="KPI name."),
        value: str = typer.Argument(..., help="The value (a number)."),
        at: str | None = typer.Option(None, "--at", help="YYYY-MM-DD (default now)."),
        group: str = typer.Option("", "--group"),
        source: str = typer.Option("", "--source", help="Where the value came from."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Record a value of a KPI (a guardrail breach raises a monitoring alert)."""
        from assay.impact import observe

        _format(fmt)
        out = _change(as_user, lambda s, a: observe(s, a, model, version, name, value, at=at,
                                                    group=group, source=source))
        if fmt == "json":
            _emit(out)
            return
        console.print(f"KPI '{_e(name)}' = {out['value']:g} recorded")
        if out["alert"] is not None:
            console.print(f"[red]guardrail breached[/]: alert #{out['alert']}")

    @kpi.command("list")
    def kpi_list(
        model: str = typer.Argument(...), version: str = typer.Argument(...),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """The KPIs with their latest values."""
        from rich.table import Table

        from assay.impact import list_kpis

        _format(fmt)
        rows = _read(lambda s: list_kpis(s, model, version))
        if fmt == "json":
            _emit(rows)
            return
        table = Table(title=f"{model}@{version}: KPIs")
        for col in ("name", "source", "baseline", "target", "guardrail", "latest"):
            table.add_column(col)
        for k in rows:
            latest = ", ".join(f"{p['group'] or 'all'} {_num(p['value'])}"
                               + (" [red]breach[/]" if p["breach"] else "")
                               for p in k["latest"]) or "-"
            table.add_row(_e(k["name"]), k["source"], _num(k["baseline"]),
                          _num(k["target"]), _num(k["guardrail"]), latest)
        console.print(table)

    @kpi.command("evaluate")
    def kpi_evaluate(
        model: str = typer.Argument(...), version: str = typer.Argument(...),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Check the computed KPIs' latest windows against their guardrails."""
        from assay.impact import evaluate

        _format(fmt)
        out = _change(as_user, lambda s, a: evaluate(s, a, model, version))
        if fmt == "json":
            _emit(out)
            return
        for b in out:
            console.print(f"KPI '{_e(b['kpi'])}' {_e(b['group'])} {_num(b['value'])}: breach"
                          + (f", alert #{b['alert']}" if b["alert"] else " (alert open)"))
        if not out:
            console.print("no guardrail breached")

    @reg.command("add")
    def reg_add(
        model: str = typer.Argument(...), version: str = typer.Argument(...),
        title: str = typer.Option(..., "--title"),
        kind: str = typer.Option(..., "--kind", help="positive or negative."),
        likelihood: int = typer.Option(..., "--likelihood", help="1 to 5."),
        severity: int = typer.Option(..., "--severity", help="1 to 5."),
        stakeholder: list[str] | None = typer.Option(None, "--stakeholder"),
        group: list[str] | None = typer.Option(None, "--group"),
        measurement: str = typer.Option("", "--measurement"),
        status: str = typer.Option("anticipated", "--status"),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Add an anticipated impact to the register."""
        from assay.impact import add_register_entry

        _format(fmt)
        out = _change(as_user, lambda s, a: add_register_entry(
            s, a, model, version, title=title, kind=kind, likelihood=likelihood,
            severity=severity, stakeholders=_split(stakeholder), groups=_split(group),
            measurement=measurement, status=status))
        _emit(out) if fmt == "json" else console.print(f"register entry #{out['id']} added")

    @reg.command("link")
    def reg_link(
        model: str = typer.Argument(...), version: str = typer.Argument(...),
        entry: int = typer.Argument(..., help="Register entry id."),
        risk: list[str] | None = typer.Option(None, "--risk"),
        kpi_: list[str] | None = typer.Option(None, "--kpi"),
        incident: list[str] | None = typer.Option(None, "--incident",
                                                  help="Incident id (assay incident list)."),
        status: str | None = typer.Option(None, "--status"),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Link a register entry to risks, KPIs and incidents (and set its status)."""
        from assay.impact import link_register_entry

        _format(fmt)
        out = _change(as_user, lambda s, a: link_register_entry(
            s, a, model, version, entry, risks=_split(risk), kpis=_split(kpi_),
            incidents=_split(incident), status=status))
        _emit(out) if fmt == "json" else console.print(f"register entry #{entry} linked")

    @reg.command("list")
    def reg_list(
        model: str = typer.Argument(...), version: str = typer.Argument(...),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """The impact register, highest likelihood x severity first."""
        from rich.table import Table

        from assay.impact import list_register

        _format(fmt)
        rows = _read(lambda s: list_register(s, model, version))
        if fmt == "json":
            _emit(rows)
            return
        table = Table(title=f"{model}@{version}: impact register")
        for col in ("id", "impact", "kind", "L x S", "status", "links", "feedback"):
            table.add_column(col)
        for e in rows:
            incidents = ", ".join(f"#{i['id']}" + (f" {i['title']} ({i['state']})"
                                                    if i["title"] else "")
                                  for i in e["incidents"])
            links = "; ".join([*(f"{k}: {', '.join(v)}" for k, v in e["links"].items()
                                 if v and k != "incidents"),
                               *([f"incidents: {incidents}"] if incidents else [])])
            table.add_row(str(e["id"]), _e(e["title"]), e["kind"],
                          f"{e['likelihood']}x{e['severity']}={e['score']}", e["status"],
                          _e(links) or "-", str(e["feedback"]))
        console.print(table)

    @fb.command("add")
    def fb_add(
        model: str = typer.Argument(...), version: str = typer.Argument(...),
        channel: str = typer.Option(..., "--channel"),
        category: str = typer.Option(..., "--category"),
        text: str = typer.Option("", "--text"),
        group: str = typer.Option("", "--group"),
        received: str | None = typer.Option(None, "--received", help="YYYY-MM-DD."),
        entry: int | None = typer.Option(None, "--register", help="Register entry id."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Record feedback or a complaint from an affected person."""
        from assay.impact import add_feedback

        _format(fmt)
        out = _change(as_user, lambda s, a: add_feedback(
            s, a, model, version, channel=channel, category=category, text=text,
            group=group, received_at=received, register_id=entry))
        _emit(out) if fmt == "json" else console.print(f"feedback #{out['id']} recorded")

    @fb.command("list")
    def fb_list(
        model: str = typer.Argument(...), version: str = typer.Argument(...),
        category: str | None = typer.Option(None, "--category"),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """Stakeholder feedback, oldest first."""
        from assay.impact import list_feedback

        _format(fmt)
        rows = _read(lambda s: list_feedback(s, model, version, category=category))
        if fmt == "json":
            _emit(rows)
            return
        for f in rows:
            console.print(f"#{f['id']} {f['received_at'][:10]} {f['channel']} "
                          f"{_e(f['category'])} {_e(f['group'] or '-')}: {_e(f['text'])}")

    @impact.command("abtest")
    def abtest_cmd(
        data: Path = typer.Option(..., "--data", help=DATA_HELP),
        outcome: str = typer.Option(..., "--outcome"),
        arm: str = typer.Option(..., "--arm", help="Column naming each row's arm."),
        control: str | None = typer.Option(None, "--control", help="The control arm."),
        covariate: str | None = typer.Option(None, "--covariate",
                                             help="Pre-period covariate (CUPED)."),
        share: float = typer.Option(0.5, "--share", help="Planned treatment share (SRM)."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        record: tuple[str, str] | None = typer.Option(None, "--record",
                                                      metavar="MODEL VERSION",
                                                      help=RECORD_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """A/B or canary test: difference with interval, SRM check, MDE, CUPED."""
        from assay.impact.causal import abtest, read_table

        _format(fmt)
        r = abtest(read_table(data), outcome=outcome, arm=arm, control=control,
                   covariate=covariate, expected_share=share, source=data.name)
        _keep(record, as_user, "abtest", r, data, {
            "outcome": outcome, "arm": arm, "control": control, "covariate": covariate,
            "share": share})
        if fmt == "json":
            _emit(r)
            return
        _print_estimate(r)
        console.print(f"SRM: observed share {r['srm']['observed_share']:.4f}, p "
                      f"{r['srm']['p_value']:.3g}; MDE (80% power) {r['power']['mde']:.4g}")
        if "cuped" in r:
            c = r["cuped"]
            console.print(f"CUPED ({_e(c['covariate'])}): estimate {c['estimate']:.4g} (se "
                          f"{c['se']:.4g}), variance reduced by {c['variance_reduction']:.0%}")

    @impact.command("did")
    def did_cmd(
        data: Path = typer.Option(..., "--data", help=DATA_HELP),
        outcome: str = typer.Option(..., "--outcome"),
        unit: str = typer.Option(..., "--unit", help="Unit id column (clusters)."),
        time: str = typer.Option(..., "--time", help="Period column."),
        treated: str = typer.Option(..., "--treated", help="0/1: the unit is treated."),
        post: str = typer.Option(..., "--post", help="0/1: the period is after the start."),
        cluster: str | None = typer.Option(None, "--cluster",
                                           help="Cluster column (default: --unit)."),
        plot: Path | None = typer.Option(None, "--plot", help="Write the event study (SVG)."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        record: tuple[str, str] | None = typer.Option(None, "--record",
                                                      metavar="MODEL VERSION",
                                                      help=RECORD_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Difference-in-differences (TWFE, clustered SEs, event study, pre-trend test)."""
        from assay.impact.causal import did, event_study_svg, read_table

        _format(fmt)
        r = did(read_table(data), outcome=outcome, unit=unit, time=time, treated=treated,
                post=post, cluster=cluster, source=data.name)
        if plot is not None:
            plot.write_text(event_study_svg(r))
        _keep(record, as_user, "did", r, data, {
            "outcome": outcome, "unit": unit, "time": time, "treated": treated,
            "post": post, "cluster": cluster})
        if fmt == "json":
            _emit(r)
            return
        _print_estimate(r)
        pt = r["event_study"]["pre_trend"]
        console.print(f"pre-trend test: {_e(pt['method'])}"
                      + (f", chi2 {pt['wald']:.4g} on {pt['df']} df, p {pt['p_value']:.3g}"
                         if pt["p_value"] is not None else ""))

    @impact.command("rdd")
    def rdd_cmd(
        data: Path = typer.Option(..., "--data", help=DATA_HELP),
        outcome: str = typer.Option(..., "--outcome"),
        running: str = typer.Option(..., "--running", help="The score the decision uses."),
        cutoff: float = typer.Option(..., "--cutoff", help="The decision threshold."),
        bandwidth: float | None = typer.Option(None, "--bandwidth",
                                               help="Default: MSE-optimal (IK)."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        record: tuple[str, str] | None = typer.Option(None, "--record",
                                                      metavar="MODEL VERSION",
                                                      help=RECORD_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Regression discontinuity at the decision threshold (local-linear)."""
        from assay.impact.causal import rdd, read_table

        _format(fmt)
        r = rdd(read_table(data), outcome=outcome, running=running, cutoff=cutoff,
                bandwidth=bandwidth, source=data.name)
        _keep(record, as_user, "rdd", r, data, {
            "outcome": outcome, "running": running, "cutoff": cutoff,
            "bandwidth": bandwidth})
        if fmt == "json":
            _emit(r)
            return
        _print_estimate(r)
        console.print(f"bandwidth {r['bandwidth']:.4g}; rows used {r['n_effective']}")

    @impact.command("report")
    def report_cmd(
        model: str = typer.Argument(...), version: str = typer.Argument(...),
        out: Path = typer.Option(..., "--out", help="HTML file to write."),
        did_data: Path | None = typer.Option(None, "--did-data", help="DiD data (optional)."),
        did_args: str | None = typer.Option(None, "--did", help="outcome,unit,time,treated,"
                                            "post for --did-data."),
        keep: bool = typer.Option(False, "--keep", help="Also keep the report as evidence of "
                                  "the version (audited; needs an editor role)."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """The impact report (HTML): theory, KPIs over time, register, causal estimates."""
        from assay.impact.report import gather, render, store_report

        causal: list[dict[str, Any]] = []
        if did_data is not None:
            from assay.impact.causal import did, read_table

            parts = (did_args or "").split(",")
            if len(parts) != 5:
                raise InputError("--did: expected outcome,unit,time,treated,post")
            causal.append(did(read_table(did_data), outcome=parts[0], unit=parts[1],
                              time=parts[2], treated=parts[3], post=parts[4],
                              source=did_data.name))
        rec = _read(lambda s: gather(s, model, version))
        html = render(rec, causal=causal)
        digest = None
        if keep:
            digest = _change(as_user, lambda s, a: store_report(s, a, model, version, html))
        out.write_text(html)
        console.print(f"impact report written to {_e(out)}"
                      + (f", kept as evidence {digest}" if digest else ""))
