"""``assay submit / review / approve / reject / comment / waive / status / recheck / gate``.

Commands that change something act as ``--as USER`` or ``ASSAY_USER`` and run
one domain call from :mod:`assay.workflow` inside one transaction; ``review``,
``status`` and ``gate`` only read and need no user. ``gate`` exits 0 when
deployment is allowed and 1 when it is not. Errors (unknown model or user, a
role acting outside its rights, a stage out of order, a waiver without
justification) print one line and exit 2 with nothing written.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assay.errors import InputError

console = Console(highlight=False, soft_wrap=True)

AS_HELP = "Act as this user (default: $ASSAY_USER)."
READ_AS_HELP = "Read as this user (optional; default: $ASSAY_USER)."
FORMAT_HELP = "Output format: text or json."


def _store() -> Any:
    from assay.store import open_store

    return open_store()


def _actor_name(as_user: str | None) -> str:
    name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
    if not name:
        raise InputError("no acting user: pass --as USER or set ASSAY_USER")
    return name


def parse_when(value: str | None, *, option: str = "--expires") -> datetime | None:
    """``YYYY-MM-DD`` (valid to the end of that day, UTC) or an ISO 8601 date-time."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return day + timedelta(days=1) - timedelta(seconds=1)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{option}: expected a date YYYY-MM-DD or an ISO 8601 date-time, "
                         f"got {value!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _attach(settings: Any, paths: list[Path] | None) -> dict[str, str]:
    from assay.evidence import store_file

    docs: dict[str, str] = {}
    for p in paths or []:
        if not p.is_file():
            raise InputError(f"--attach {p}: no such file")
        docs[p.name] = store_file(settings, p)
    return docs


def _notify_after(as_user: str | None) -> None:
    """A stage now awaits its approvers: send their notifications (best effort)."""
    from assay.cli.notify import after_commit

    after_commit(_actor_name(as_user))


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise InputError(f"--format: expected text or json, got {fmt!r}")


def _emit_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _short(digest: str | None) -> str:
    return digest[:19] + "…" if digest and len(digest) > 20 else (digest or "")


# --------------------------------------------------------------------------- rendering


def _e(value: Any) -> str:
    """User-supplied text, safe from rich markup."""
    return escape(str(value))


def _minute(iso: str) -> str:
    """An ISO 8601 UTC time as people read it: ``2027-06-30 23:59 UTC``."""
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def _print_gate(d: Any) -> None:
    verdict = "[bold green]ALLOWED[/]" if d.allowed else "[bold red]BLOCKED[/]"
    console.print(f"deployment gate for {_e(d.model)}@{_e(d.version)}: {verdict}")
    for r in d.reasons:
        console.print(f"  - {_e(r)}")
    for c in d.conditions:
        console.print(f"  condition: {_e(c)}")
    for n in d.notes:
        console.print(f"  note: {_e(n)}")
    if d.approved_until:
        console.print(f"  approved until {_minute(d.approved_until)}")
    if d.waived_until:
        console.print(f"  certification passes only by waiver until {_minute(d.waived_until)}: "
                      "the gate blocks after that unless the version is recertified or a "
                      "new waiver is granted")
    for k, v in d.evidence.items():
        console.print(f"  evidence {_e(k)}: {_e(v)}")
    for a in getattr(d, "attestations", []):
        console.print(f"  attestation {_e(a['kind'])} ({_e(a['ref'])}): {_e(a['digest'])}, "
                      f"key {_e(a['keyid'][:16])}")
    if getattr(d, "attestation", None):
        console.print(f"  this decision signed: {_e(d.attestation['digest'])}")


