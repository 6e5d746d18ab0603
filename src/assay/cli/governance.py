"""``assay db``, ``user``, ``model``, ``inventory``, ``audit`` and ``evidence`` commands.

Commands that change something act as the user given by ``--as USER`` or
``ASSAY_USER`` and run one domain call inside one transaction; reading
commands need no acting user. Errors print one line and exit 2 with nothing
written; ``assay audit verify`` exits 1 when the chain is broken.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assay.errors import InputError

console = Console(highlight=False, soft_wrap=True)

AS_HELP = "Act as this user (default: $ASSAY_USER)."


class Fmt(StrEnum):
    table = "table"
    json = "json"


class InvFmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _store(*, check: bool = True) -> Any:
    from assay.store import open_store

    return open_store(check=check)


def _actor_name(as_user: str | None) -> str:
    name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
    if not name:
        raise InputError("no acting user: pass --as USER or set ASSAY_USER")
    return name


def _actor(session: Any, as_user: str | None) -> Any:
    from assay.registry import get_user

    return get_user(session, _actor_name(as_user))


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _tier_style(tier: str | None) -> str:
    return {"high": "[bold red]high[/]", "medium": "[yellow]medium[/]",
            "low": "[green]low[/]"}.get(tier or "", "[dim]unassessed[/]")


# --------------------------------------------------------------------------- db

def db_upgrade(
    revision: str = typer.Option("heads", "--revision", help="Target revision (default: heads)."),
    as_user: str | None = typer.Option(None, "--as", help="Who is upgrading (recorded in the "
                                       "audit trail; default $ASSAY_USER or the system "
                                       "account)."),
) -> None:
    """Create or upgrade the database schema (SQLite under ASSAY_HOME, or ASSAY_DATABASE_URL).

    A schema change is recorded in the audit trail as ``store.upgrade``.
    """
    import getpass

    from assay.store import current_revisions, upgrade
    from assay.store.audit import append_event

    store = _store(check=False)
    try:
        before = current_revisions(store.engine)
        after = upgrade(store.engine, revision)
        if before != after:
            who = (as_user or os.environ.get("ASSAY_USER") or "").strip() \
                or f"system:{getpass.getuser()}"
            with store.transaction() as s:
                append_event(s, actor=who, action="store.upgrade", subject_type="store",
                             subject_id="schema",
                             payload={"from": sorted(before), "to": sorted(after)})
    finally:
        store.dispose()
    if before == after:
        console.print(f"{escape(store.url)} is up to date at {', '.join(sorted(after))}")
    else:
        console.print(f"upgraded {escape(store.url)}: {', '.join(sorted(before)) or 'empty'} "
                      f"-> {', '.join(sorted(after))}")


def db_current() -> None:
    """Show the schema revisions of the database and the ones this assay expects."""
    from assay.store import current_revisions, head_revisions

    store = _store(check=False)
    try:
        current = current_revisions(store.engine)
    finally:
        store.dispose()
    heads = head_revisions()
    console.print(f"database: {escape(store.url)}")
    console.print(f"current:  {', '.join(sorted(current)) or 'empty'}")
    console.print(f"expected: {', '.join(sorted(heads))}")
    if current != heads:
        console.print("run `assay db upgrade`")
        raise typer.Exit(1)


# --------------------------------------------------------------------------- users

def user_add(
    username: str = typer.Argument(..., help="Login name (lower case)."),
    role: list[str] = typer.Option([], "--role", "-r",
                                   help="Role to grant (repeat). One of: data_scientist, "
                                        "validator, risk_officer, compliance, security, "
                                        "business_owner, auditor, admin."),
    display_name: str = typer.Option("", "--display-name", help="Full name."),
    email: str | None = typer.Option(None, "--email"),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP + " Not needed for the "
                                       "first user, who becomes an admin."),
) -> None:
    """Add a user with roles (admins only; the very first user becomes an admin)."""
    from sqlalchemy import func, select

    from assay.registry import add_user
    from assay.registry.tables import User

    store = _store()
    with store.transaction() as s:
        first = not s.scalar(select(func.count()).select_from(User))
        actor = None if first else _actor(s, as_user)
        user = add_user(s, actor, username, display_name=display_name, email=email, roles=role)
        roles = ", ".join(sorted(user.roles))
    console.print(f"added user '{escape(user.username)}' with roles: {roles}")


def user_list(fmt: Fmt = typer.Option(Fmt.table, "--format", "-f")) -> None:
    """List users and their roles."""
    from assay.registry import list_users

    store = _store()
    with store.transaction() as s:
        rows = [{"username": u.username, "display_name": u.display_name, "email": u.email,
                 "roles": sorted(u.roles), "active": u.active} for u in list_users(s)]
    if fmt is Fmt.json:
        _print_json(rows)
        return
    table = Table(header_style="bold")
    for col in ("user", "name", "roles", "active"):
        table.add_column(col)
    for r in rows:
        table.add_row(escape(r["username"]), escape(r["display_name"]),
                      escape(", ".join(r["roles"])), "yes" if r["active"] else "[red]no[/]")
    console.print(table)


def user_grant(
    username: str = typer.Argument(...),
    role: str = typer.Argument(..., help="Role to grant."),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
) -> None:
    """Grant a role to a user (admins only)."""
    from assay.registry import grant_role

    store = _store()
    with store.transaction() as s:
        user = grant_role(s, _actor(s, as_user), username, role)
        roles = ", ".join(sorted(user.roles))
    console.print(f"'{escape(user.username)}' now holds: {roles}")


def user_revoke(
    username: str = typer.Argument(...),
    role: str = typer.Argument(..., help="Role to take away."),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
) -> None:
    """Revoke a role from a user (admins only)."""
    from assay.registry import revoke_role

    store = _store()
    with store.transaction() as s:
        user = revoke_role(s, _actor(s, as_user), username, role)
        roles = ", ".join(sorted(user.roles)) or "no roles"
    console.print(f"'{escape(user.username)}' now holds: {roles}")


def user_deactivate(
    username: str = typer.Argument(...),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    activate: bool = typer.Option(False, "--activate", help="Re-activate instead."),
) -> None:
    """Deactivate a user (they can no longer act); --activate reverses it."""
    from assay.registry import set_user_active

    store = _store()
    with store.transaction() as s:
        user = set_user_active(s, _actor(s, as_user), username, activate)
    console.print(f"'{escape(user.username)}' is {'active' if user.active else 'deactivated'}")


# --------------------------------------------------------------------------- models

def _read_model_file(path: Path) -> dict[str, Any]:
    import yaml

    from assay.registry import MODEL_FIELDS

    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}{where}: not valid YAML") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of model fields")
    allowed = {"name", *MODEL_FIELDS}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InputError(f"{path}: unknown field(s) {', '.join(unknown)}; expected "
                         f"{', '.join(sorted(allowed))}")
    return data


def model_register(
    name: str | None = typer.Argument(None, help="Model name (or 'name' in --from-file)."),
    from_file: Path | None = typer.Option(None, "--from-file", metavar="YAML",
                                          help="Read the fields from a YAML file; options "
                                               "given here override it."),
    purpose: str | None = typer.Option(None, "--purpose", help="What the model is for."),
    intended_use: str | None = typer.Option(None, "--intended-use"),
    out_of_scope: str | None = typer.Option(None, "--out-of-scope",
                                            help="Uses the model is not fit for."),
    owner: str | None = typer.Option(None, "--owner", help="User name of the accountable owner."),
    business_unit: str | None = typer.Option(None, "--business-unit"),
    stakeholders: str | None = typer.Option(None, "--stakeholders",
                                            help="Affected stakeholders, comma separated."),
    decision_type: str | None = typer.Option(None, "--decision-type",
                                             help="automated or human_in_the_loop."),
    status: str | None = typer.Option(None, "--status",
                                      help="Deployment status (default development)."),
    criticality: str | None = typer.Option(None, "--criticality",
                                           help="low, medium, high or critical."),
    next_review: str | None = typer.Option(None, "--next-review", help="Date YYYY-MM-DD."),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
) -> None:
    """Register a model in the inventory."""
    from assay.registry import register_model

    fields: dict[str, Any] = _read_model_file(from_file) if from_file else {}
    file_name = fields.pop("name", None)
    name = name or file_name
    if not name:
        raise InputError("model name: give it as an argument or as 'name' in --from-file")
    given = {"purpose": purpose, "intended_use": intended_use, "out_of_scope_uses": out_of_scope,
             "owner": owner, "business_unit": business_unit,
             "stakeholders": _split(stakeholders), "decision_type": decision_type,
             "deployment_status": status, "criticality": criticality,
             "next_review_at": next_review}
    fields.update({k: v for k, v in given.items() if v is not None})
    store = _store()
    with store.transaction() as s:
        model = register_model(s, _actor(s, as_user), str(name), **fields)
        name = model.name
    console.print(f"registered model '{escape(name)}'")


def model_update(
    name: str = typer.Argument(...),
    purpose: str | None = typer.Option(None, "--purpose"),
    intended_use: str | None = typer.Option(None, "--intended-use"),
    out_of_scope: str | None = typer.Option(None, "--out-of-scope"),
    owner: str | None = typer.Option(None, "--owner"),
    business_unit: str | None = typer.Option(None, "--business-unit"),
    stakeholders: str | None = typer.Option(None, "--stakeholders"),
    decision_type: str | None = typer.Option(None, "--decision-type"),
    status: str | None = typer.Option(None, "--status"),
    criticality: str | None = typer.Option(None, "--criticality"),
    next_review: str | None = typer.Option(None, "--next-review"),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
) -> None:
    """Change inventory fields of a model (the audit trail keeps old and new values)."""
    from assay.workflow import update_model

    given = {"purpose": purpose, "intended_use": intended_use, "out_of_scope_uses": out_of_scope,
             "owner": owner, "business_unit": business_unit,
             "stakeholders": _split(stakeholders), "decision_type": decision_type,
             "deployment_status": status, "criticality": criticality,
             "next_review_at": next_review}
    fields = {k: v for k, v in given.items() if v is not None}
    if not fields:
        raise InputError("nothing to change: give at least one option (see --help)")
    store = _store()
    with store.transaction() as s:
        update_model(s, _actor(s, as_user), name, **fields)
    console.print(f"updated model '{escape(name)}': {', '.join(sorted(fields))}")


def model_version(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Version label, e.g. 1.2.0."),
    artifact: Path | None = typer.Option(None, "--artifact", metavar="FILE",
                                         help="Model file: its SHA-256 is recorded."),
    artifact_digest: str | None = typer.Option(None, "--artifact-digest"),
    training_data: Path | None = typer.Option(None, "--training-data", metavar="FILE",
                                              help="Training data file (digest recorded)."),
    training_source: str | None = typer.Option(None, "--training-source",
                                               help="Where the training data comes from."),
    evaluation_data: Path | None = typer.Option(None, "--evaluation-data", metavar="FILE"),
    evaluation_source: str | None = typer.Option(None, "--evaluation-source"),
    feature_pipeline: str | None = typer.Option(None, "--feature-pipeline"),
    code_revision: str | None = typer.Option(None, "--code-revision",
                                             help="VCS revision of the training code."),
    parent: str | None = typer.Option(None, "--parent",
                                      help="Parent version (default: the newest; 'none' for "
                                           "no parent)."),
    store_artifact: bool = typer.Option(False, "--store-artifact",
                                        help="Also copy the model file into the evidence store."),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
) -> None:
    """Add a version of a model with its lineage (artifact, data, code)."""
    from assay.evidence import digest_file, store_file
    from assay.registry import LATEST, add_version

    def _file_digest(path: Path | None, option: str) -> str | None:
        if path is None:
            return None
        if not path.is_file():
            raise InputError(f"{option} {path}: file not found")
        return digest_file(path)

    if artifact is not None and artifact_digest is not None:
        raise InputError("give --artifact or --artifact-digest, not both")
    fields: dict[str, Any] = {
        "artifact_digest": _file_digest(artifact, "--artifact") or artifact_digest,
        "training_data_digest": _file_digest(training_data, "--training-data"),
        "training_data_source": training_source or (str(training_data) if training_data else None),
        "evaluation_data_digest": _file_digest(evaluation_data, "--evaluation-data"),
        "evaluation_data_source": (evaluation_source
                                   or (str(evaluation_data) if evaluation_data else None)),
        "feature_pipeline": feature_pipeline, "code_revision": code_revision,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    fields["parent_version"] = LATEST if parent is None else (
        None if parent.lower() == "none" else parent)
    store = _store()
    with store.transaction() as s:
        mv = add_version(s, _actor(s, as_user), name, version, **fields)
        if store_artifact and artifact is not None:
            store_file(store.settings, artifact)
        parent_label = mv.parent.version if mv.parent else "none"
    console.print(f"added {escape(name)} version {escape(version)} (parent: "
                  f"{escape(parent_label)})")


def model_record(
    name: str = typer.Argument(...),
    version: str = typer.Argument(...),
    results: Path = typer.Option(..., "--results", metavar="FILE",
                                 help="results.json written by `assay certify`, or its "
                                      "directory."),
    report: Path | None = typer.Option(None, "--report", metavar="FILE",
                                       help="report.html (default: next to results.json)."),
    attestation: Path | None = typer.Option(
        None, "--attestation", metavar="ENVELOPE",
        help="A signed certification (DSSE envelope, e.g. results.intoto.json): verified "
             "against the trusted keys before anything is recorded."),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
) -> None:
    """Record a certification run of a model version as evidence."""
    from assay.registry import record_certification

    if results.is_dir():
        results = results / "results.json"
    if not results.is_file():
        raise InputError(f"--results {results}: file not found")
    if report is None and (results.parent / "report.html").is_file():
        report = results.parent / "report.html"
    if report is not None and not report.is_file():
        raise InputError(f"--report {report}: file not found")
    if attestation is not None and not attestation.is_file():
        raise InputError(f"--attestation {attestation}: file not found")
    raw = results.read_bytes()
    store = _store()
    with store.transaction() as s:
        cert = record_certification(s, _actor(s, as_user), name, version, None, raw,
                                    report.read_bytes() if report else None,
                                    attestation=attestation.read_bytes() if attestation
                                    else None)
        out = (cert.id, cert.status, cert.results_digest)
    console.print(f"recorded certification #{out[0]} of {escape(name)} {escape(version)}: "
                  f"{out[1]} (results {out[2]})")


def policy_register(
    file: Path = typer.Argument(..., help="The policy YAML file to register."),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
) -> None:
    """Register a custom policy in the store (admin or validator), so that certifications
    made under it can be recorded. Shipped policies need no registering."""
    from assay.registry import register_policy

    if not file.is_file():
        raise InputError(f"{file}: policy file not found")
    raw = file.read_bytes()
    store = _store()
    with store.transaction() as s:
        row = register_policy(s, _actor(s, as_user), raw, source=file.name,
                              settings=store.settings)
        out = (row.name, row.version, row.digest, row.registered_by_name)
    console.print(f"policy {escape(out[0])} version {escape(out[1])} is registered "
                  f"({out[2]}, by {escape(out[3])})")


def policy_registered(fmt: Fmt = typer.Option(Fmt.table, "--format", "-f")) -> None:
    """List the policies certifications may be recorded under: shipped and registered."""
    from assay.registry import list_registered_policies
    from assay.registry.policies import shipped_policy_records

    store = _store()
    with store.transaction() as s:
        rows = shipped_policy_records() + [r.to_dict() for r in list_registered_policies(s)]
    if fmt is Fmt.json:
        _print_json(rows)
        return
    table = Table(header_style="bold")
    for col in ("name", "version", "sha256", "file", "registered"):
        table.add_column(col)
    for r in rows:
        who = ("shipped" if r.get("shipped") else
               f"{r['registered_by']} {(r['registered_at'] or '')[:10]}")
        table.add_row(escape(r["name"]), escape(r["version"]), r["digest"][:19] + "…",
                      escape(r["source"]), escape(who))
    console.print(table)


def model_list(
    tier: str | None = typer.Option(None, "--tier"),
    status: str | None = typer.Option(None, "--status"),
    fmt: Fmt = typer.Option(Fmt.table, "--format", "-f"),
) -> None:
    """List registered models."""
    from assay.registry import list_models

    store = _store()
    with store.transaction() as s:
        rows = [m.to_dict() | {"versions": len(m.versions)}
                for m in list_models(s, tier=tier, status=status)]
    if fmt is Fmt.json:
        _print_json(rows)
        return
    table = Table(header_style="bold")
    for col in ("model", "tier", "status", "criticality", "decision", "owner", "versions"):
        table.add_column(col)
    for r in rows:
        table.add_row(escape(r["name"]), _tier_style(r["tier"]), r["deployment_status"],
                      r["criticality"], r["decision_type"], escape(r["owner"]),
                      str(r["versions"]))
    console.print(table)
    if not rows:
        console.print("no models registered yet: `assay model register --help`")


def model_show(
    name: str = typer.Argument(...),
    fmt: Fmt = typer.Option(Fmt.table, "--format", "-f"),
) -> None:
    """Show a model: inventory fields, versions with lineage, certifications, recent audit."""
    from assay.registry import approval_states, get_model, list_certifications
    from assay.store.audit import list_events

    store = _store()
    with store.transaction() as s:
        model = get_model(s, name)
        doc = model.to_dict()
        doc["versions"] = []
        approvals = approval_states(s, [mv.id for mv in model.versions])
        for mv in model.versions:
            v = mv.to_dict()
            v["certifications"] = [c.to_dict() for c in list_certifications(s, mv.id)]
            v["approval"] = approvals.get(mv.id)
            doc["versions"].append(v)
        events = list_events(s, model=name, limit=10)
        doc["recent_events"] = [{"seq": e.seq, "at": e.created_at, "actor": e.actor,
                                 "action": e.action} for e in events]
    if fmt is Fmt.json:
        _print_json(doc)
        return
    console.print(f"[bold]{escape(doc['name'])}[/]  tier {_tier_style(doc['tier'])}  "
                  f"status {doc['deployment_status']}  criticality {doc['criticality']}")
    for key in ("purpose", "intended_use", "out_of_scope_uses", "owner", "business_unit",
                "decision_type", "next_review_at", "created_at"):
        console.print(f"  {key.replace('_', ' ')}: {escape(str(doc[key] or '-'))}")
    console.print(f"  stakeholders: {escape(', '.join(doc['stakeholders']) or '-')}")
    table = Table(header_style="bold", title="versions")
    for col in ("version", "parent", "artifact", "code", "by", "created", "certification",
                "approval"):
        table.add_column(col)
    for v in doc["versions"]:
        certs = v["certifications"]
        last = f"{certs[-1]['status']} ({certs[-1]['policy_name']}/{certs[-1]['tier']})" \
            if certs else "-"
        table.add_row(escape(v["version"]), escape(v["parent_version"] or "-"),
                      escape((v["artifact_digest"] or "-")[:19]), escape(v["code_revision"] or "-"),
                      escape(v["created_by"]), v["created_at"][:10], escape(last),
                      escape(v["approval"] or "-"))
    console.print(table)
    if doc["recent_events"]:
        console.print("recent audit events:")
        for e in doc["recent_events"]:
            console.print(f"  #{e['seq']} {e['at'][:19].replace('T', ' ')} {escape(e['actor'])} "
                          f"{escape(e['action'])}")


# --------------------------------------------------------------------------- inventory

INVENTORY_COLUMNS = ("name", "tier", "deployment_status", "criticality", "decision_type", "owner",
                     "business_unit", "latest_version", "versions", "certification", "approval",
                     "next_review_at", "overdue", "days_overdue", "approved_version")


def _approval_cell(row: dict[str, Any]) -> str:
    """The latest version's approval state, and which older version is approved if any."""
    approval = row["approval"] or "-"
    older = row.get("approved_version")
    if older and older != row["latest_version"]:
        return f"{approval} ({older} approved)"
    return approval


