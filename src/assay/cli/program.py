"""``assay program report``: the program metrics (docs/program.md), computed from the store.

Readers only (auditor, compliance, risk officer, admin), acting as ``--as USER`` or
``ASSAY_USER``. ``--format csv`` or ``html``, and any ``--out FILE``, are exports: each is
recorded in the audit trail (``program.export``) in the same transaction as the file is
written, so an export that fails leaves no event and no file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assay.errors import AssayError, InputError, choice_error

console = Console(highlight=False, soft_wrap=True)
FORMATS = ("table", "json", "html", "csv")
NAMES = {"since": "--since", "until": "--until"}


def _actor_name(as_user: str | None) -> str:
    name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
    if not name:
        raise InputError("no acting user: pass --as USER or set ASSAY_USER")
    return name


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"


def _write(out: Path, text: str) -> None:
    """Write ``text`` to ``out`` whole (a temporary file renamed into place)."""
    if out.is_dir():
        raise InputError(f"--out {out}: is a directory; expected a file name")
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: folder {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"--out {out}: cannot write ({exc.strerror or exc})") from None


def _tables(r: dict[str, Any]) -> None:
    console.print(f"[bold]Program report[/] {r['since']} to {r['until']} "
                  f"(as of {r['as_of']})")
    tta = r["time_to_approve"]
    t = Table(title="Time from submission to approval (days)", title_justify="left")
    for col in ("group", "approved", "median", "p90"):
        t.add_column(col, justify="left" if col == "group" else "right")
    groups = [("all", tta["overall"]), *((f"tier {k}", v) for k, v in tta["by_tier"].items()),
              *((f"stage {k}", v) for k, v in tta["by_stage"].items())]
    for name, d in groups:
        t.add_row(escape(name), str(d["count"]), _num(d["median"]), _num(d["p90"]))
    console.print(t)
    ap = r["approvals"]
    console.print(f"approval rate {_pct(ap['rate'])} ({ap['approved']} approved, "
                  f"{ap['rejected']} rejected)")
    if ap["rejections_by_reason"]:
        t = Table(title="Rejections by reason", title_justify="left")
        t.add_column("reason")
        t.add_column("rejections", justify="right")
        for x in ap["rejections_by_reason"]:
            t.add_row(escape(x["reason"]), str(x["count"]))
        console.print(t)
    t = Table(title="Alerts by severity (hours)", title_justify="left")
    for col in ("severity", "raised", "not acknowledged", "unresolved", "ack median",
                "ack p90", "resolve median", "resolve p90"):
        t.add_column(col, justify="left" if col == "severity" else "right")
    for sev, v in r["responses"]["by_severity"].items():
        t.add_row(escape(sev), str(v["raised"]), str(v["unacknowledged"]),
                  str(v["unresolved"]), _num(v["acknowledge"]["median"]),
                  _num(v["acknowledge"]["p90"]), _num(v["resolve"]["median"]),
                  _num(v["resolve"]["p90"]))
    console.print(t)
    od = r["overdue_reviews"]
    console.print(f"overdue reviews: {od['count']}")
    for i in od["items"]:
        what = (f"periodic review due {(i['due'] or '')[:10]}, {i['days_overdue']} days "
                "overdue" if i["kind"] == "periodic_review"
                else f"approval of version {i['version']} expired")
        console.print(f"  {escape(i['model'])} ({i['tier'] or 'unassessed'}): {escape(what)}")
    t = Table(title="Open risk score (burn-down)", title_justify="left")
    t.add_column("at")
    t.add_column("open score", justify="right")
    t.add_column("open entries", justify="right")
    for p in r["burn_down"]:
        t.add_row(p["at"], str(p["open_score"]), str(p["open_entries"]))
    console.print(t)
    cov = r["coverage"]
    t = Table(title="Certification coverage", title_justify="left")
    for col in ("tier", "models", "certified", "share"):
        t.add_column(col, justify="left" if col == "tier" else "right")
    for tier, c in cov["by_tier"].items():
        t.add_row(tier, str(c["models"]), str(c["covered"]), _pct(c["share"]))
    t.add_row("all", str(cov["models"]), str(cov["covered"]), _pct(cov["share"]))
    console.print(t)


def register(app: typer.Typer) -> None:
    program = typer.Typer(help="Program metrics computed from the store: time to approve, "
                                "coverage, burn-down.",
                          no_args_is_help=True)
    app.add_typer(program, name="program", rich_help_panel="Operating models")

    @program.command("report")
    def report_cmd(
        since: str | None = typer.Option(None, "--since", metavar="DATE",
                                         help="First day (YYYY-MM-DD, UTC); default 90 days "
                                              "before --until."),
        until: str | None = typer.Option(None, "--until", metavar="DATE",
                                         help="Last day (YYYY-MM-DD, UTC); default today."),
        fmt: str = typer.Option("table", "--format", "-f",
                                help="table, json, html (a standalone page) or csv."),
        out: Path | None = typer.Option(None, "--out", "-o", metavar="FILE",
                                        help="Write to this file instead of the terminal."),
        as_user: str | None = typer.Option(None, "--as",
                                           help="Act as this user (default: $ASSAY_USER)."),
    ) -> None:
        """Time to approve, approval rate, rejections, alert response times, overdue
        reviews, risk burn-down and certification coverage, over a period.

        Auditors, compliance, risk officers and admins. CSV and HTML output, and any
        --out file, are recorded in the audit trail as exports.
        """
        if fmt not in FORMATS:
            raise choice_error("--format", fmt, FORMATS)
        from assay.operate import program_report, record_export, require_reader
        from assay.operate.program import period
        from assay.registry import get_user
        from assay.store import open_store

        try:
            period(since, until)  # bad dates are refused before the store is opened
            store = open_store()
            with store.transaction() as s:
                actor = get_user(s, _actor_name(as_user))
                require_reader(actor)
                report = program_report(s, since=since, until=until, actor=actor)
                data = report.to_dict()
                if fmt in ("html", "csv") or out is not None:
                    text = _render(fmt, data)
                    import hashlib

                    digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
                    record_export(s, actor, report, "table" if fmt == "table" else fmt,
                                  digest=digest)
                    if out is not None:
                        _write(out, text)
                    else:
                        sys.stdout.write(text)
                    return
        except AssayError as exc:
            raise exc.rename(NAMES) from None
        if fmt == "json":
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
        else:
            _tables(data)

    def _render(fmt: str, data: dict[str, Any]) -> str:
        from assay.operate.render import render_html, to_csv

        if fmt == "html":
            return render_html(data)
        if fmt == "csv":
            return to_csv(data)
        if fmt == "json":
            return json.dumps(data, indent=2) + "\n"
        with console.capture() as cap:
            _tables(data)
        return cap.get()