def _print_review(info: Any) -> None:
    console.print(f"{_e(info.model)}@{_e(info.version)}: submission #{info.submission_id} "
                  f"({info.state.replace('_', ' ')}), tier {info.tier}, "
                  f"policy {_e(info.policy)}, revision {info.revision}")
    if info.stage is None:
        console.print("no stage awaits sign-off")
        return
    st = info.stage
    console.print(f"current stage: [bold]{_e(st.stage)}[/] ({_e(st.title)})")
    console.print(f"  must be signed by: {', '.join(st.roles)} "
                  f"({st.approvers} distinct approver(s)"
                  + (", independent of the developer" if st.independent else "") + ")")
    for s in st.signed:
        console.print(f"  signed: {_e(s['user'])} as {s['role']} ({s['decision']}) at {s['at']}")
    if info.missing_roles or info.approvals_needed:
        console.print(f"  still needed: {info.approvals_needed} approval(s)"
                      + (f", roles {', '.join(info.missing_roles)}" if info.missing_roles else ""))
    for ev in info.evidence:
        mark = "[green]ok[/]" if ev["ok"] else "[red]not met:[/]"
        console.print(f"  evidence {ev['kind']}: {mark} {_e(ev['detail'])}")
    if info.you_may_sign_as:
        console.print(f"  you ({_e(info.you)}) may sign as " + ", ".join(info.you_may_sign_as))
    elif info.why_not_you:
        console.print(f"  you cannot sign: {_e(info.why_not_you)}")
    if info.eligible:
        console.print("  may sign: " + ", ".join(
            f"{_e(u['user'])} ({'/'.join(u['roles'])})" for u in info.eligible))
    else:
        console.print("  may sign: nobody eligible yet (grant roles with assay user grant)")


def _print_status(st: Any) -> None:
    console.print(f"[bold]{_e(st.model)}[/] tier {st.tier or '(not assessed)'}")
    if not st.versions:
        console.print("no versions registered")
    for c in st.changes:
        console.print(f"[yellow]back to certification[/]: {_e(c)}")
    for v in st.versions:
        console.print("")
        state = (v.state or "not submitted").replace("_", " ")
        console.print(f"[bold]version {_e(v.version)}[/]: {state}"
                      + (f", current stage {v.current_stage}" if v.current_stage else "")
                      + (f", approved until {_minute(v.approved_until)}"
                         if v.approved_until and v.state == "approved" else ""))
        if v.stages:
            table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
            for col in ("stage", "status", "needs sign-off by; evidence", "signed by"):
                table.add_column(col)
            for s in v.stages:
                needs = "-" if s.status == "skipped" else (
                    " + ".join(s.roles)
                    + (f" ({s.approvers} people)" if s.approvers > len(s.roles) else "")
                    + (f"; {', '.join(s.evidence)}" if s.evidence else ""))
                signed = ", ".join(x["user"] + (" (rejected)" if x["decision"] == "reject"
                                                else "") for x in s.signed) or "-"
                table.add_row(_e(s.stage), s.status, _e(needs), _e(signed))
            console.print(table)
        if v.timeline:
            console.print("timeline:")
            for ev in v.timeline:
                sub = f" #{ev['submission']}" if ev.get("submission") else ""
                where = f" {ev['stage']}" if ev.get("stage") else ""
                who = f" by {ev['user']}" if ev.get("user") else ""
                role = f" as {ev['role']}" if ev.get("role") else ""
                text = f": {ev['text']}" if ev.get("text") else ""
                console.print(f"  {ev['at']} {_e(ev['event'])}{_e(sub + where)}"
                              f"{_e(who + role + text)}")
        for c in v.conditions:
            if c["submission"] == v.submission_id:
                console.print(f"  condition #{c['id']} ({c['status']}, {_e(c['stage'])}): "
                              f"{_e(c['text'])}")
        for c in v.changes:
            console.print(f"  [yellow]recertification required[/]: {_e(c)}")
        _print_gate(v.gate)


# --------------------------------------------------------------------------- commands