def inventory_cmd(
    fmt: InvFmt = typer.Option(InvFmt.table, "--format", "-f", help="table, json or csv."),
    tier: str | None = typer.Option(None, "--tier", help="Only this tier."),
    status: str | None = typer.Option(None, "--status", help="Only this deployment status."),
    overdue: bool = typer.Option(False, "--overdue", help="Only models overdue for review."),
) -> None:
    """Every model by tier, status and review date, with overdue reviews flagged."""
    from assay.registry import inventory

    store = _store()
    with store.transaction() as s:
        rows = [r.to_dict() for r in inventory(s, tier=tier, status=status,
                                               overdue_only=overdue)]
    if fmt is InvFmt.json:
        _print_json(rows)
        return
    if fmt is InvFmt.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(INVENTORY_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r[k] for k in INVENTORY_COLUMNS})
        sys.stdout.write(buf.getvalue())
        return
    table = Table(header_style="bold", title="Model inventory")
    for col in ("model", "tier", "status", "criticality", "decision", "owner", "version",
                "certification", "approval", "next review"):
        table.add_column(col)
    for r in rows:
        due = (r["next_review_at"] or "-")[:10]
        if r["overdue"]:
            due = f"[bold red]{due} (overdue {r['days_overdue']}d)[/]"
        table.add_row(escape(r["name"]), _tier_style(r["tier"]), r["deployment_status"],
                      r["criticality"], r["decision_type"], escape(r["owner"]),
                      escape(r["latest_version"] or "-"), escape(r["certification"] or "-"),
                      escape(_approval_cell(r)), due)
    console.print(table)
    by_tier: dict[str, int] = {}
    for r in rows:
        by_tier[r["tier"] or "unassessed"] = by_tier.get(r["tier"] or "unassessed", 0) + 1
    late = sum(1 for r in rows if r["overdue"])
    summary = ", ".join(f"{k}: {v}" for k, v in by_tier.items()) or "no models"
    console.print(f"{len(rows)} models ({summary}); overdue reviews: {late}")


