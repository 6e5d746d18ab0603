"""Releases: which approved version serves where, and how it got there.

A version is released to an environment (``production`` unless the policy
tier lists others, e.g. ``eu-prod``) in one of three modes:

* ``shadow``: it scores live traffic, its outputs are not used;
* ``canary``: it serves a share ``0 < s < 1`` of the traffic next to the
  incumbent;
* ``full``: it serves all traffic (one version per environment).

Every step is an event (:class:`assay.operate.tables.ReleaseEvent`) and each
consults the deployment gate (:func:`assay.workflow.gate`): a version whose
approval is not (or no longer) valid is refused, naming the gate's reasons,
and the event keeps the decision it rested on with its digest. The steps:

* :func:`record`: a version starts serving (shadow, canary next to a full
  version, or full where nothing serves full yet);
* :func:`promote`: shadow -> canary -> full, or a larger canary share; a
  promotion to full replaces the incumbent and applies the tier's release
  rule to a champion–challenger comparison of the two
  (:mod:`assay.operate.compare`);
* :func:`rollback`: back to a version that served full in the environment
  before, whose approval is still valid.

Who serves where is replayed from the events (:func:`status`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from assay.errors import ConflictError, InputError, PermissionDenied, PolicyError
from assay.operate.tables import MODES, ReleaseEvent
from assay.policy.release import DEFAULT_PLAN, ENVIRONMENT, ReleasePlan
from assay.registry import get_model, get_version, require_role
from assay.registry.roles import ADMIN, BUSINESS_OWNER, DATA_SCIENTIST, RISK_OFFICER
from assay.registry.tables import Model, ModelVersion, User, _iso
from assay.store.audit import append_event
from assay.store.db import as_utc, utcnow

#: May start a version in shadow or canary mode.
CANARY_RELEASERS: tuple[str, ...] = (DATA_SCIENTIST, BUSINESS_OWNER, RISK_OFFICER, ADMIN)
#: May take a version to full traffic and roll back.
FULL_RELEASERS: tuple[str, ...] = (BUSINESS_OWNER, RISK_OFFICER, ADMIN)

DEFAULT_ENVIRONMENT = "production"


@dataclass
class Serving:
    """What serves in one environment."""

    environment: str
    full: dict[str, Any] | None = None
    canary: dict[str, Any] | None = None
    shadow: list[dict[str, Any]] = field(default_factory=list)
    #: versions that served full here before, newest first (rollback targets)
    previous: list[str] = field(default_factory=list)
    last_at: datetime | None = None

    def mode_of(self, version: str) -> str | None:
        if self.full and self.full["version"] == version:
            return "full"
        if self.canary and self.canary["version"] == version:
            return "canary"
        if any(s["version"] == version for s in self.shadow):
            return "shadow"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "full": self.full, "canary": self.canary,
                "shadow": list(self.shadow), "previous": list(self.previous),
                "last_event_at": _iso(self.last_at)}


def _slot(ev: ReleaseEvent, version: str, since: datetime) -> dict[str, Any]:
    return {"version": version, "share": ev.share, "since": _iso(since), "event": ev.id}


def _replay(events: list[tuple[ReleaseEvent, str]], environment: str) -> Serving:
    s = Serving(environment)
    started: dict[str, datetime] = {}
    for ev, version in events:
        at = as_utc(ev.at)
        s.last_at = at
        if ev.action == "rollback" or (ev.mode == "full" and s.full is not None
                                       and s.full["version"] != version):
            if s.full is not None:
                s.previous = [v for v in s.previous if v != s.full["version"]]
                s.previous.insert(0, s.full["version"])
                started.pop(s.full["version"], None)
            s.full = None
        if ev.action == "rollback" and s.canary is not None:
            started.pop(s.canary["version"], None)
            s.canary = None
        # the version leaves the mode it was in
        if s.canary and s.canary["version"] == version:
            s.canary = None
        s.shadow = [x for x in s.shadow if x["version"] != version]
        since = started.setdefault(version, at)
        slot = _slot(ev, version, since)
        if ev.mode == "full":
            s.full = slot
            s.previous = [v for v in s.previous if v != version]
        elif ev.mode == "canary":
            s.canary = slot
        else:
            s.shadow.append(slot)
    return s


def _events(session: Session, model: Model, environment: str | None = None
            ) -> list[tuple[ReleaseEvent, str]]:
    stmt = (select(ReleaseEvent, ModelVersion.version)
            .join(ModelVersion, ModelVersion.id == ReleaseEvent.model_version_id)
            .where(ReleaseEvent.model_id == model.id).order_by(ReleaseEvent.id))
    if environment is not None:
        stmt = stmt.where(ReleaseEvent.environment == environment)
    return [(ev, v) for ev, v in session.execute(stmt)]


def serving(session: Session, model_name: str, environment: str) -> Serving:
    """Who serves in one environment of a model now."""
    model = get_model(session, model_name)
    return _replay(_events(session, model, environment), environment)


def status(session: Session, model_name: str) -> dict[str, Any]:
    """Per environment: the full version, the canary with its share, the shadow versions,
    and the release history (newest first)."""
    model = get_model(session, model_name)
    events = _events(session, model)
    envs: dict[str, list[tuple[ReleaseEvent, str]]] = {}
    for ev, v in events:
        envs.setdefault(ev.environment, []).append((ev, v))
    users = {u.id: u.username for u in session.scalars(select(User).where(
        User.id.in_({ev.actor_id for ev, _ in events})))} if events else {}
    return {"model": model.name,
            "environments": [_replay(evs, env).to_dict() for env, evs in sorted(envs.items())],
            "history": [event_to_dict(ev, v, users.get(ev.actor_id)) for ev, v in
                        reversed(events)]}


def event_to_dict(ev: ReleaseEvent, version: str, actor: str | None = None) -> dict[str, Any]:
    return {"id": ev.id, "environment": ev.environment, "action": ev.action,
            "version": version, "mode": ev.mode, "share": ev.share,
            "previous_mode": ev.previous_mode, "at": _iso(ev.at),
            "recorded_at": _iso(ev.recorded_at), "actor": actor, "note": ev.note,
            "gate_digest": ev.gate_digest, "gate": ev.gate, "rule": ev.rule}


# --------------------------------------------------------------------------- checks


def _lock_model(session: Session, name: str) -> Model:
    """The model row, locked for the rest of the transaction (one release step at a time)."""
    model = get_model(session, name)  # the usual "unknown model" error
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Model.id).where(Model.id == model.id).with_for_update())
    else:  # take SQLite's write lock before reading the environment's state
        session.execute(update(Model).where(Model.id == model.id).values(name=Model.name))
    return model


def _share(mode: str, share: float | None) -> float | None:
    if mode == "canary":
        if share is None:
            raise InputError("{share}: a canary serves a share of the traffic: give it, "
                             "between 0 and 1 (e.g. 0.1)", fields=["share"])
        if isinstance(share, bool) or not isinstance(share, int | float) or \
                not 0 < float(share) < 1:
            raise InputError(f"{{share}}: expected a number between 0 and 1 (exclusive), got "
                             f"{share!r}", fields=["share"])
        return float(share)
    if share is not None:
        raise InputError(f"{{share}}: only a canary has a traffic share; a {mode} release "
                         "takes none", fields=["share"])
    return None


def _mode(mode: str, what: str = "mode") -> str:
    if mode not in MODES:
        from assay.errors import did_you_mean

        raise InputError(f"{{{what}}}: expected one of " + ", ".join(f"'{m}'" for m in MODES)
                         + f", got {mode!r}" + did_you_mean(mode, MODES), fields=[what])
    return mode


def _when(at: datetime | str | None, now: datetime, serving_: Serving) -> datetime:
    if at is None:
        when = now
    else:
        if isinstance(at, str):
            try:
                at = datetime.fromisoformat(at.strip().replace("Z", "+00:00"))
            except ValueError:
                raise InputError(f"{{at}}: expected a date and time (YYYY-MM-DD or "
                                 f"YYYY-MM-DDTHH:MM, UTC), got {at!r}", fields=["at"]) from None
        when = as_utc(at)
    if when > now:
        raise InputError(f"{{at}} {when:%Y-%m-%d %H:%M} UTC is in the future (now "
                         f"{now:%Y-%m-%d %H:%M} UTC): record a release when it has happened",
                         fields=["at"])
    if serving_.last_at is not None and when < serving_.last_at:
        last = f"{serving_.last_at:%Y-%m-%d %H:%M}"
        raise ConflictError(f"{{at}} {when:%Y-%m-%d %H:%M} UTC is before the last release "
                            f"event in '{serving_.environment}' ({last} UTC): release events "
                            "are recorded in the order they happened", fields=["at"])
    return when


def _plan(session: Session, mv: ModelVersion) -> tuple[ReleasePlan, str | None]:
    """The release plan of the policy and tier the version was approved under."""
    from assay.policy import load_policy
    from assay.workflow._common import latest_submission

    sub = latest_submission(session, mv.id)
    if sub is None:
        return DEFAULT_PLAN, None
    try:
        pol = load_policy(sub.policy_source)
    except PolicyError:
        return DEFAULT_PLAN, None  # the gate names the unreadable policy
    try:
        return pol.tier(sub.tier).release, pol.name
    except PolicyError:
        return DEFAULT_PLAN, pol.name


def _environment(environment: str, plan: ReleasePlan, policy: str | None) -> str:
    env = (environment or "").strip()
    if not ENVIRONMENT.match(env):
        raise InputError(f"{{environment}}: expected an environment name (lower-case letters, "
                         f"digits, '-' or '_'), got {environment!r}", fields=["environment"])
    if env not in plan.environments:
        from assay.errors import did_you_mean

        where = f"policy '{policy}'" if policy else "the default release plan"
        raise InputError(f"{{environment}}: '{env}' is not an environment of {where} "
                         "(expected " + " or ".join(f"'{e}'" for e in plan.environments)
                         + "; a tier's 'release: environments:' lists them)"
                         + did_you_mean(env, plan.environments), fields=["environment"])
    return env


def _gate(session: Session, model: str, version: str, now: datetime, what: str
          ) -> tuple[dict[str, Any], str]:
    from assay.workflow import gate

    d = gate(session, model, version, now=now).to_dict()
    if not d["allowed"]:
        raise ConflictError(f"{what} refused: the deployment gate is closed for "
                            f"{model}@{version}: " + "; ".join(d["reasons"]))
    raw = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return d, "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def _independent(actor: User, mv: ModelVersion, plan: ReleasePlan, what: str) -> None:
    if plan.independent_full and mv.created_by == actor.id:
        raise PermissionDenied(f"user '{actor.username}' registered {mv.model.name}@"
                               f"{mv.version} and may not {what} (separation of duties: the "
                               "release plan asks that someone other than the developer "
                               "takes a version to full traffic)")


def _write(session: Session, actor: User, model: Model, mv: ModelVersion, environment: str,
           action: str, mode: str, share: float | None, previous_mode: str | None,
           replaced: ModelVersion | None, at: datetime, note: str, gate_d: dict[str, Any],
           digest: str, rule: dict[str, Any] | None) -> ReleaseEvent:
    ev = ReleaseEvent(model_id=model.id, model_version_id=mv.id, environment=environment,
                      action=action, mode=mode, share=share, previous_mode=previous_mode,
                      replaced_version_id=replaced.id if replaced is not None else None,
                      at=at, recorded_at=utcnow(), actor_id=actor.id, note=note,
                      gate_digest=digest, gate=json.loads(json.dumps(gate_d, default=str)),
                      rule=rule)
    session.add(ev)
    session.flush()
    payload = {"event": ev.id, "environment": environment, "mode": mode, "share": share,
               "previous_mode": previous_mode, "at": _iso(at), "note": note,
               "replaced": replaced.version if replaced is not None else None}
    if rule is not None:
        payload["rule"] = {k: v for k, v in rule.items() if k != "comparison"}
    append_event(session, actor=actor, action=f"release.{action}",
                 subject_type="model_version", subject_id=f"{model.name}@{mv.version}",
                 payload=payload, evidence={"gate": digest})
    if mode == "full" and model.deployment_status != "deployed":
        # the inventory follows: a version serving full traffic means the model is deployed
        from assay.workflow import update_model

        update_model(session, actor, model.name, deployment_status="deployed")
    return ev


def _note(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) > 5000:
        raise InputError("{note}: at most 5000 characters", fields=["note"])
    return note


# --------------------------------------------------------------------------- steps


def record(session: Session, actor: User, model_name: str, version: str, *,
           environment: str = DEFAULT_ENVIRONMENT, mode: str, share: float | None = None,
           at: datetime | str | None = None, note: str | None = None,
           now: datetime | None = None) -> dict[str, Any]:
    """Record that a version started serving in ``environment`` as shadow, canary or full.

    A canary needs a version serving full in the environment (the incumbent);
    full is recorded only where nothing serves full yet (otherwise promote).
    A version already serving there is promoted, not recorded again.
    """
    mode = _mode(mode)
    share = _share(mode, share)
    require_role(actor, *(FULL_RELEASERS if mode == "full" else CANARY_RELEASERS),
                 action=f"record a {mode} release")
    model = _lock_model(session, model_name)
    now = as_utc(now) if now is not None else utcnow()  # read once the model is locked
    mv = get_version(session, model_name, version)
    plan, policy = _plan(session, mv)
    env = _environment(environment, plan, policy)
    cur = serving(session, model_name, env)
    when = _when(at, now, cur)
    note = _note(note)
    current = cur.mode_of(version)
    if current is not None:
        raise ConflictError(f"{model_name}@{version} already serves as {current} in '{env}': "
                            "use `release promote` to change its mode")
    if mode == "canary":
        if cur.full is None:
            raise ConflictError(f"no version serves full in '{env}': a canary runs next to the "
                                "incumbent; record the first release with --mode full")
        if cur.canary is not None:
            raise ConflictError(f"{model_name}@{cur.canary['version']} is already the canary "
                                f"in '{env}' (share {cur.canary['share']:g}): promote or roll "
                                "it back first")
    if mode == "full":
        if cur.full is not None:
            raise ConflictError(f"{model_name}@{cur.full['version']} serves full in '{env}': "
                                "replace it by promoting a shadow or canary version (`release "
                                "promote`), which applies the release rule")
        _independent(actor, mv, plan, "release it to full traffic")
    gate_d, digest = _gate(session, model_name, version, now, f"{mode} release")
    ev = _write(session, actor, model, mv, env, "record", mode, share, None, None, when, note,
                gate_d, digest, None)
    return event_to_dict(ev, version, actor.username)


def promote(session: Session, actor: User, model_name: str, version: str, *,
            environment: str = DEFAULT_ENVIRONMENT, to: str = "full",
            share: float | None = None, at: datetime | str | None = None,
            note: str | None = None, since: datetime | str | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    """Promote a version: shadow -> canary (with a share), canary -> a larger share, or
    shadow/canary -> full. To full, the incumbent is replaced and the release rule is
    applied to a comparison of the two over the period since the version started
    serving (or ``since``)."""
    to = _mode(to, "to")
    if to == "shadow":
        raise InputError("{to}: a promotion goes to canary or full, not shadow", fields=["to"])
    share = _share(to, share)
    require_role(actor, *(FULL_RELEASERS if to == "full" else CANARY_RELEASERS),
                 action=f"promote a version to {to}")
    model = _lock_model(session, model_name)
    now = as_utc(now) if now is not None else utcnow()  # read once the model is locked
    mv = get_version(session, model_name, version)
    plan, policy = _plan(session, mv)
    env = _environment(environment, plan, policy)
    cur = serving(session, model_name, env)
    when = _when(at, now, cur)
    note = _note(note)
    current = cur.mode_of(version)
    if current is None:
        raise ConflictError(f"{model_name}@{version} does not serve in '{env}': record it "
                            "first (`release record --mode shadow` or `--mode canary`)")
    if current == "full":
        raise ConflictError(f"{model_name}@{version} already serves full in '{env}'")
    if to == "canary":
        if current == "canary" and share is not None and share <= cur.canary["share"]:
            raise ConflictError(f"{model_name}@{version} is the canary at share "
                                f"{cur.canary['share']:g} in '{env}': a promotion increases "
                                f"the share (got {share:g}); to stop it, roll back")
        if current == "shadow" and cur.canary is not None:
            raise ConflictError(f"{model_name}@{cur.canary['version']} is already the canary "
                                f"in '{env}': promote or roll it back first")
        if cur.full is None:
            raise ConflictError(f"no version serves full in '{env}': a canary runs next to the "
                                "incumbent")
    rule = None
    replaced = None
    if to == "full":
        _independent(actor, mv, plan, "promote it to full traffic")
        if cur.full is not None:
            replaced = get_version(session, model_name, cur.full["version"])
            start = since if since is not None else next(
                s["since"] for s in ([cur.canary] if cur.canary else []) + cur.shadow
                if s["version"] == version)
            rule = _release_rule(session, model_name, cur.full["version"], version, plan,
                                 start, now)
            if not rule["allowed"]:
                raise ConflictError(f"promotion of {model_name}@{version} to full in '{env}' "
                                    "refused by the release rule of policy "
                                    f"'{policy}': " + "; ".join(rule["reasons"]),
                                    details={"rule": rule})
    gate_d, digest = _gate(session, model_name, version, now, f"promotion to {to}")
    ev = _write(session, actor, model, mv, env, "promote", to, share, current, replaced, when,
                note, gate_d, digest, rule)
    return event_to_dict(ev, version, actor.username)


def _release_rule(session: Session, model: str, champion: str, challenger: str,
                  plan: ReleasePlan, start: Any, now: datetime) -> dict[str, Any]:
    """The release rule's verdict on challenger against champion (a dict for the record)."""
    from assay.operate.compare import compare, judge_release

    if not plan.promote_if:
        return {"allowed": True, "test": plan.test, "results": [], "reasons": [],
                "note": "the tier's release plan has no promote_if rule"}
    since = as_utc(datetime.fromisoformat(start)) if isinstance(start, str) else start
    try:
        comparison = compare(session, model, champion, challenger, since=since,
                             until=now.date(), today=now.date())
    except InputError as exc:
        if plan.require_comparison:
            return {"allowed": False, "test": plan.test, "results": [],
                    "reasons": [f"no comparison with {model}@{champion} is available ({exc}); "
                                "the release plan requires one (require_comparison)"]}
        return {"allowed": True, "test": plan.test, "results": [], "reasons": [],
                "note": f"no comparison available, the rule was not applied: {exc}"}
    return judge_release(comparison, plan).to_dict()