def register(app: typer.Typer) -> None:
    # The workflow domain (and SQLAlchemy) is imported inside each command, so that
    # `assay --help` and every command's --help stay fast.

    def _run(as_user: str | None, fn: Any) -> Any:
        """A change, made by the acting user, in one transaction."""
        from assay.registry import get_user

        store = _store()
        name = _actor_name(as_user)
        with store.transaction() as session:
            actor = get_user(session, name)
            return fn(session, actor, store.settings)

    def _read(as_user: str | None, fn: Any) -> Any:
        """A read: no acting user needed (one given is looked up and passed on)."""
        from assay.registry import get_user

        store = _store()
        name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
        with store.transaction() as session:
            actor = get_user(session, name) if name else None
            return fn(session, actor, store.settings)

    @app.command("submit", rich_help_panel="Approval workflow")
    def submit_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        policy: str | None = typer.Option(None, "--policy",
                                          help="Policy name or file (default: the policy of "
                                               "the latest certification)."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Submit a model version for approval (opens the workflow)."""
        from assay.workflow import service as wf

        sub = _run(as_user, lambda s, a, _: wf.submit(s, a, model, version, policy=policy))
        console.print(f"submitted {model}@{version} as submission #{sub.id} "
                      f"(tier {sub.tier}, policy {sub.policy_name}); "
                      f"first stage: {sub.current_stage}")
        _notify_after(as_user)

    @app.command("review", rich_help_panel="Approval workflow")
    def review_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        fmt: str = typer.Option("text", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=READ_AS_HELP),
    ) -> None:
        """Show the current stage: what it needs and who may sign it."""
        from assay.workflow import service as wf

        _check_format(fmt)
        info = _read(as_user, lambda s, a, settings: wf.review(s, model, version, actor=a,
                                                               settings=settings))
        _emit_json(info.to_dict()) if fmt == "json" else _print_review(info)

    @app.command("approve", rich_help_panel="Approval workflow")
    def approve_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        stage: str = typer.Option(..., "--stage", help="Stage to sign off."),
        role: str | None = typer.Option(None, "--role", help="Role to sign as."),
        condition: list[str] | None = typer.Option(None, "--condition",
                                                   help="A condition (repeatable)."),
        expires: str | None = typer.Option(None, "--expires",
                                           help="Approval valid until YYYY-MM-DD."),
        comment: str | None = typer.Option(None, "--comment", help="A comment on the stage."),
        attach: list[Path] | None = typer.Option(None, "--attach",
                                                 help="Document to attach (repeatable)."),
        revision: int | None = typer.Option(None, "--revision",
                                            help="Fail if the submission changed since this "
                                                 "revision (see assay review)."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Sign off a stage (with optional conditions, expiry, comment, documents)."""
        from assay.workflow import service as wf

        when = parse_when(expires)

        def act(s: Any, a: Any, settings: Any) -> Any:
            from assay.workflow.tables import Submission

            docs = _attach(settings, attach)
            so = wf.approve(s, a, model, version, stage=stage, role=role,
                            conditions=condition or [], expires=when, comment=comment,
                            documents=docs, expected_revision=revision, settings=settings)
            return so, s.get(Submission, so.submission_id)

        so, sub = _run(as_user, act)
        console.print(f"{so.stage}: approved as {so.role}")
        if sub.current_stage != so.stage:
            _notify_after(as_user)
        if sub.current_stage == so.stage:
            console.print(f"stage {so.stage} needs more sign-offs (assay review {_e(model)} "
                          f"{_e(version)})")
            return
        console.print(f"stage {so.stage} complete")
        if sub.state == "approved" and so.stage == sub.deployment_stage:
            console.print(f"{_e(model)}@{_e(version)} approved for deployment until "
                          f"{sub.expires_at:%Y-%m-%d}")
        console.print(f"next stage: {sub.current_stage or '(none: workflow complete)'}")

    @app.command("reject", rich_help_panel="Approval workflow")
    def reject_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        stage: str = typer.Option(..., "--stage", help="Stage to reject."),
        reason: str = typer.Option(..., "--reason", help="Why the stage is rejected."),
        role: str | None = typer.Option(None, "--role", help="Role to reject as."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Reject a stage (closes the submission; fix and submit again)."""
        from assay.workflow import service as wf

        so = _run(as_user, lambda s, a, _: wf.reject(s, a, model, version, stage=stage,
                                                      reason=reason, role=role))
        console.print(f"{so.stage}: rejected by {so.role}: {_e(so.reason)}")

    @app.command("comment", rich_help_panel="Approval workflow")
    def comment_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        text: str = typer.Argument(..., help="The comment."),
        stage: str | None = typer.Option(None, "--stage", help="Stage the comment is about."),
        attach: list[Path] | None = typer.Option(None, "--attach",
                                                 help="Document to attach (repeatable)."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Comment on a submission or one of its stages, optionally attaching documents."""
        from assay.workflow import service as wf

        def act(s: Any, a: Any, settings: Any) -> Any:
            return wf.comment(s, a, model, version, text, stage=stage,
                              documents=_attach(settings, attach))

        c = _run(as_user, act)
        console.print(f"comment #{c.id} added" + (f" to stage {c.stage}" if c.stage else ""))

    @app.command("condition-met", rich_help_panel="Approval workflow")
    def condition_met_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        condition: int = typer.Argument(..., help="Condition number (see assay status)."),
        note: str = typer.Option("", "--note", help="How the condition was met."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Record that a condition of an approval is met."""
        from assay.workflow import service as wf

        c = _run(as_user, lambda s, a, _: wf.meet_condition(s, a, model, version, condition,
                                                             note=note))
        console.print(f"condition #{c.id} met: {_e(c.text)}")

    @app.command("waive", rich_help_panel="Approval workflow")
    def waive_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        check: str | None = typer.Option(None, "--check", help="Waive one failed check."),
        certification: bool = typer.Option(False, "--certification",
                                           help="Waive the blocked (or missing) certification."),
        justification: str = typer.Option("", "--justification",
                                           help="Why deployment may go ahead (required)."),
        expires: str | None = typer.Option(None, "--expires", help="YYYY-MM-DD (required)."),
        policy: str | None = typer.Option(None, "--policy",
                                          help="Policy (default: the submission's)."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Grant a waiver with a justification and an expiry date."""
        from assay.workflow import service as wf

        if bool(check) == certification:
            raise InputError("waive: give exactly one of --check ID or --certification")
        when = parse_when(expires)
        w = _run(as_user, lambda s, a, _: wf.waive(s, a, model, version,
                                                    justification=justification, expires=when,
                                                    check_id=check, policy=policy))
        what = f"check {w.check_id}" if w.check_id else "certification"
        console.print(f"waiver #{w.id} granted for {what} of {model}@{version} "
                      f"until {w.expires_at:%Y-%m-%d}")

    @app.command("revoke-waiver", rich_help_panel="Approval workflow")
    def revoke_waiver_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        waiver: int = typer.Argument(..., help="Waiver number (see assay status)."),
        reason: str = typer.Option("", "--reason", help="Why the waiver ends now."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """End a waiver now."""
        from assay.workflow import service as wf

        w = _run(as_user, lambda s, a, _: wf.revoke_waiver(s, a, model, version, waiver,
                                                            reason=reason))
        console.print(f"waiver #{w.id} of {_e(model)}@{_e(version)} revoked")

    @app.command("status", rich_help_panel="Approval workflow")
    def status_cmd(
        model: str = typer.Argument(..., help="Model name."),
        fmt: str = typer.Option("text", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=READ_AS_HELP),
    ) -> None:
        """Timeline of every stage, sign-off, comment, condition and waiver, and the gate."""
        from assay.workflow import service as wf

        _check_format(fmt)
        st = _read(as_user, lambda s, a, settings: wf.status(s, model, settings=settings))
        _emit_json(st.to_dict()) if fmt == "json" else _print_status(st)

    @app.command("recheck", rich_help_panel="Approval workflow")
    def recheck_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Record change control: send an approved version back to certification if its
        policy, certification or approval changed."""
        from assay.workflow import service as wf

        reasons = _run(as_user, lambda s, a, _: wf.recheck(s, a, model, version))
        if not reasons:
            console.print(f"{model}@{version}: no change requires recertification")
        for r in reasons:
            console.print(f"recertification required: {_e(r)}")

    @app.command("gate", rich_help_panel="Approval workflow")
    def gate_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        fmt: str = typer.Option("text", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=READ_AS_HELP),
    ) -> None:
        """The deployment gate: exit 0 if the version may be deployed, 1 if not."""
        from assay.workflow import service as wf

        _check_format(fmt)
        d = _read(as_user, lambda s, a, settings: wf.record_gate(s, model, version,
                                                                  settings=settings))
        _emit_json(d.to_dict()) if fmt == "json" else _print_gate(d)
        if not d.allowed:
            raise typer.Exit(1)
