"""``assay card``: model cards generated from the store; ``assay reproduce``: re-run a
certification from its recorded inputs.

    assay card MODEL VERSION --format html|md|json|pdf --out FILE
    assay card edit MODEL VERSION --file narrative.yaml
    assay card narrative MODEL VERSION [--revision N] [--template]
    assay card notice MODEL VERSION --format html|md|pdf --out FILE
    assay card list MODEL VERSION
    assay reproduce RESULTS_JSON [--data FILE --train FILE --model FILE]

Commands that store something act as ``--as USER`` (or ``ASSAY_USER``) and run
one domain call in one transaction; errors print one line and exit 2.
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

from assay.cli import AssayGroup
from assay.errors import InputError

console = Console(highlight=False, soft_wrap=True)
AS_HELP = "Act as this user (default: $ASSAY_USER)."


class CardGroup(AssayGroup):
    """``assay card``: ``assay card MODEL VERSION`` generates a card; the other words are
    its subcommands."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["generate", *args]
        return super().parse_args(ctx, args)


def _store() -> Any:
    from assay.store import open_store

    return open_store()


def _actor(session: Any, as_user: str | None) -> Any:
    from assay.registry import get_user

    name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
    if not name:
        raise InputError("no acting user: pass --as USER or set ASSAY_USER")
    return get_user(session, name)