def rollback(session: Session, actor: User, model_name: str, *,
             environment: str = DEFAULT_ENVIRONMENT, to: str, at: datetime | str | None = None,
             note: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Serve ``to`` at full again in ``environment``: a version that served full there
    before and whose approval is still valid (else refused with the gate's reasons). The
    current full version and any canary stop serving; shadow versions keep running."""
    require_role(actor, *FULL_RELEASERS, action="roll back a release")
    model = _lock_model(session, model_name)
    now = as_utc(now) if now is not None else utcnow()  # read once the model is locked
    mv = get_version(session, model_name, to)
    plan, policy = _plan(session, mv)
    env = _environment(environment, plan, policy)
    cur = serving(session, model_name, env)
    when = _when(at, now, cur)
    note = _note(note)
    if cur.full is not None and cur.full["version"] == to:
        raise ConflictError(f"{model_name}@{to} already serves full in '{env}': nothing to roll "
                            "back to")
    if to not in cur.previous:
        earlier = ", ".join(cur.previous) or "none"
        raise ConflictError(f"{model_name}@{to} never served full in '{env}', so it is not a "
                            f"rollback target (versions that did: {earlier}); release it with "
                            "`release record` or `release promote`")
    gate_d, digest = _gate(session, model_name, to, now, "rollback")
    replaced = get_version(session, model_name, cur.full["version"]) if cur.full else None
    ev = _write(session, actor, model, mv, env, "rollback", "full", None, cur.mode_of(to),
                replaced, when, note, gate_d, digest, None)
    return event_to_dict(ev, to, actor.username)


def serving_summary(session: Session, model_name: str) -> list[dict[str, Any]]:
    """For the model page: per environment, who serves full, canary (share) and shadow."""
    return status(session, model_name)["environments"]


__all__ = ["CANARY_RELEASERS", "DEFAULT_ENVIRONMENT", "FULL_RELEASERS", "Serving",
           "event_to_dict", "promote", "record", "rollback", "serving", "serving_summary",
           "status"]
