"""``assay risk``: assess a model version, keep the risk register, rank the backlog.

    assay risk assess MODEL VERSION --from-file assessment.yaml [--questionnaire-answers a.yaml]
    assay risk show MODEL [--version V]
    assay risk history MODEL
    assay risk template
    assay risk questionnaire [--template]
    assay risk requirements TIER [--policy P]
    assay risk register add MODEL --title ... --category ... --likelihood N --impact N
    assay risk register add MODEL --from-certification VERSION
    assay risk register list / show / update
    assay risk mitigate RISK_ID --title ... --success-criteria ... --cost N --days N --due DATE
    assay risk mitigation-update MITIGATION_ID --status done
    assay risk backlog [--format table|json|csv]
    assay risk heatmap [--model M]

Each command that changes something acts as ``--as USER`` (or ``ASSAY_USER``)
and runs one domain call inside one transaction; errors print one line and
exit 2 with nothing written.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assay.errors import InputError

console = Console(highlight=False, soft_wrap=True)

AS_HELP = "Act as this user (default: $ASSAY_USER)."
ASSESSMENT_KEYS = ("model", "version", "policy", "notes", "categories", "questionnaire",
                   "questionnaire_answers")


def _store() -> Any:
    from assay.store import open_store

    return open_store()


def _actor(session: Any, as_user: str | None) -> Any:
    from assay.registry import get_user

    name = (as_user or os.environ.get("ASSAY_USER") or "").strip()
    if not name:
        raise InputError("no acting user: pass --as USER or set ASSAY_USER")
    return get_user(session, name)


def _e(value: Any) -> str:
    return escape(str(value))


def _read_mapping(path: Path, what: str) -> tuple[dict[str, Any], bytes]:
    if not path.is_file():
        raise InputError(f"{what} {path}: no such file")
    import yaml

    raw = path.read_bytes()
    try:
        doc = yaml.safe_load(raw)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML or JSON: {exc}".replace("\n", " ")) from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    return {str(k): v for k, v in doc.items()}, raw


def _parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{option}: expected a date YYYY-MM-DD, got {value!r}") from None


def _check_format(fmt: str, allowed: tuple[str, ...]) -> None:
    if fmt not in allowed:
        raise InputError(f"--format: expected {', '.join(allowed)}, got {fmt!r}")


# ---------------------------------------------------------------- assessment

def _prompt_answers(q: Any) -> dict[str, Any]:
    """Ask each question of the questionnaire on the terminal."""
    answers: dict[str, Any] = {}
    for i, question in enumerate(q.questions, start=1):
        console.print(f"\n[bold]{i}. {_e(question.text)}[/] [dim]({question.section})[/]")
        if question.help:
            console.print(f"   {_e(question.help)}")
        for j, opt in enumerate(question.options, start=1):
            console.print(f"   {j}) {_e(opt.label)}")
        hint = "numbers separated by commas, or none" if question.multiple else "a number"
        while True:
            text = typer.prompt(f"   answer ({hint})").strip()
            picks = [] if (question.multiple and text.lower() == "none") else [
                t.strip() for t in text.split(",") if t.strip()]
            try:
                idx = [int(t) for t in picks]
            except ValueError:
                idx = [0]
            if all(1 <= k <= len(question.options) for k in idx) and (
                    question.multiple or len(idx) == 1):
                break
            console.print("   [red]please choose from the numbers shown[/]")
        values = [question.options[k - 1].value for k in idx]
        answers[question.id] = values if question.multiple else values[0]
    return answers


def _preview(model: str, version: str, doc: dict[str, Any], answers: Any, rp: Any, q: Any,
             source: str, answers_source: str) -> dict[str, Any]:
    """What ``assess`` would record, computed without the store."""
    from assay.risk.questionnaire import score_answers
    from assay.risk.scoring import decide_tier, parse_categories

    scores = parse_categories(doc["categories"], rp.risk, source=source)
    impact = score_answers(q, answers, source=answers_source) if answers is not None else None
    decision = decide_tier(scores, rp.risk, impact.level if impact else None)
    return {
        "id": None, "model": model, "version": version, "tier": decision.tier,
        "score": decision.score, "score_tier": decision.score_tier,
        "aggregate": decision.aggregate, "impact_level": impact.level if impact else None,
        "policy": {"name": rp.name, "version": rp.version, "digest": rp.digest},
        "categories": [c.to_dict() for c in scores],
        "questionnaire": impact.to_dict() if impact else None,
        "decision": decision.to_dict(), "next_review_at": None, "dry_run": True,
    }


def assessment_dict(session: Any, row: Any) -> dict[str, Any]:
    from assay.registry.tables import Model, ModelVersion, User
    from assay.risk.service import utc_iso

    model = session.get(Model, row.model_id)
    mv = session.get(ModelVersion, row.model_version_id)
    user = session.get(User, row.created_by)
    return {
        "id": row.id,
        "model": model.name,
        "version": mv.version,
        "tier": row.tier,
        "score": row.score,
        "score_tier": row.score_tier,
        "aggregate": row.aggregate,
        "impact_level": row.impact_level,
        "policy": {"name": row.policy_name, "version": row.policy_version,
                   "digest": row.policy_digest},
        "categories": row.categories,
        "questionnaire": row.questionnaire,
        "decision": row.decision,
        "next_review_at": utc_iso(model.next_review_at),
        "record_digest": row.record_digest,
        "input_digest": row.input_digest,
        "notes": row.notes,
        "created_by": user.username if user else None,
        "created_at": utc_iso(row.created_at),
    }


def _print_assessment(d: dict[str, Any]) -> None:
    head = f"risk assessment #{d['id']}" if d.get("id") else "risk assessment (not recorded)"
    console.print(f"{head} of {_e(d['model'])}@{_e(d['version'])} "
                  f"under policy {_e(d['policy']['name'])} {_e(d['policy']['version'])}")
    t = Table(show_edge=False)
    t.add_column("category", no_wrap=True)
    for col in ("L", "I", "inherent", "controls", "residual"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("rationale", overflow="fold", ratio=1)
    for c in d["categories"]:
        reduction = f"-{c['control_reduction']:.0%}" if c["control_reduction"] else ""
        t.add_row(c["category"], str(c["likelihood"]), str(c["impact"]), str(c["inherent"]),
                  reduction, f"{c['residual']:g}", _e(c["rationale"]))
    console.print(t)
    q = d.get("questionnaire")
    if q:
        mit = " after the mitigation reduction" if q["mitigation_applied"] else ""
        console.print(f"impact questionnaire {_e(q['questionnaire'])} v{_e(q['version'])}: "
                      f"{q['impact_score']:g} of {q['max_impact']:g} ({q['share']:.0%}){mit}"
                      f" -> level {q['level']}")
    for r in d["decision"]["reasons"]:
        console.print(f"  - {_e(r)}")
    if d.get("next_review_at"):
        console.print(f"tier: [bold]{d['tier']}[/]; next review by {d['next_review_at'][:10]}")
    else:
        console.print(f"tier: [bold]{d['tier']}[/]")


def _print_requirements(tier: str, req: dict[str, Any]) -> None:
    console.print(f"tier {tier} requires:")
    console.print(f"  certification checks ({len(req['checks'])}): "
                  + (", ".join(req["checks"]) or "none"))
    approvers = req.get("signoff_approvers", {})
    for stage, roles in req["signoff_roles"].items():
        n = approvers.get(stage, len(roles))
        extra = f" ({n} distinct people)" if n > len(roles) else ""
        console.print(f"  sign-off of {stage}: {', '.join(roles)}{extra}")
    if req.get("signoff_people", 1) > 1:
        console.print(f"  different people signing one submission: at least "
                      f"{req['signoff_people']} (one role each)")
    console.print(f"  review every {req['review_interval_days']} days")
    if req["monitoring"]:
        console.print("  monitoring: "
                      + ", ".join(f"{k} {v}" for k, v in req["monitoring"].items()))


def register(app: typer.Typer) -> None:
    risk_app = typer.Typer(help="Risk tiering, the risk register and the mitigation backlog.",
                           no_args_is_help=True)
    reg_app = typer.Typer(help="The risk register: add, list, show and update risks.",
                          no_args_is_help=True)
    risk_app.add_typer(reg_app, name="register")
    app.add_typer(risk_app, name="risk")

    @risk_app.command("assess")
    def assess_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        from_file: Path = typer.Option(..., "--from-file", "-f",
                                       help="Assessment YAML/JSON: categories with likelihood, "
                                            "impact, rationale and controls."),
        answers_file: Path | None = typer.Option(None, "--questionnaire-answers",
                                                 help="Impact questionnaire answers (YAML/JSON)."),
        questionnaire: str | None = typer.Option(None, "--questionnaire",
                                                 help="Questionnaire name or file (default: "
                                                      "the policy's, then aia-default)."),
        interactive: bool = typer.Option(False, "--interactive",
                                         help="Ask the questionnaire on the terminal."),
        policy: str | None = typer.Option(None, "--policy",
                                          help="Policy name or file (default: the file's "
                                               "'policy', then 'default')."),
        dry_run: bool = typer.Option(False, "--dry-run",
                                     help="Only compute and show the tier; write nothing."),
        fmt: str = typer.Option("text", "--format", help="text or json."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Assess a model version's risk, set its tier and next review date."""
        from assay.risk.policy import load_risk_policy
        from assay.risk.questionnaire import load_questionnaire
        from assay.risk.service import assess

        _check_format(fmt, ("text", "json"))
        doc, raw = _read_mapping(from_file, "--from-file")
        unknown = [k for k in doc if k not in ASSESSMENT_KEYS]
        if unknown:
            raise InputError(f"{from_file}: unknown key '{unknown[0]}'; expected "
                             + ", ".join(ASSESSMENT_KEYS))
        for key, given in (("model", model), ("version", version)):
            if key in doc and str(doc[key]) != given:
                raise InputError(f"{from_file}: the file is about {key} '{doc[key]}', "
                                 f"not '{given}'")
        if "categories" not in doc:
            raise InputError(f"{from_file}: 'categories' is missing")
        for key in ("policy", "questionnaire", "notes"):
            if key in doc and not isinstance(doc[key], str):
                raise InputError(f"{from_file}: '{key}' must be a text, got "
                                 f"{type(doc[key]).__name__}")
        rp = load_risk_policy(policy or doc.get("policy") or "default")
        q_name = questionnaire or doc.get("questionnaire") or rp.risk.questionnaire
        q = load_questionnaire(q_name)
        answers = doc.get("questionnaire_answers")
        answers_source = f"{from_file}: questionnaire_answers"
        if answers_file is not None:
            if answers is not None:
                raise InputError(f"{from_file}: has 'questionnaire_answers' and "
                                 "--questionnaire-answers was given too; give one")
            answers, _ = _read_mapping(answers_file, "--questionnaire-answers")
            answers_source = str(answers_file)
        elif interactive and answers is None:
            answers = _prompt_answers(q)
            answers_source = "answers"
        if answers is None and rp.risk.require_questionnaire:
            raise InputError(f"policy {rp.name} requires the impact questionnaire: give "
                             "--questionnaire-answers FILE, --interactive, or "
                             f"'questionnaire_answers' in {from_file} "
                             "(assay risk questionnaire --template writes a file to fill in)")
        if dry_run:
            out = _preview(model, version, doc, answers, rp, q, str(from_file), answers_source)
            if fmt == "json":
                typer.echo(json.dumps(out, indent=2, default=str))
            else:
                console.print("[bold]dry run[/]: nothing was written")
                _print_assessment(out)
            return
        store = _store()
        with store.transaction() as s:
            actor = _actor(s, as_user)
            row = assess(s, actor, model, version, categories=doc["categories"],
                         answers=answers, policy=rp, questionnaire=q,
                         notes=str(doc.get("notes") or ""), input_bytes=raw,
                         settings=store.settings, source=str(from_file),
                         answers_source=answers_source)
            out = assessment_dict(s, row)
        if fmt == "json":
            typer.echo(json.dumps(out, indent=2, default=str))
        else:
            _print_assessment(out)
            from assay.risk.policy import tier_requirements

            _print_requirements(out["tier"], tier_requirements(rp, out["tier"]))

    @risk_app.command("requirements")
    def requirements_cmd(
        tier: str = typer.Argument(..., help="high, medium or low."),
        policy: str = typer.Option("default", "--policy", help="Policy name or file."),
        fmt: str = typer.Option("text", "--format", help="text or json."),
    ) -> None:
        """What a tier sets: required checks, sign-offs, review interval, monitoring."""
        from assay.risk.policy import tier_requirements

        _check_format(fmt, ("text", "json"))
        req = tier_requirements(policy, tier)
        if fmt == "json":
            typer.echo(json.dumps(req, indent=2))
            return
        _print_requirements(tier, req)

    @risk_app.command("show")
    def show_cmd(
        model: str = typer.Argument(..., help="Model name."),
        version: str | None = typer.Option(None, "--version", help="Only this version."),
        fmt: str = typer.Option("text", "--format", help="text or json."),
    ) -> None:
        """Show the latest risk assessment of a model."""
        from assay.errors import NotFoundError
        from assay.risk.service import latest_assessment

        _check_format(fmt, ("text", "json"))
        with _store().transaction() as s:
            row = latest_assessment(s, model, version)
            if row is None:
                raise NotFoundError(f"model '{model}' has no risk assessment yet "
                                    "(assay risk assess)")
            out = assessment_dict(s, row)
        if fmt == "json":
            typer.echo(json.dumps(out, indent=2, default=str))
        else:
            _print_assessment(out)

    @risk_app.command("history")
    def history_cmd(
        model: str = typer.Argument(..., help="Model name."),
        fmt: str = typer.Option("table", "--format", help="table, json or csv."),
    ) -> None:
        """Every risk assessment of a model, oldest first."""
        from assay.risk.service import list_assessments

        _check_format(fmt, ("table", "json", "csv"))
        with _store().transaction() as s:
            rows = [assessment_dict(s, a) for a in list_assessments(s, model)]
        for r in rows:
            r["policy_name"] = r["policy"]["name"]
        cols = ("id", "version", "created_at", "created_by", "policy_name", "score",
                "score_tier", "impact_level", "tier", "record_digest")
        _emit_rows(rows, cols, fmt, empty=f"model '{model}' has no risk assessment yet",
                   table=(("id", "id"), ("version", "version"), ("created_at", "assessed"),
                          ("created_by", "by"), ("policy_name", "policy"),
                          ("score", "score"), ("impact_level", "impact level"),
                          ("tier", "tier")))

    @risk_app.command("template")
    def template_cmd() -> None:
        """Print an assessment file to fill in (every category, empty rationales)."""
        from assay.risk.config import CATEGORIES

        lines = [
            "# Risk assessment: for each category give likelihood and impact (1 to 5),",
            "# a written rationale (required) and the controls in place, each with an",
            "# effectiveness (share of the risk it removes, 0 to 1) or a strength",
            "# (strong, moderate, weak, none). See docs/risk.md.",
            "notes: \"\"",
            "categories:",
        ]
        for c in CATEGORIES:
            lines += [f"  {c}:", "    likelihood: 1", "    impact: 1", "    rationale: \"\"",
                      "    controls: []"]
        lines += ["# questionnaire_answers: {}   # or --questionnaire-answers FILE"]
        typer.echo("\n".join(lines))

    @risk_app.command("questionnaire")
    def questionnaire_cmd(
        name: str = typer.Option("aia-default", "--questionnaire",
                                 help="Questionnaire name or file."),
        template: bool = typer.Option(False, "--template",
                                      help="Print an answers file to fill in (YAML)."),
    ) -> None:
        """Show the impact questionnaire, or an answers template to fill in."""
        from assay.risk.questionnaire import load_questionnaire

        q = load_questionnaire(name)
        if template:
            lines = [f"# answers to {q.name} v{q.version}: replace each value by one option"]
            for x in q.questions:
                lines.append(f"# {x.text}")
                lines.append("#   options: " + ", ".join(o.value for o in x.options)
                             + ("  (a list: choose any)" if x.multiple else ""))
                first = x.options[0].value
                lines.append(f"{x.id}: [{first}]" if x.multiple else f"{x.id}: {first}")
            typer.echo("\n".join(lines))
            return
        console.print(f"[bold]{_e(q.title or q.name)}[/] ({_e(q.name)} v{_e(q.version)}, "
                      f"{q.digest[:19]}…)")
        c = q.cutoffs
        console.print(f"levels by share of the maximum impact score {q.max_impact:g}: "
                      f"II >= {c['II']:.0%}, III >= {c['III']:.0%}, IV >= {c['IV']:.0%}; "
                      f"mitigation >= {q.mitigation.threshold:.0%} of {q.max_mitigation:g} "
                      f"lowers the score by {q.mitigation.reduction:.0%}")
        for x in q.questions:
            multi = ", several allowed" if x.multiple else ""
            console.print(f"\n[bold]{x.id}[/] [dim]({x.section}, weight {x.weight:g}{multi})[/]"
                          f"  {_e(x.text)}")
            for o in x.options:
                console.print(f"   {o.value:<26} {o.points:>3g}  {_e(o.label)}")

    # ------------------------------------------------------------ register

    @reg_app.command("add")
    def add_cmd(
        model: str = typer.Argument(..., help="Model name."),
        title: str | None = typer.Option(None, "--title"),
        category: str | None = typer.Option(None, "--category",
                                            help="data_quality, model_performance, "
                                                 "fairness_bias, security, privacy, "
                                                 "operational_reliability, regulatory_exposure."),
        likelihood: int | None = typer.Option(None, "--likelihood", help="1 to 5."),
        impact: int | None = typer.Option(None, "--impact", help="1 to 5."),
        owner: str | None = typer.Option(None, "--owner", help="Owner (default: you)."),
        description: str = typer.Option("", "--description"),
        severity: str | None = typer.Option(None, "--severity",
                                            help="low, medium, high or critical (default: "
                                                 "from likelihood x impact)."),
        version: str | None = typer.Option(None, "--version", help="Model version concerned."),
        kind: str = typer.Option("risk", "--kind", help="risk or finding."),
        source: str | None = typer.Option(None, "--source", help="Where it came from."),
        from_certification: str | None = typer.Option(
            None, "--from-certification", metavar="VERSION",
            help="Open a finding per failed blocking check of this version's latest "
                 "certification."),
        fmt: str = typer.Option("text", "--format", help="text or json."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Add a risk or finding to the register."""
        from assay.risk.service import add_risk, register_from_certification, risk_dict

        _check_format(fmt, ("text", "json"))
        store = _store()
        if from_certification is not None:
            given = [n for n, v in (("--title", title), ("--category", category),
                                    ("--likelihood", likelihood), ("--impact", impact))
                     if v is not None]
            if given:
                raise InputError("--from-certification takes its findings from the failed "
                                 "checks: do not also give " + ", ".join(given))
            with store.transaction() as s:
                actor = _actor(s, as_user)
                rows = register_from_certification(s, actor, model, from_certification,
                                                   settings=store.settings, owner=owner)
                out = [risk_dict(s, r) for r in rows]
            if fmt == "json":
                typer.echo(json.dumps(out, indent=2, default=str))
            elif not out:
                console.print("no new findings: the latest certification has no failed "
                              "blocking check without an open finding")
            else:
                for d in out:
                    console.print(f"risk #{d['id']} opened: {_e(d['title'])} "
                                  f"({d['category']}, {d['severity']}, owner {_e(d['owner'])})")
            return
        missing = [n for n, v in (("--title", title), ("--category", category),
                                  ("--likelihood", likelihood), ("--impact", impact))
                   if v is None]
        if missing:
            raise InputError("missing " + ", ".join(missing)
                             + " (or use --from-certification VERSION)")
        with store.transaction() as s:
            actor = _actor(s, as_user)
            row = add_risk(s, actor, model, title=title or "", category=category or "",
                           likelihood=likelihood, impact=impact,  # type: ignore[arg-type]
                           owner=owner, description=description, severity=severity,
                           version=version, kind=kind, source=source)
            d = risk_dict(s, row)
        if fmt == "json":
            typer.echo(json.dumps(d, indent=2, default=str))
        else:
            console.print(f"risk #{d['id']} added: {_e(d['title'])} ({d['category']}, "
                          f"score {d['score']}, {d['severity']}, owner {_e(d['owner'])})")

    @reg_app.command("list")
    def list_cmd(
        model: str | None = typer.Option(None, "--model"),
        status: list[str] | None = typer.Option(None, "--status",
                                                help="open, mitigating, accepted or closed "
                                                     "(repeatable)."),
        category: str | None = typer.Option(None, "--category"),
        fmt: str = typer.Option("table", "--format", help="table, json or csv."),
    ) -> None:
        """List the risk register."""
        from assay.risk.service import list_risks, risk_dict

        _check_format(fmt, ("table", "json", "csv"))
        with _store().transaction() as s:
            rows = [risk_dict(s, r) for r in list_risks(
                s, model_name=model, status=status or None, category=category)]
        cols = ("id", "model", "version", "kind", "title", "category", "severity",
                "likelihood", "impact", "score", "owner", "status", "source")
        _emit_rows(rows, cols, fmt, empty="the risk register is empty", table=(
            ("id", "id"), ("model", "model"), ("version", "version"), ("title", "title"),
            ("category", "category"), ("severity", "severity"), ("likelihood", "L"),
            ("impact", "I"), ("owner", "owner"), ("status", "status")))

    @reg_app.command("show")
    def show_risk_cmd(
        risk_id: int = typer.Argument(..., help="Risk id."),
        fmt: str = typer.Option("text", "--format", help="text or json."),
    ) -> None:
        """Show one risk with its mitigations."""
        from assay.risk.service import get_risk, risk_dict

        _check_format(fmt, ("text", "json"))
        with _store().transaction() as s:
            d = risk_dict(s, get_risk(s, risk_id))
        if fmt == "json":
            typer.echo(json.dumps(d, indent=2, default=str))
            return
        console.print(f"risk #{d['id']} ({d['kind']}, {d['status']}, version {d['row_version']})"
                      f": [bold]{_e(d['title'])}[/]")
        ver = f"@{d['version']}" if d["version"] else ""
        console.print(f"  model {_e(d['model'])}{_e(ver)}, {d['category']}, likelihood "
                      f"{d['likelihood']} x impact {d['impact']} = {d['score']}, "
                      f"{d['severity']}, owner {_e(d['owner'])}")
        if d["description"]:
            console.print(f"  {_e(d['description'])}")
        if d["source"]:
            console.print(f"  source: {_e(d['source'])}")
        if d["resolution"]:
            console.print(f"  resolution: {_e(d['resolution'])}")
        for m in d["mitigations"]:
            console.print(f"  mitigation #{m['id']} ({m['status']}): {_e(m['title'])}; owner "
                          f"{_e(m['owner'])}, due {m['due_date'] or '-'}, cost "
                          f"{m['estimated_cost']:g}, {m['estimated_days']:g} days; success: "
                          f"{_e(m['success_criteria'])}")

    @reg_app.command("update")
    def update_cmd(
        risk_id: int = typer.Argument(..., help="Risk id."),
        status: str | None = typer.Option(None, "--status",
                                          help="open, mitigating, accepted or closed."),
        likelihood: int | None = typer.Option(None, "--likelihood"),
        impact: int | None = typer.Option(None, "--impact"),
        severity: str | None = typer.Option(None, "--severity"),
        owner: str | None = typer.Option(None, "--owner"),
        title: str | None = typer.Option(None, "--title"),
        description: str | None = typer.Option(None, "--description"),
        resolution: str | None = typer.Option(None, "--resolution",
                                              help="Why it is accepted or how it was resolved."),
        expect_version: int | None = typer.Option(None, "--expect-version",
                                                  help="Refuse if the risk changed since you "
                                                       "saw this row version."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Update a risk: status, scores, owner, resolution."""
        from assay.risk.service import update_risk

        with _store().transaction() as s:
            actor = _actor(s, as_user)
            r = update_risk(s, actor, risk_id, expected_version=expect_version, status=status,
                            likelihood=likelihood, impact=impact, severity=severity,
                            owner=owner, title=title, description=description,
                            resolution=resolution)
            msg = (f"risk #{r.id} updated: {r.status}, score {r.score}, {r.severity} "
                   f"(version {r.row_version})")
        console.print(msg)

    @risk_app.command("mitigate")
    def mitigate_cmd(
        risk_id: int = typer.Argument(..., help="Risk id."),
        title: str = typer.Option(..., "--title", help="What will be done."),
        success_criteria: str = typer.Option(..., "--success-criteria",
                                             help="How you will know it worked."),
        owner: str | None = typer.Option(None, "--owner", help="Owner (default: you)."),
        due: str | None = typer.Option(None, "--due", help="Due date YYYY-MM-DD."),
        cost: float = typer.Option(0.0, "--cost", help="Estimated cost."),
        days: float = typer.Option(0.0, "--days", help="Estimated duration in days."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Plan a mitigation of a risk."""
        from assay.risk.service import add_mitigation

        due_date = _parse_date(due, "--due")
        with _store().transaction() as s:
            actor = _actor(s, as_user)
            m = add_mitigation(s, actor, risk_id, title=title, success_criteria=success_criteria,
                               owner=owner, due_date=due_date, estimated_cost=cost,
                               estimated_days=days)
            msg = f"mitigation #{m.id} of risk #{risk_id} planned"
        console.print(msg)

    @risk_app.command("mitigation-update")
    def mitigation_update_cmd(
        mitigation_id: int = typer.Argument(..., help="Mitigation id."),
        status: str | None = typer.Option(None, "--status",
                                          help="planned, in_progress, done or cancelled."),
        due: str | None = typer.Option(None, "--due", help="New due date YYYY-MM-DD."),
        cost: float | None = typer.Option(None, "--cost"),
        days: float | None = typer.Option(None, "--days"),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
    ) -> None:
        """Update a mitigation's status, due date or estimates."""
        from assay.risk.service import update_mitigation

        due_date = _parse_date(due, "--due")
        with _store().transaction() as s:
            actor = _actor(s, as_user)
            m = update_mitigation(s, actor, mitigation_id, status=status, due_date=due_date,
                                  estimated_cost=cost, estimated_days=days)
            msg = f"mitigation #{m.id} updated: {m.status}"
        console.print(msg)

    @risk_app.command("heatmap")
    def heatmap_cmd(
        model: str | None = typer.Option(None, "--model"),
        fmt: str = typer.Option("text", "--format", help="text or json."),
    ) -> None:
        """Open risks counted on the likelihood x impact grid."""
        from assay.risk.service import heatmap, severity_for

        _check_format(fmt, ("text", "json"))
        with _store().transaction() as s:
            grid = heatmap(s, model_name=model)
        if fmt == "json":
            typer.echo(json.dumps([{"likelihood": lik, "impact": imp, "risks": ids}
                                   for lik, row in enumerate(grid, start=1)
                                   for imp, ids in enumerate(row, start=1) if ids], indent=2))
            return
        t = Table(title="open risks: likelihood (rows) x impact (columns)", show_edge=False)
        t.add_column("L \\ I", justify="right")
        for imp in range(1, 6):
            t.add_column(str(imp), justify="right")
        for lik in range(5, 0, -1):
            cells = []
            for imp in range(1, 6):
                n = len(grid[lik - 1][imp - 1])
                style = {"critical": "bold red", "high": "red",
                         "medium": "yellow"}.get(severity_for(lik * imp), "green")
                cells.append(f"[{style}]{n}[/]" if n else "[dim]·[/]")
            t.add_row(str(lik), *cells)
        console.print(t)

    @risk_app.command("backlog")
    def backlog_cmd(
        model: str | None = typer.Option(None, "--model"),
        policy: str = typer.Option("default", "--policy",
                                   help="Policy whose risk.backlog weights apply."),
        fmt: str = typer.Option("table", "--format", help="table, json or csv."),
    ) -> None:
        """Open risks ranked by priority = L x I / (1 + cost and time discount)."""
        from assay.risk.service import backlog

        _check_format(fmt, ("table", "json", "csv"))
        with _store().transaction() as s:
            items = [i.to_dict() for i in backlog(s, policy=policy, model_name=model)]
        cols = ("rank", "risk_id", "model", "title", "category", "severity", "score", "cost",
                "days", "priority", "next_due", "overdue", "owner", "status")
        _emit_rows(items, cols, fmt, empty="no open risks", table=(
            ("rank", "#"), ("risk_id", "risk"), ("model", "model"), ("title", "title"),
            ("score", "L×I"), ("cost", "cost"), ("days", "days"), ("priority", "priority"),
            ("next_due", "next due"), ("overdue", "overdue"), ("owner", "owner"),
            ("status", "status")))


def _emit_rows(rows: list[dict[str, Any]], cols: tuple[str, ...], fmt: str, *,
               empty: str, table: tuple[tuple[str, str], ...] = ()) -> None:
    """JSON and CSV carry every column of ``cols``; the table shows ``table``
    (key, header) pairs, with the title folding and everything else on one line."""
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(cols), extrasaction="ignore",
                           lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
        typer.echo(buf.getvalue(), nl=False)
        return
    if not rows:
        console.print(empty)
        return
    shown = table or tuple((c, c) for c in cols)
    t = Table(show_edge=False)
    for key, header in shown:
        if key == "title":
            t.add_column(header, overflow="fold", ratio=1, min_width=16)
        else:
            t.add_column(header, no_wrap=True,
                         justify="right" if key in _NUMERIC else "left")
    for r in rows:
        t.add_row(*[_e(_cell(key, r.get(key))) for key, _ in shown])
    console.print(t)


_NUMERIC = {"rank", "id", "risk_id", "score", "cost", "days", "priority", "likelihood",
            "impact"}
_DATES = {"created_at"}


def _cell(key: str, value: Any) -> str:
    if value is None or (key == "overdue" and not value):
        return ""
    if key == "priority":
        return f"{value:.2f}"
    if key in _DATES and isinstance(value, str):
        return value[:16].replace("T", " ")
    if key == "cost":
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
