"""``assay incident open / list / show / ack / mitigate / update / report / resolve /
postmortem / close / escalate``.

Commands that change something act as ``--as USER`` or ``ASSAY_USER`` and run one
domain call from :mod:`assay.operate` in one transaction: a refused call leaves the
store as it was (exit 2 with a one-line error). Notifications queued by the call
(``incident.opened``, ``incident.overdue``) are delivered right after the commit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from assay.cli.monitor import (
    AS_HELP,
    FORMAT_HELP,
    _actor_name,
    _change,
    _e,
    _emit,
    _format,
    _read,
    console,
)
from assay.errors import InputError

ID_HELP = "Incident id."


def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _local(iso: str | None) -> str:
    if not iso:
        return ""
    when = datetime.fromisoformat(iso)
    return when.strftime("%Y-%m-%d %H:%M ") + when.strftime("%z")[:3] + ":" + \
        when.strftime("%z")[3:]


def _status(d: dict[str, Any]) -> str:
    if d["overdue"]:
        text = "[bold red]OVERDUE[/]"
    elif d["done_at"]:
        text = ("[yellow]done late[/]" if d["late"] else "[green]done[/]") + \
            f" {_when(d['done_at'])} by {_e(d['done_by'])}"
    elif d["due"]:
        text = "pending"
    else:
        text = "no deadline"
    if d["escalated_to"]:
        text += f"; escalated to {_e(d['escalated_to'])} {_when(d['escalated_at'])}"
    return text


def _print_list(items: list[dict[str, Any]]) -> None:
    if not items:
        console.print("no incidents")
        return
    table = Table()
    for col in ("id", "model", "severity", "kind", "state", "title", "owner", "aware since",
                "overdue"):
        table.add_column(col)
    for i in items:
        sev = i["severity"] + (" serious" if i["serious"] else "")
        overdue = ", ".join(i["overdue"])
        table.add_row(str(i["id"]), _e(f"{i['model']}@{i['version']}"), _e(sev), i["kind"],
                      i["state"], _e(i["title"]), _e(i["owner"]), _when(i["aware_at"]),
                      f"[bold red]{overdue}[/]" if overdue else "-")
    console.print(table)


def _print_incident(i: dict[str, Any]) -> None:
    serious = (f", serious incident ({i['serious_case'].replace('_', ' ')})"
               if i["serious"] else "")
    console.print(f"[bold]incident #{i['id']}[/]: {_e(i['title'])}")
    console.print(f"  {_e(i['model'])}@{_e(i['version'])}, {i['severity']}{serious}, "
                  f"{i['kind']}, [bold]{i['state']}[/], owner {_e(i['owner'])}")
    console.print(f"  policy {_e(i['policy'])}, tier {_e(i['tier'] or '-')}; aware since "
                  f"{_when(i['aware_at'])} (zone {i['aware_zone']}); opened by "
                  f"{_e(i['opened_by'])} {_when(i['opened_at'])}")
    if i["affected_groups"]:
        console.print("  affected groups: " + ", ".join(_e(g) for g in i["affected_groups"]))
    if i["description"]:
        console.print(f"  {_e(i['description'])}")
    table = Table(title="Deadlines")
    for col in ("step", "due (UTC)", f"due ({i['aware_zone']})", "status"):
        table.add_column(col)
    for d in i["deadlines"]:
        table.add_row(d["step"], _when(d["due"]), _local(d["due_local"]), _status(d))
    console.print(table)
    report = next(d for d in i["deadlines"] if d["step"] == "report")
    if report["basis"]:
        console.print(f"  report deadline: {_e(report['basis'])}")
    if i["reported_at"]:
        console.print(f"  reported {_when(i['reported_at'])} by {_e(i['reported_by'])}: "
                      f"{_e(i['report_reference'])}")
    if i["playbook"]:
        done = sum(1 for s in i["playbook"] if s["done"])
        table = Table(title=f"Playbook ({i['kind']}): {done} of {len(i['playbook'])} done")
        for col in ("#", "step", "inform", "evidence required", "done", "evidence attached"):
            table.add_column(col)
        for s in i["playbook"]:
            table.add_row(str(s["step"]), _e(s["title"]), ", ".join(s["inform"]),
                          _e(", ".join(s["evidence_required"])) or "-",
                          f"[green]yes[/] {_when(s['done_at'])} {_e(s['done_by'])}"
                          if s["done"] else "no",
                          _e(", ".join(f"{e['name']} ({e['digest'][:19]}...)"
                                       for e in s["evidence"])) or "-")
        console.print(table)
    else:
        console.print("  no playbook steps for this kind")
    for a in i["alerts"]:
        console.print(f"  alert #{a['id']}: {_e(a['message'])} ({a['state']})")
    for link in i["links"]:
        console.print(f"  linked {link['kind']} {_e(link['ref'])} by {_e(link['by'])} "
                      f"{_when(link['at'])}")
    for n in i["notes"]:
        console.print(f"  note by {_e(n['by'])} {_when(n['at'])}: {_e(n['text'])}")
    pm = i["postmortem"]
    need = "required to close" if i["postmortem_required"] else "not required"
    if pm is None:
        console.print(f"  post-mortem: none yet ({need})")
    else:
        console.print(f"  post-mortem by {_e(i['postmortem_by'])} {_when(i['postmortem_at'])}"
                      f" ({i['postmortem_digest']})")
        console.print(f"    root cause: {_e(pm['root_cause'])}")
        for e in pm["timeline"]:
            console.print(f"    {_when(e['at'])}  {_e(e['what'])}")
        for f in pm["contributing_factors"]:
            console.print(f"    contributing: {_e(f)}")
        for w in pm["went_well"]:
            console.print(f"    went well: {_e(w)}")
        for a in pm["actions"]:
            console.print(f"    action: {_e(a['action'])} (owner {_e(a['owner'])}, due "
                          f"{a['due']})")
    if i["second_person_required"] and i["state"] != "closed":
        asked = (f"; {_e(i['close_requested_by'])} asked to close it, a second person must "
                 "confirm" if i["close_requested_by"] else "")
        console.print(f"  closing needs two people (one of {', '.join(i['closers'])}){asked}")
    if i["closed_at"]:
        console.print(f"  closed {_when(i['closed_at'])} by {_e(i['closed_by'])}")


def _after(as_user: str | None) -> None:
    from assay.cli.notify import after_commit

    after_commit(_actor_name(as_user))


def _show(incident_id: int) -> dict[str, Any]:
    from assay.operate import show_incident

    return _read(lambda s: show_incident(s, incident_id))


def register(app: typer.Typer) -> None:
    incident = typer.Typer(help="Incidents: deadlines, playbooks, post-mortems and escalation.",
                           no_args_is_help=True)
    app.add_typer(incident, name="incident", rich_help_panel="Operating models")

    @incident.command("open")
    def open_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        title: str = typer.Option(..., "--title", help="What is wrong, in a line."),
        severity: str = typer.Option(..., "--severity",
                                     help="A severity of the policy (e.g. SEV1 ... SEV4)."),
        kind: str = typer.Option("other", "--kind",
                                 help="drift, performance, fairness, security, privacy, outage "
                                      "or other (picks the playbook)."),
        description: str = typer.Option("", "--description", help="What is known so far."),
        serious: str | None = typer.Option(
            None, "--serious", help="A serious incident (EU AI Act Art. 73): general, "
                                    "widespread_or_critical_infrastructure or death."),
        aware_at: str | None = typer.Option(
            None, "--aware-at", help="When the organisation became aware, with its zone "
                                     "(2026-03-05T09:30+01:00); default: the alerts' time, "
                                     "else now."),
        from_alert: list[int] = typer.Option([], "--from-alert", help="Alert id (repeatable)."),
        group: list[str] = typer.Option([], "--group", help="Affected group (repeatable)."),
        owner: str | None = typer.Option(None, "--owner", help="Who handles it (default: you)."),
        policy: str | None = typer.Option(None, "--policy",
                                          help="Policy (default: the version's certification, "
                                               "else 'default')."),
        tier: str | None = typer.Option(None, "--tier", help="Risk tier of the policy."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Open an incident by hand or from alerts; notifies whom the playbook informs."""
        from assay.operate import incident_to_dict, open_incident

        _format(fmt)
        try:
            out = _change(as_user, lambda s, a: incident_to_dict(s, open_incident(
                s, a, model, version, title=title, severity=severity, kind=kind,
                description=description, serious=serious, aware_at=aware_at,
                alerts=from_alert, groups=group, owner=owner, policy=policy, tier=tier)))
        except InputError as exc:
            raise exc.rename({"aware_at": "--aware-at", "owner": "--owner", "kind": "--kind",
                              "severity": "--severity", "serious": "--serious",
                              "title": "--title", "group": "--group",
                              "description": "--description"}) from None
        _after(as_user)
        if fmt == "json":
            _emit(out)
            return
        console.print(f"incident #{out['id']} opened ({out['severity']}, {out['kind']})")
        _print_incident(out)

    @incident.command("list")
    def list_cmd(
        state: str | None = typer.Option(None, "--state",
                                         help="open, acknowledged, mitigated, resolved or "
                                              "closed."),
        model: str | None = typer.Option(None, "--model", help="Only this model's incidents."),
        overdue: bool = typer.Option(False, "--overdue", help="Only those with an overdue "
                                                             "step."),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """List incidents, newest first, with their overdue steps."""
        from assay.operate import list_incidents

        _format(fmt)
        try:
            items = _read(lambda s: list_incidents(s, state=state, model=model,
                                                   overdue=overdue))
        except InputError as exc:
            raise exc.rename({"state": "--state"}) from None
        _emit(items) if fmt == "json" else _print_list(items)

    @incident.command("show")
    def show_cmd(
        incident_id: int = typer.Argument(..., metavar="ID", help=ID_HELP),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """Deadlines (UTC and the awareness zone) with overdue marks, the playbook's steps with
        their completion, alerts, links, notes and the post-mortem."""
        _format(fmt)
        out = _show(incident_id)
        _emit(out) if fmt == "json" else _print_incident(out)

    def _step(name: str, fn_name: str, done: str, roles_hint: str) -> None:
        @incident.command(name, help=f"{roles_hint}")
        def cmd(
            incident_id: int = typer.Argument(..., metavar="ID", help=ID_HELP),
            note: str = typer.Option("", "--note", help="A note for the incident's log."),
            as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
        ) -> None:
            import assay.operate as op

            fn = getattr(op, fn_name)
            out = _change(as_user, lambda s, a: op.incident_to_dict(
                s, fn(s, a, incident_id, note=note)))
            if name == "close" and out["state"] != "closed":
                console.print(f"incident #{out['id']}: close requested by "
                              f"{_e(out['close_requested_by'])}; a second person with one of "
                              f"the roles {', '.join(out['closers'])} must confirm "
                              f"(`assay incident close {out['id']}`)")
                return
            console.print(f"incident #{out['id']} {done}")

    _step("ack", "acknowledge_incident", "acknowledged",
          "Acknowledge an open incident (take it in hand).")
    _step("mitigate", "mitigate_incident", "mitigated",
          "Record that the harm is contained (after ack).")
    _step("resolve", "resolve_incident", "resolved",
          "Record that the cause is dealt with (after mitigate; not by the version's "
          "registrant).")
    _step("close", "close_incident", "closed",
          "Close a resolved incident (a post-mortem and a second person where the policy "
          "asks).")

    @incident.command("update")
    def update_cmd(
        incident_id: int = typer.Argument(..., metavar="ID", help=ID_HELP),
        step: int | None = typer.Option(None, "--step", help="Playbook step number."),
        done: bool = typer.Option(False, "--done", help="Mark the step done."),
        evidence: list[Path] = typer.Option([], "--evidence",
                                            help="File to attach to the step (repeatable)."),
        link_mitigation: int | None = typer.Option(None, "--link-mitigation",
                                                   help="Risk-register mitigation id."),
        link_waiver: int | None = typer.Option(None, "--link-waiver", help="Waiver id."),
        link_release: str | None = typer.Option(None, "--link-release",
                                                help="Release (rollback) reference."),
        severity: str | None = typer.Option(None, "--severity",
                                            help="A new severity (the deadlines move)."),
        note: str = typer.Option("", "--note", help="A note for the incident's log."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Record a playbook step (done, evidence), a link, a note or a new severity."""
        from assay.operate import incident_to_dict, update_incident
        from assay.operate.incidents import EvidenceFile

        files = []
        for path in evidence:
            if not path.is_file():
                raise InputError(f"--evidence {path}: file not found")
            files.append(EvidenceFile(path.name, path))
        try:
            out = _change(as_user, lambda s, a: incident_to_dict(s, update_incident(
                s, a, incident_id, step=step, done=done, evidence=files,
                link_mitigation=link_mitigation, link_waiver=link_waiver,
                link_release=link_release, note=note, severity=severity)))
        except InputError as exc:
            raise exc.rename({"step": "--step", "link_release": "--link-release",
                              "note": "--note", "evidence": "--evidence",
                              "severity": "--severity"}) from None
        console.print(f"incident #{out['id']} updated")
        if step is not None:
            s = out["playbook"][step - 1]
            console.print(f"  step {step} ({_e(s['title'])}): "
                          + ("done" if s["done"] else "not done") + f", {len(s['evidence'])} "
                          "evidence file(s)")

    @incident.command("report")
    def report_cmd(
        incident_id: int = typer.Argument(..., metavar="ID", help=ID_HELP),
        reference: str = typer.Option(..., "--reference",
                                      help="The authority's case number or the report's id."),
        at: str | None = typer.Option(None, "--at", help="When it was reported, with its zone "
                                                         "(default: now)."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Record that the incident was reported to the authority (stops the report clock)."""
        from assay.operate import incident_to_dict, record_report

        try:
            out = _change(as_user, lambda s, a: incident_to_dict(s, record_report(
                s, a, incident_id, reference=reference, at=at)))
        except InputError as exc:
            raise exc.rename({"at": "--at", "reference": "--reference"}) from None
        console.print(f"incident #{out['id']} reported {_when(out['reported_at'])}")

    @incident.command("postmortem")
    def postmortem_cmd(
        incident_id: int = typer.Argument(..., metavar="ID", help=ID_HELP),
        file: Path = typer.Option(..., "--file", help="The post-mortem as YAML (root_cause, "
                                                     "timeline, contributing_factors, "
                                                     "went_well, actions)."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Record the incident's post-mortem (validated with the file's lines)."""
        from assay.operate import record_postmortem
        from assay.operate.postmortem import parse_postmortem_yaml

        if not file.is_file():
            raise InputError(f"--file {file}: file not found")
        doc, where = parse_postmortem_yaml(file.read_bytes(), source=file.name)
        inc = _change(as_user, lambda s, a: record_postmortem(
            s, a, incident_id, doc, source=file.name, where=where))
        console.print(f"incident #{inc.id}: post-mortem recorded ({inc.postmortem_digest})")

    @incident.command("escalate")
    def escalate_cmd(
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Notify the next role of the chain for each overdue step not yet escalated (for
        cron; the service does it every ASSAY_ESCALATION_INTERVAL seconds)."""
        from assay.operate import escalate_overdue

        _format(fmt)
        made = _change(as_user, lambda s, a: escalate_overdue(s, actor=a))
        if made:
            _after(as_user)
        if fmt == "json":
            _emit(made)
            return
        if not made:
            console.print("no overdue step to escalate")
        for e in made:
            console.print(f"incident #{e['incident']}: {e['step']} overdue since "
                          f"{_when(e['due'])}, escalated to {e['role'] or 'nobody'} "
                          f"({e['deliveries']} delivery(ies))"
                          + (f"; {_e('; '.join(e['problems']))}" if e["problems"] else ""))