# --------------------------------------------------------------------------- audit

def _parse_anchor(anchor: str | None) -> tuple[int, str] | None:
    if anchor is None:
        return None
    seq, _, digest = anchor.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise InputError(f"--anchor '{anchor}': expected SEQ:HASH, e.g. 42:<64 hex digits> "
                         "(from a previous `assay audit verify`)")
    return int(seq), digest.lower()


def audit_verify(
    anchor: str | None = typer.Option(None, "--anchor", metavar="SEQ:HASH",
                                      help="A head recorded earlier: also detect a truncated "
                                           "or rewritten tail."),
    records: bool = typer.Option(False, "--records",
                                 help="Also check that every user, model, version and "
                                      "certification has the audit event that created it."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", metavar="FILE",
                                           help="A signed checkpoint (`assay audit "
                                                "checkpoint`) to check the trail against."),
    public_key: Path | None = typer.Option(None, "--public-key", metavar="FILE",
                                           help="Public key the checkpoint must be signed "
                                                "with."),
    fmt: Fmt = typer.Option(Fmt.table, "--format", "-f"),
) -> None:
    """Recompute the hash chain; name the first altered, deleted or reordered event.

    Exit code 0: intact; 1: broken (or, with --records, records written around assay).
    """
    from assay.registry import unaudited_records
    from assay.store.audit import verify_chain

    point = _parse_anchor(anchor)
    if checkpoint is not None:
        from assay.store.checkpoint import read_checkpoint

        if public_key is None:
            raise InputError("--checkpoint needs --public-key (the key it must be signed with)")
        if point is not None:
            raise InputError("give --anchor or --checkpoint, not both")
        point = read_checkpoint(checkpoint, public_key)
    store = _store()
    with store.transaction() as s:
        result = verify_chain(s, anchor=point)
        missing = unaudited_records(s) if records else []
    if fmt is Fmt.json:
        doc = result.to_dict()
        if records:
            doc["unaudited_records"] = missing
        _print_json(doc)
    else:
        if result.ok:
            console.print(f"audit trail intact: {result.checked} events; head "
                          f"{result.head_seq}:{result.head_hash}")
        else:
            console.print(f"[bold red]audit trail BROKEN at event {result.first_bad_seq}:[/] "
                          f"{escape(result.reason)} ({result.checked} events before it "
                          "verified)")
        if records and not missing:
            console.print("every inventory record has its audit event")
        for line in missing:
            console.print(f"[bold red]unaudited:[/] {escape(line)}")
    if not result.ok or missing:
        raise typer.Exit(1)