def _write(out: Path | None, data: bytes, what: str) -> None:
    if out is None:
        if what.endswith("pdf"):
            raise InputError(f"{what}: give --out FILE (a PDF is not printed on the terminal)")
        typer.echo(data.decode("utf-8"), nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        raise InputError(f"{out}: cannot write ({exc.strerror or exc})") from None


def _generate(kind: str, model: str, version: str, fmt: str, out: Path | None,
              as_user: str | None) -> None:
    from assay.registry.cards import generate_card

    store = _store()
    with store.transaction() as s:
        data, row = generate_card(s, _actor(s, as_user), model, version, fmt, kind=kind)
        digest, revision, cert = row.digest, row.narrative_revision, row.certification_id
    _write(out, data, f"{kind} {fmt}")
    if out is not None:
        console.print(f"{kind} of {escape(model)}@{escape(version)} ({fmt}) written to "
                      f"{escape(str(out))}; stored as {digest} (narrative revision "
                      f"{revision or 'none'}, certification #{cert or 'none'})")


def register(app: typer.Typer) -> None:
    card_app = typer.Typer(cls=CardGroup, no_args_is_help=True,
                           help="Model cards generated from the store, their narrative and "
                                "the notice for the people affected.")
    app.add_typer(card_app, name="card", cls=CardGroup)

    @card_app.command("generate")
    def generate_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        fmt: str = typer.Option("html", "--format", help="html, md, json or pdf."),
        out: Path | None = typer.Option(None, "--out", "-o", metavar="FILE",
                                        help="Write the card here (default: standard output; "
                                             "a PDF needs --out)."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Generate the model card of a version from the store and keep it as evidence
        (also: assay card MODEL VERSION)."""
        _generate("card", model, version, fmt, out, as_user)

    @card_app.command("notice")
    def notice_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        fmt: str = typer.Option("html", "--format", help="html, md or pdf."),
        out: Path | None = typer.Option(None, "--out", "-o", metavar="FILE"),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """The plain-language notice for the people the model's decisions affect."""
        _generate("notice", model, version, fmt, out, as_user)

    @card_app.command("edit")
    def edit_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        file: Path = typer.Option(..., "--file", "-f", metavar="FILE",
                                  help="The narrative as YAML (see assay card narrative "
                                       "--template)."),
        expected_revision: int | None = typer.Option(
            None, "--expected-revision", help="Refuse if the narrative is no longer at this "
                                              "revision."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Record a new revision of the narrative of a version's card."""
        from assay.registry.cards import parse_narrative, save_narrative

        if not file.is_file():
            raise InputError(f"{file}: no such narrative file")
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{file}: not UTF-8 text") from None
        fields = parse_narrative(text, str(file))
        store = _store()
        with store.transaction() as s:
            row = save_narrative(s, _actor(s, as_user), model, version, fields,
                                 expected_revision=expected_revision)
            revision, digest = row.revision, row.digest
        console.print(f"narrative of {escape(model)}@{escape(version)}: revision {revision} "
                      f"({digest})")

    @card_app.command("narrative")
    def narrative_cmd(
        model: str | None = typer.Argument(None, help="Model name."),
        version: str | None = typer.Argument(None, help="Model version."),
        revision: int | None = typer.Option(None, "--revision", help="This revision (default: "
                                                                      "the latest)."),
        template: bool = typer.Option(False, "--template", help="Print an empty narrative."),
    ) -> None:
        """Show a narrative revision as YAML (or an empty template), and its history."""
        import yaml

        from assay.registry.cards import NARRATIVE_FIELDS, list_narratives

        if template:
            for name, (kind, what) in NARRATIVE_FIELDS.items():
                typer.echo(f"# {what}")
                typer.echo(f"{name}: " + ("" if kind == "text" else "[]"))
            return
        if not model or not version:
            raise InputError("give MODEL VERSION (or --template)")
        with _store().transaction() as s:
            rows = list_narratives(s, model, version)
            if not rows:
                raise InputError(f"{model}@{version} has no narrative yet "
                                 "(assay card edit MODEL VERSION --file FILE)")
            chosen = rows[-1] if revision is None else next(
                (r for r in rows if r.revision == revision), None)
            if chosen is None:
                raise InputError(f"{model}@{version} has no narrative revision {revision}; "
                                 f"it has 1 to {rows[-1].revision}")
            history = [r.to_dict() for r in rows]
            fields = dict(chosen.fields)
            rev = chosen.revision
        typer.echo(f"# revision {rev} of {len(history)}: " + ", ".join(
            f"{h['revision']} by {h['created_by']} at {h['created_at']}" for h in history))
        typer.echo(yaml.safe_dump(fields, sort_keys=False, allow_unicode=True), nl=False)

    @card_app.command("list")
    def list_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
    ) -> None:
        """The cards and notices generated for a version, and whether one is current."""
        from assay.registry.cards import card_state, list_cards
        from assay.registry.models import get_version

        with _store().transaction() as s:
            rows = [r.to_dict() for r in list_cards(s, model, version)]
            state = card_state(s, get_version(s, model, version).id)
            current = state.current.id if state.current else None
            reason = state.reason
        table = Table(title=f"Model cards of {escape(model)}@{escape(version)}")
        for col in ("id", "kind", "format", "digest", "narrative", "certification", "by", "at"):
            table.add_column(col)
        for r in rows:
            table.add_row(str(r["id"]) + ("*" if r["id"] == current else ""), r["kind"],
                          r["format"], r["digest"], str(r["narrative_revision"] or "—"),
                          str(r["certification_id"] or "—"), escape(r["generated_by"]),
                          r["generated_at"] or "")
        console.print(table)
        if current is None:
            console.print(f"no current card: {escape(reason)}")
        else:
            console.print(f"current card: #{current} (marked *)")

    @app.command("reproduce")
    def reproduce_cmd(
        results: str = typer.Argument(..., metavar="RESULTS_JSON",
                                      help="A results.json file, or its digest sha256:... in "
                                           "the evidence store."),
        data: Path | None = typer.Option(None, "--data", metavar="FILE",
                                         help="Evaluation data (default: the recorded file, "
                                              "else the evidence store)."),
        train: Path | None = typer.Option(None, "--train", "--reference", metavar="FILE",
                                          help="Reference (training) data."),
        model: Path | None = typer.Option(None, "--model", metavar="FILE", help="Model file."),
        fmt: str = typer.Option("text", "--format", help="text or json."),
        record: bool = typer.Option(True, "--record/--no-record",
                                    help="Keep the outcome in the store (needs --as)."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Re-run a certification from its recorded inputs and compare number by number:
        exit 0 if it reproduces, 1 if it differs, 2 on bad input."""
        from assay.config import load_settings
        from assay.registry.reproduce import record_reproduction, reproduce

        if fmt not in ("text", "json"):
            raise InputError(f"--format '{fmt}': expected text or json")
        settings = load_settings()
        outcome = reproduce(results, data=data, train=train, model=model, settings=settings)
        who = (as_user or os.environ.get("ASSAY_USER") or "").strip()
        recorded = None
        if record and who:
            store = _store()
            with store.transaction() as s:
                row = record_reproduction(s, _actor(s, who), outcome)
                recorded = (row.id, row.record_digest, row.certification_id)
        if fmt == "json":
            doc = outcome.to_dict() | {"record": recorded and {
                "id": recorded[0], "digest": recorded[1], "certification_id": recorded[2]}}
            typer.echo(json.dumps(doc, indent=2, default=str))
        else:
            for what, where in outcome.inputs.items():
                console.print(f"{what}: {escape(where)}")
            if outcome.reproduced:
                console.print(f"reproduces: {outcome.compared} numbers identical")
            else:
                table = Table(title=f"{len(outcome.mismatches)} of {outcome.compared} values "
                                    "differ")
                for col in ("where", "recorded", "reproduced"):
                    table.add_column(col, overflow="fold")
                for m in outcome.mismatches[:100]:
                    table.add_row(escape(m.where), escape(str(m.recorded)),
                                  escape(str(m.reproduced)))
                console.print(table)
                if len(outcome.mismatches) > 100:
                    console.print(f"... and {len(outcome.mismatches) - 100} more "
                                  "(--format json lists them all)")
                console.print(f"does not reproduce: {len(outcome.mismatches)} of "
                              f"{outcome.compared} values differ")
            if recorded:
                console.print(f"recorded as reproduction #{recorded[0]} ({recorded[1]})")
            elif record:
                console.print("not recorded (give --as USER to keep it in the store)")
        raise typer.Exit(0 if outcome.reproduced else 1)
