"""``assay release record / promote / rollback / status / compare``.

Commands that change something act as ``--as USER`` or ``ASSAY_USER`` and run
one call of :mod:`assay.operate` in one transaction: a refused step (the gate
closed, the release rule not met, a step out of order) writes nothing and
exits 2 with one line saying why.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from assay.cli.monitor import (
    AS_HELP,
    FORMAT_HELP,
    _change,
    _e,
    _emit,
    _format,
    _read,
    console,
)
from assay.errors import AssayError

ENV_HELP = "Environment (the policy tier's 'release: environments'; default production)."
AT_HELP = "When it happened (YYYY-MM-DD or YYYY-MM-DDTHH:MM UTC; default now)."
FLAGS = {"environment": "--env", "mode": "--mode", "share": "--share", "at": "--at",
         "to": "--to", "note": "--note", "since": "--since", "until": "--until"}


@contextmanager
def _flags() -> Iterator[None]:
    try:
        yield
    except AssayError as exc:
        raise exc.rename(FLAGS) from exc.__cause__


def _pct(share: float | None) -> str:
    return "" if share is None else f" at {share:.0%}"


def _print_event(ev: dict[str, Any], model: str) -> None:
    what = {"record": "released", "promote": "promoted", "rollback": "rolled back to"}
    console.print(f"{_e(model)}@{_e(ev['version'])} {what[ev['action']]} in "
                  f"'{_e(ev['environment'])}': {ev['mode']}{_pct(ev['share'])} "
                  f"(event #{ev['id']}, gate {ev['gate_digest'][:19]})")
    rule = ev.get("rule")
    if rule:
        if rule.get("note"):
            console.print(f"  release rule: {_e(rule['note'])}")
        for r in rule.get("results", []):
            console.print(f"  release rule: {_e(r['message'])}")


def _print_status(st: dict[str, Any]) -> None:
    from rich.table import Table

    if not st["environments"]:
        console.print(f"{_e(st['model'])}: no release recorded (assay release record)")
        return
    table = Table(title=f"{st['model']}: who serves where")
    for col in ("environment", "full", "canary", "shadow", "earlier full", "since"):
        table.add_column(col)
    for env in st["environments"]:
        full, canary = env["full"], env["canary"]
        table.add_row(_e(env["environment"]), _e(full["version"]) if full else "-",
                      f"{_e(canary['version'])}{_pct(canary['share'])}" if canary else "-",
                      ", ".join(_e(s["version"]) for s in env["shadow"]) or "-",
                      ", ".join(_e(v) for v in env["previous"]) or "-",
                      (full or {}).get("since", "")[:16].replace("T", " ") or "-")
    console.print(table)


def _print_comparison(c: dict[str, Any]) -> None:
    from rich.table import Table

    rows = c["rows"]
    console.print(f"[bold]{_e(c['model'])}[/]: challenger {_e(c['challenger'])} against "
                  f"champion {_e(c['champion'])}, {c['since']} to {c['until']}; labelled "
                  f"rows {rows['champion']} / {rows['challenger']}"
                  + (f", {rows['paired']} paired (same row ids)" if c["paired"] else
                     ", unpaired"))
    table = Table()
    for col in ("metric", "group", "champion", "challenger", "difference",
                f"{c['confidence']:.0%} interval", "p", "test"):
        table.add_column(col)
    methods: list[str] = []

    def short(method: str) -> str:
        if method.startswith("paired: DeLong"):
            return "DeLong"
        if method.startswith("paired: McNemar"):
            return "McNemar"
        if method not in methods:
            methods.append(method)
        return "bootstrap"

    def num(v: Any) -> str:
        return "-" if v is None else f"{v:.4g}"

    for m in c["metrics"] + c["groups"]:
        ci = m["ci"]
        table.add_row(_e(m["metric"]), _e(m["group"] or ""), num(m["champion"]),
                      num(m["challenger"]),
                      "-" if m["difference"] is None else f"{m['difference']:+.4g}",
                      f"[{ci[0]:+.4g}, {ci[1]:+.4g}]" if ci else "-", num(m["p_value"]),
                      short(m["method"]))
    console.print(table)
    tests = c["tests"]
    if "delong" in tests:
        d = tests["delong"]
        console.print(f"DeLong (paired AUC): difference {d['difference']:+.4g}, se "
                      f"{d['se']:.4g}, z {d['z']:.3f}, p {d['p_value']:.4g}")
    if "mcnemar" in tests:
        m = tests["mcnemar"]
        console.print(f"McNemar (paired accuracy, {m['method']}): champion right and "
                      f"challenger wrong {m['a_right_b_wrong']}, the reverse "
                      f"{m['a_wrong_b_right']}, p {m['p_value']:.4g}")
    for method in methods:
        console.print(f"bootstrap: {_e(method)}")
    for note in c["notes"]:
        console.print(f"note: {_e(note)}")


def register(app: typer.Typer) -> None:
    release = typer.Typer(help="Releases per environment: shadow, canary, full; promotion, "
                               "rollback,\nchampion-challenger.", no_args_is_help=True)
    app.add_typer(release, name="release", rich_help_panel="Operating models")

    @release.command("record")
    def record_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        env: str = typer.Option("production", "--env", help=ENV_HELP),
        mode: str = typer.Option(..., "--mode", help="shadow, canary or full."),
        share: float | None = typer.Option(None, "--share",
                                           help="A canary's traffic share, 0 < s < 1."),
        at: str | None = typer.Option(None, "--at", help=AT_HELP),
        note: str = typer.Option("", "--note", help="Why, ticket, change number."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Record that an approved version started serving (the gate is consulted)."""
        from assay.operate import record

        _format(fmt)
        with _flags():
            ev = _change(as_user, lambda s, a: record(s, a, model, version, environment=env,
                                                      mode=mode, share=share, at=at, note=note))
        _emit(ev) if fmt == "json" else _print_event(ev, model)

    @release.command("promote")
    def promote_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        env: str = typer.Option("production", "--env", help=ENV_HELP),
        to: str = typer.Option("full", "--to", help="canary or full."),
        share: float | None = typer.Option(None, "--share",
                                           help="The canary's new traffic share."),
        at: str | None = typer.Option(None, "--at", help=AT_HELP),
        note: str = typer.Option("", "--note", help="Why, ticket, change number."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Promote: shadow -> canary -> full, or a larger canary share.

        To full, the release rule judges the version against the one serving full.
        """
        from assay.operate import promote

        _format(fmt)
        with _flags():
            ev = _change(as_user, lambda s, a: promote(s, a, model, version, environment=env,
                                                       to=to, share=share, at=at, note=note))
        _emit(ev) if fmt == "json" else _print_event(ev, model)

    @release.command("rollback")
    def rollback_cmd(
        model: str = typer.Argument(..., help="Model name."),
        to: str = typer.Option(..., "--to", help="The version to serve full again."),
        env: str = typer.Option("production", "--env", help=ENV_HELP),
        at: str | None = typer.Option(None, "--at", help=AT_HELP),
        note: str = typer.Option("", "--note", help="Why, incident, change number."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Serve an earlier full version again (its approval must still be valid)."""
        from assay.operate import rollback

        _format(fmt)
        with _flags():
            ev = _change(as_user, lambda s, a: rollback(s, a, model, environment=env, to=to,
                                                        at=at, note=note))
        _emit(ev) if fmt == "json" else _print_event(ev, model)

    @release.command("status")
    def status_cmd(
        model: str = typer.Argument(..., help="Model name."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """Per environment: the full version, the canary and its share, shadow versions."""
        from assay.operate import release_status

        _format(fmt)
        st = _read(lambda s: release_status(s, model))
        _emit(st) if fmt == "json" else _print_status(st)

    @release.command("compare")
    def compare_cmd(
        model: str = typer.Argument(..., help="Model name."),
        champion: str = typer.Argument(..., help="The incumbent version."),
        challenger: str = typer.Argument(..., help="The version that would replace it."),
        since: str | None = typer.Option(None, "--since",
                                         help="First day (YYYY-MM-DD; default 30 days "
                                              "before --until)."),
        until: str | None = typer.Option(None, "--until",
                                         help="Last day, inclusive (default today)."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """Champion against challenger on their monitoring data, with intervals.

        DeLong (AUC) and McNemar (accuracy) where both versions scored the same rows.
        """
        from assay.operate import compare

        _format(fmt)
        with _flags():
            c = _read(lambda s: compare(s, model, champion, challenger, since=since,
                                        until=until)).to_dict()
        _emit(c) if fmt == "json" else _print_comparison(c)