def _audit_reader(store: Any, as_user: str | None) -> None:
    """The acting user must be one who reads the whole trail (auditor, compliance,
    risk officer, admin): the same rule as the REST service and the web pages."""
    from assay.registry import require_role
    from assay.registry import roles as R

    with store.transaction() as s:
        require_role(_actor(s, as_user), *R.AUDIT_READERS, action="read the audit trail")


def audit_export(
    out: Path = typer.Option(..., "--out", "-o", metavar="FILE",
                             help="JSON Lines file to write ('-' for stdout)."),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
) -> None:
    """Export the trail as JSON Lines with its hash chain (verifiable without assay).

    Auditors, compliance, risk officers and admins only. The written file is
    verified; exit code 1 if its chain is broken (the file is still written, for
    investigation).
    """
    from assay.store.audit import export_jsonl, verify_records

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    store = _store()
    _audit_reader(store, as_user)
    if str(out) == "-":
        with store.transaction() as s:
            export_jsonl(s, sys.stdout)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with store.transaction() as s, tmp.open("w", encoding="utf-8", newline="\n") as fh:
        n = export_jsonl(s, fh)
    tmp.replace(out)
    with out.open(encoding="utf-8") as fh:
        result = verify_records(json.loads(line) for line in fh)
    err.print(f"wrote {n} events to {escape(str(out))}; head "
              f"{result.head_seq}:{result.head_hash}")
    if not result.ok:
        err.print(f"[bold red]warning:[/] the exported chain is BROKEN at event "
                  f"{result.first_bad_seq}: {escape(result.reason)}")
        raise typer.Exit(1)


