"""``assay compliance``: mapping packs, coverage, documentation packs and the ML-BOM.

    assay compliance list
    assay compliance check FILE
    assay compliance coverage MODEL VERSION --framework NAME|FILE [--format table|json|html]
    assay compliance pack MODEL VERSION --framework NAME|FILE --out DIR --as USER
    assay compliance bom MODEL VERSION [--out bom.json]

``--framework`` takes a shipped framework name or the path of a pack file of
your own (validated like a policy). Errors print one line and exit 2.
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

FORMATS = ("table", "json", "html")
STYLE = {"covered": "green", "partial": "yellow", "missing": "red"}


def _store() -> Any:
    from assay.store import open_store

    return open_store()


def _actor(session: Any, as_user: str | None) -> Any:
    from assay.registry import get_user

    name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
    if not name:
        raise InputError("no acting user: pass --as USER or set ASSAY_USER")
    return get_user(session, name)


def _write_or_print(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    tmp = out.with_name(f".{out.name}.partial")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None
    console.print(f"wrote {escape(str(out))}")


def register(app: typer.Typer) -> None:
    comp = typer.Typer(help="Compliance mapping packs: coverage per clause, documentation packs, "
                            "ML-BOM.",
                       no_args_is_help=True)
    app.add_typer(comp, name="compliance")

    @comp.command("list")
    def list_cmd(fmt: str = typer.Option("table", "--format", "-f",
                                         help="table or json.")) -> None:
        """The frameworks shipped with assay, with their versions and clause counts."""
        from assay.compliance import load_pack, shipped_packs

        packs = [load_pack(n) for n in shipped_packs()]
        rows = [{"framework": p.framework, "version": p.version, "title": p.title,
                 "clauses": len(p.clauses), "source": p.source, "sha256": p.sha256}
                for p in packs]
        if fmt == "json":
            typer.echo(json.dumps(rows, indent=2))
            return
        if fmt != "table":
            raise InputError(f"--format '{fmt}': expected 'table' or 'json'")
        t = Table("framework", "version", "clauses", "title")
        for r in rows:
            t.add_row(r["framework"], r["version"], str(r["clauses"]), escape(r["title"]))
        console.print(t)
        console.print("Your own packs: pass the file's path to --framework "
                      "(check it first with `assay compliance check FILE`).")

    @comp.command("check")
    def check_cmd(file: Path = typer.Argument(..., help="A mapping pack YAML file.")) -> None:
        """Validate a mapping pack; errors name the file, line and field."""
        from assay.compliance import load_pack

        if not file.is_file():
            raise InputError(f"{file}: no such file (expected a mapping pack YAML file)")
        pack = load_pack(file)
        console.print(f"{escape(str(file))}: OK: framework '{escape(pack.framework)}' version "
                      f"{escape(pack.version)}, {len(pack.clauses)} clauses, sha256 "
                      f"{pack.sha256}")

    @comp.command("coverage")
    def coverage_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        framework: str = typer.Option(..., "--framework", help="Framework name or pack file."),
        fmt: str = typer.Option("table", "--format", "-f", help="table, json or html."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file."),
    ) -> None:
        """Per clause: covered, partial or missing, with the evidence found and what is
        missing. Exits 0 whatever the coverage (it is information), 2 on bad input."""
        from assay.compliance import coverage, render_coverage_html

        if fmt not in FORMATS:
            raise InputError(f"--format '{fmt}': expected one of {', '.join(FORMATS)}")
        with _store().transaction() as s:
            cov = coverage(s, model, version, framework)
        if fmt == "json":
            _write_or_print(json.dumps(cov.to_dict(), indent=2, default=str) + "\n", out)
            return
        if fmt == "html":
            _write_or_print(render_coverage_html(cov), out)
            return
        fw = cov.framework
        t = Table("clause", "title", "status", "missing", title=(
            f"{fw['title']} ({fw['framework']} {fw['version']}): {cov.model} {cov.version}"))
        for c in cov.clauses:
            t.add_row(escape(c.citation), escape(c.title),
                      f"[{STYLE[c.status]}]{c.status}[/]", escape("; ".join(c.missing)))
        console.print(t)
        sm = cov.summary
        console.print(f"{sm['covered']} covered, {sm['partial']} partial, {sm['missing']} "
                      f"missing of {sm['total']} clauses")

    @comp.command("pack")
    def pack_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        framework: str = typer.Option("eu-ai-act", "--framework",
                                      help="Framework name or pack file."),
        out: Path = typer.Option(..., "--out", "-o", help="New directory for the pack."),
        as_user: str | None = typer.Option(None, "--as", help="Act as this user "
                                           "(default: $ASSAY_USER)."),
    ) -> None:
        """Write the technical documentation pack (index, reports, records, audit excerpt
        verified against the chain, manifest of SHA-256 digests, signed in-toto statement)."""
        from assay.compliance import write_pack

        with _store().transaction() as s:
            res = write_pack(s, _actor(s, as_user), model, version, framework, out)
        missing = [sec["title"] for sec in res.sections.values() if sec["status"] == "missing"]
        console.print(f"wrote {escape(str(res.out))}: {len(res.manifest['files'])} files, "
                      "manifest.json, manifest.intoto-statement.json and its signed "
                      "envelope manifest.intoto.json (assay attest verify "
                      f"{escape(str(res.out))}/manifest.intoto.json --subject FILE)")
        if missing:
            console.print("missing sections: " + escape(", ".join(missing)))

    @comp.command("bom")
    def bom_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file."),
    ) -> None:
        """CycloneDX 1.6 ML-BOM of a version, validated against the official schema."""
        from assay.compliance import build_bom

        with _store().transaction() as s:
            bom = build_bom(s, model, version)
        _write_or_print(json.dumps(bom, indent=2) + "\n", out)
