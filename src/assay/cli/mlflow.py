"""``assay mlflow sync / publish / promote``: MLflow's model registry and assay.

The commands parse their options and call :mod:`assay.integrations.mlflow` (the
registry, the write-back) and :mod:`assay.integrations.mlflow_sync` (the inventory
mirror, the gated alias). The tracking/registry URI is ``--uri``, else
``$MLFLOW_TRACKING_URI``. Exit codes: 0 done, 1 ``promote`` refused by the deployment
gate, 2 bad input (an unknown store, model, version or alias, a server that does not
answer, a role that may not act).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from assay.errors import AssayError, InputError, choice_error

console = Console(highlight=False, soft_wrap=True)
AS_HELP = "Act as this user (default: $ASSAY_USER)."
URI_HELP = "MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI)."
URI_FLAGS = {"uri": "--uri"}


def _actor_name(as_user: str | None) -> str:
    name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
    if not name:
        raise InputError("no acting user: pass --as USER or set ASSAY_USER")
    return name


@contextmanager
def flag_names(names: Mapping[str, str]) -> Iterator[None]:
    """Errors raised inside name the arguments they are about by these flags."""
    try:
        yield
    except AssayError as exc:
        raise exc.rename(names) from exc.__cause__


def _registry(uri: str | None) -> Any:
    from assay.integrations.mlflow import Registry

    with flag_names(URI_FLAGS):
        return Registry(uri)


def _act(as_user: str | None, fn: Any) -> Any:
    """``fn(session, actor)`` in one transaction of the store."""
    from assay.registry import get_user
    from assay.store import open_store

    name = _actor_name(as_user)
    store = open_store()
    try:
        with store.transaction() as session:
            return fn(session, get_user(session, name))
    finally:
        store.dispose()


def publish_and_print(err: Console, model: Any, results_dir: Path) -> None:
    """Write the certification in ``results_dir`` back to the MLflow version it certified
    (``model``: the adapter :func:`assay.integrations.mlflow.load_model` returned)."""
    from assay.integrations.mlflow import publish

    source = model.mlflow
    done = publish(source.name, source.version, results_dir, tracking_uri=source.tracking_uri,
                   verified_digest=model.digest)
    err.print(f"mlflow: models:/{escape(done.name)}/{escape(done.version)} tagged "
              f"{escape(done.tags.get('assay.verdict', ''))}; evidence logged to run "
              f"{escape(done.run_id)} ({escape(', '.join(done.artifacts) or 'no files')})",
              highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``mlflow`` command group to the ``assay`` command."""
    group = typer.Typer(help="MLflow's model registry: import models, write certifications "
                             "back, set aliases\nthrough the deployment gate.",
                        no_args_is_help=True)
    app.add_typer(group, name="mlflow")

    @group.command("sync")
    def sync_cmd(
        uri: str | None = typer.Option(None, "--uri", metavar="URI", help=URI_HELP),
        name: str | None = typer.Option(None, "--name", metavar="NAME",
                                        help="Only this registered model."),
        owner: str | None = typer.Option(None, "--owner", metavar="USER",
                                         help="Owner of models new to the inventory "
                                              "(default: the registered model's "
                                              "assay.owner tag, else you)."),
        decision_type: str | None = typer.Option(
            None, "--decision-type", metavar="TYPE",
            help="Decision type of new models: automated or human_in_the_loop (default: "
                 "the assay.decision_type tag, else human_in_the_loop)."),
        criticality: str | None = typer.Option(
            None, "--criticality", metavar="LEVEL",
            help="Criticality of new models: low, medium, high, critical (default: the "
                 "assay.criticality tag, else medium)."),
        fmt: str = typer.Option("table", "--format", "-f", metavar="FORMAT",
                                help="'table' or 'json'."),
        as_user: str | None = typer.Option(None, "--as", metavar="USER", help=AS_HELP),
    ) -> None:
        """Import registered models and versions, with their run, source, code and data
        lineage, into the inventory. Running it again changes nothing; a version changed in
        MLflow has its mirror updated and the change recorded."""
        from assay.integrations.mlflow_sync import sync

        if fmt not in ("table", "json"):
            raise choice_error("--format", fmt, ["table", "json"])
        registry = _registry(uri)
        with flag_names({"decision_type": "--decision-type", "criticality": "--criticality"}):
            report = _act(as_user, lambda s, actor: sync(
                s, actor, registry, name=name, owner=owner, decision_type=decision_type,
                criticality=criticality))
        if fmt == "json":
            sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
            return
        for label, items in (("registered model", report.models_registered),
                             ("imported", report.imported), ("linked", report.linked),
                             ("updated", report.updated)):
            for item in items:
                console.print(f"[green]{label}[/] {escape(item)}")
        for item in report.skipped:
            console.print(f"[yellow]skipped[/] {escape(item['model'])}: "
                          f"{escape(item['reason'])}")
        console.print(f"{len(report.imported)} imported, {len(report.linked)} linked, "
                      f"{len(report.updated)} updated, {len(report.unchanged)} unchanged"
                      f" from {escape(registry.display_uri)}")

    @group.command("publish")
    def publish_cmd(
        model: str = typer.Argument(..., metavar="MODEL", help="Registered model name."),
        version: str = typer.Argument(..., metavar="VERSION", help="Its version number."),
        results: Path = typer.Option(..., "--results", metavar="DIR",
                                     help="Folder of results.json (and report.html, "
                                          "results.intoto.json) written by assay certify."),
        uri: str | None = typer.Option(None, "--uri", metavar="URI", help=URI_HELP),
    ) -> None:
        """Write a certification back to an MLflow model version: verdict, policy and
        results digest as tags; results.json, the report and the attestation as artefacts
        of the version's run."""
        from assay.integrations.mlflow import ModelRef, publish

        with flag_names({**URI_FLAGS, "results": "--results"}):
            if not version.isdigit():
                raise InputError(f"VERSION {version!r}: expected an MLflow version number")
            done = publish(model, version, results, tracking_uri=uri)
        console.print(f"{ModelRef(done.name, done.version).uri}: "
                      f"{escape(done.tags.get('assay.verdict', ''))}")
        for key, value in sorted(done.tags.items()):
            console.print(f"  tag {escape(key)} = {escape(value)}")
        for path in done.artifacts:
            console.print(f"  artefact {escape(path)} (run {escape(done.run_id)})")

    @group.command("promote")
    def promote_cmd(
        model: str = typer.Argument(..., metavar="MODEL", help="Registered model name."),
        version: str = typer.Argument(..., metavar="VERSION", help="Its version number."),
        alias: str = typer.Option(..., "--alias", metavar="ALIAS",
                                  help="The alias to point at the version (champion)."),
        uri: str | None = typer.Option(None, "--uri", metavar="URI", help=URI_HELP),
        as_user: str | None = typer.Option(None, "--as", metavar="USER", help=AS_HELP),
    ) -> None:
        """Set an alias on an MLflow version only when the deployment gate allows it;
        exit 1 with the gate's reasons otherwise. Recorded in the audit trail either way."""
        from assay.integrations.mlflow_sync import promote

        registry = _registry(uri)
        result = _act(as_user, lambda s, actor: promote(s, actor, registry, model, version,
                                                         alias))
        if result.allowed:
            console.print(f"[green]✓[/] alias {escape(alias)} → models:/{escape(model)}/"
                          f"{escape(result.version)} (the deployment gate allows it)")
            return
        console.print(f"[bold red]✗ refused[/]: the deployment gate does not allow "
                      f"{escape(model)} version {escape(result.version)}; alias "
                      f"{escape(alias)} unchanged")
        for reason in result.reasons:
            console.print(f"  - {escape(reason)}")
        raise typer.Exit(1)