def audit_keygen(
    out: Path = typer.Option(..., "--out", "-o", metavar="FILE",
                             help="Private key file to create (the public key goes to "
                                  "FILE.pub)."),
) -> None:
    """Create an Ed25519 key pair for signing audit checkpoints (keep it away from the DB)."""
    from assay.store.checkpoint import generate_key

    public = generate_key(out)
    console.print(f"private key: {escape(str(out))} (mode 0600; keep it off the database "
                  f"server)\npublic key:  {escape(str(public))} (give it to the auditors)")


def audit_checkpoint(
    key: Path = typer.Option(..., "--key", metavar="FILE", help="Ed25519 private key (PEM)."),
    out: Path = typer.Option(..., "--out", "-o", metavar="FILE",
                             help="Checkpoint file to write."),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
) -> None:
    """Sign the head of the (verified) audit trail; keep the file outside the database."""
    from assay.registry import require_role
    from assay.registry import roles as R
    from assay.store.checkpoint import make_checkpoint

    store = _store()
    with store.transaction() as s:
        actor = _actor(s, as_user)
        require_role(actor, *R.AUDIT_READERS, action="sign audit checkpoints")
        doc = make_checkpoint(s, key, signed_by=actor.username)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    console.print(f"checkpoint of event {doc['seq']} ({doc['hash']}) written to "
                  f"{escape(str(out))}")


