"""``assay redteam add / list / resolve``: the red-team record of a model version.

``add`` and ``resolve`` act as ``--as USER`` or ``ASSAY_USER`` and run one call of
:mod:`assay.registry.redteam` in one transaction (a refused call changes
nothing, exit 2 with a one-line error); ``list`` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from assay.cli.monitor import AS_HELP, FORMAT_HELP, _change, _e, _emit, _format, _read, console
from assay.errors import InputError

NAMES = {"technique": "--technique", "severity": "--severity", "outcome": "--outcome",
         "note": "--note", "evidence": "--evidence", "resolution": "--note",
         "status": "--accept"}


def _print(items: list[dict[str, Any]], model: str, version: str) -> None:
    if not items:
        console.print(f"no red-team exercise recorded for {_e(model)}@{_e(version)}")
        return
    table = Table(title=f"Red-team findings: {_e(model)}@{_e(version)}")
    for col in ("id", "technique", "severity", "outcome", "status", "evidence", "recorded"):
        table.add_column(col)
    for f in items:
        ev = []
        if f["evidence_digest"]:
            ev.append(f"{f['evidence_name']} ({f['evidence_digest'][:19]}...)")
        if f["note"]:
            ev.append(f["note"] if len(f["note"]) <= 60 else f["note"][:57] + "...")
        status = f["status"] + (f" by {f['resolved_by']}" if f["resolved_by"] else "")
        table.add_row(str(f["id"]), _e(f["technique"]), f["severity"], f["outcome"],
                      _e(status), _e("; ".join(ev)),
                      _e(f"{f['recorded_by']} {f['recorded_at']}"))
    console.print(table)


def register(app: typer.Typer) -> None:
    redteam = typer.Typer(help="The red-team record: findings of attacks on a model version.",
                          no_args_is_help=True)
    app.add_typer(redteam, name="redteam", rich_help_panel="Operating models")

    @redteam.command("add")
    def add_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        technique: str = typer.Option(..., "--technique",
                                      help="What was tried (evasion, extraction, poisoning, "
                                           "membership inference, ...)."),
        severity: str = typer.Option(..., "--severity", help="low, medium, high or critical."),
        outcome: str = typer.Option(..., "--outcome",
                                    help="succeeded, partial or failed (the attack)."),
        evidence: Path | None = typer.Option(None, "--evidence", metavar="FILE",
                                             help="Evidence file, kept in the evidence store "
                                                  "by digest."),
        note: str = typer.Option("", "--note", help="What was done and seen (text)."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Record a red-team finding; needs --evidence, --note or both.

        Validators, risk officers, security and admins may record findings, never on a
        version they registered themselves."""
        from assay.registry.redteam import record_finding

        _format(fmt)
        try:
            out = _change(as_user, lambda s, a: record_finding(
                s, a, model, version, technique=technique, severity=severity,
                outcome=outcome, note=note, evidence=evidence).to_dict())
        except InputError as exc:
            raise exc.rename(NAMES) from None
        if fmt == "json":
            _emit(out)
            return
        console.print(f"red-team finding #{out['id']} recorded on {_e(model)}@{_e(version)} "
                      f"({out['severity']}, attack {out['outcome']})")

    @redteam.command("list")
    def list_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """The version's red-team findings, oldest first."""
        from assay.registry.redteam import findings_for

        _format(fmt)
        items = _read(lambda s: findings_for(s, model, version))
        _emit(items) if fmt == "json" else _print(items, model, version)

    @redteam.command("resolve")
    def resolve_cmd(
        finding_id: int = typer.Argument(..., metavar="ID", help="Finding id."),
        note: str = typer.Option(..., "--note", help="How it was fixed, or why the risk is "
                                                     "accepted."),
        accept: bool = typer.Option(False, "--accept",
                                    help="Record the risk as accepted instead of fixed."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Close an open finding as resolved (or --accept: risk accepted)."""
        from assay.registry.redteam import resolve_finding

        _format(fmt)
        try:
            out = _change(as_user, lambda s, a: resolve_finding(
                s, a, finding_id, resolution=note,
                status="accepted" if accept else "resolved").to_dict())
        except InputError as exc:
            raise exc.rename(NAMES) from None
        if fmt == "json":
            _emit(out)
            return
        console.print(f"red-team finding #{out['id']} {out['status']}")