def audit_list(
    model: str | None = typer.Option(None, "--model", help="Events about this model."),
    subject: str | None = typer.Option(None, "--subject", metavar="TYPE:ID",
                                       help="Events about one subject, e.g. user:dana."),
    actor: str | None = typer.Option(None, "--actor"),
    action: str | None = typer.Option(None, "--action", help="Action, or a prefix ending in *."),
    limit: int = typer.Option(50, "--limit", min=1),
    fmt: Fmt = typer.Option(Fmt.table, "--format", "-f"),
    as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
) -> None:
    """List recent audit events, newest first (auditors, compliance, risk officers, admins)."""
    from assay.store.audit import list_events

    stype = sid = None
    if subject:
        stype, sep, sid = subject.partition(":")
        if not sep or not stype or not sid:
            raise InputError(f"--subject '{subject}': expected TYPE:ID, e.g. model:credit-pd")
    store = _store()
    _audit_reader(store, as_user)
    with store.transaction() as s:
        events = [e.to_dict() for e in list_events(s, subject_type=stype, subject_id=sid,
                                                   actor=actor, action=action, model=model,
                                                   limit=limit)]
    if fmt is Fmt.json:
        _print_json(events)
        return
    table = Table(header_style="bold")
    for col in ("seq", "time (UTC)", "actor", "action", "subject", "evidence"):
        table.add_column(col)
    for e in events:
        table.add_row(str(e["seq"]), e["created_at"][:19].replace("T", " "), escape(e["actor"]),
                      escape(e["action"]), escape(f"{e['subject_type']}:{e['subject_id']}"),
                      escape(", ".join(sorted(e["evidence"]))))
    console.print(table)


# --------------------------------------------------------------------------- evidence

def evidence_verify(fmt: Fmt = typer.Option(Fmt.table, "--format", "-f")) -> None:
    """Re-hash the stored evidence the records refer to; exit 1 if any is missing or changed."""
    from assay.evidence.check import check_evidence

    store = _store()
    with store.transaction() as s:
        result = check_evidence(s, store.settings)
    if fmt is Fmt.json:
        _print_json(result.to_dict())
    else:
        for line in result.missing:
            console.print(f"[bold red]missing:[/] {escape(line)}")
        for line in result.corrupted:
            console.print(f"[bold red]corrupted:[/] {escape(line)}")
        state = "intact" if result.ok else "[bold red]NOT intact[/]"
        console.print(f"evidence {state}: {result.checked} stored artifacts checked, "
                      f"{result.external} external digests (model files, data) not kept by "
                      "assay")
    if not result.ok:
        raise typer.Exit(1)


def evidence_get(
    digest: str = typer.Argument(..., help="sha256:<hex> of the artifact."),
    out: Path = typer.Option(..., "--out", "-o", metavar="FILE", help="Where to write it "
                             "('-' for stdout)."),
) -> None:
    """Write a stored artifact (checked against its digest) to a file."""
    from assay.config import load_settings
    from assay.evidence import open_artifact

    data = open_artifact(load_settings(), digest)
    if str(out) == "-":
        sys.stdout.buffer.write(data)
        return
    out.write_bytes(data)
    console.print(f"wrote {len(data)} bytes to {escape(str(out))}")


# --------------------------------------------------------------------------- registration

def register(app: typer.Typer) -> None:
    """Add ``db``, ``user``, ``model``, ``inventory`` and ``audit`` to ``assay``."""
    db_app = typer.Typer(help="Create and upgrade the database.", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade)
    db_app.command("current")(db_current)
    app.add_typer(db_app, name="db")

    user_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
    user_app.command("add")(user_add)
    user_app.command("list")(user_list)
    user_app.command("grant")(user_grant)
    user_app.command("revoke")(user_revoke)
    user_app.command("deactivate")(user_deactivate)
    app.add_typer(user_app, name="user")

    model_app = typer.Typer(help="The model inventory: models, versions, certifications.",
                            no_args_is_help=True)
    model_app.command("register")(model_register)
    model_app.command("update")(model_update)
    model_app.command("version")(model_version)
    model_app.command("record")(model_record)
    model_app.command("list")(model_list)
    model_app.command("show")(model_show)
    app.add_typer(model_app, name="model")

    app.command("inventory")(inventory_cmd)

    audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
    audit_app.command("verify")(audit_verify)
    audit_app.command("export")(audit_export)
    audit_app.command("list")(audit_list)
    audit_app.command("keygen")(audit_keygen)
    audit_app.command("checkpoint")(audit_checkpoint)
    app.add_typer(audit_app, name="audit")

    evidence_app = typer.Typer(help="The content-addressed evidence store.",
                               no_args_is_help=True)
    evidence_app.command("verify")(evidence_verify)
    evidence_app.command("get")(evidence_get)
    app.add_typer(evidence_app, name="evidence")
