"""The post-mortem of an incident: what happened when, why, what helped, what will change.

Written as YAML (``assay incident postmortem ID --file pm.yaml``) or sent as
JSON; validated here, once, with the file and line of each problem::

    timeline:
      - at: 2026-03-05T09:30:00+01:00
        what: Drift alert on income raised by monitoring
    root_cause: The upstream bureau changed the unit of income to thousands
    contributing_factors: [No schema check on the bureau feed]
    went_well: [The alert fired within a day]
    actions:
      - action: Add a unit check to the bureau feed
        owner: victor
        due: 2026-04-01

``root_cause`` is required; a timeline entry needs a time with its zone and
what happened; an action needs its text, an owner who is a user of the store
and a due date.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import AssayError, InputError, did_you_mean
from assay.policy._yaml import decode_text, format_path, load_yaml_with_lines, position_of
from assay.registry.tables import User

FIELDS = ("summary", "timeline", "root_cause", "contributing_factors", "went_well", "actions")
TIMELINE_FIELDS = ("at", "what")
ACTION_FIELDS = ("action", "owner", "due")
#: Longest text of one field.
MAX_TEXT = 20_000


def parse_postmortem_yaml(text: str | bytes, *, source: str = "postmortem.yaml"
                          ) -> tuple[Any, Callable[..., str]]:
    """``(document, where)`` of a post-mortem file; ``where(*path)`` is ``file:LINE``."""
    try:
        data, positions = load_yaml_with_lines(decode_text(text, source), source)
    except AssayError as exc:  # undecodable, or a syntax error: it names the line already
        raise InputError(str(exc)) from None

    def where(*path: str | int) -> str:
        pos = position_of(tuple(path), positions)
        return f"{source}:{pos[0]}" if pos else source

    return data, where


def validate_postmortem(session: Session, doc: Any, *, source: str = "postmortem",
                        where: Callable[..., str] | None = None,
                        now: datetime | None = None) -> dict[str, Any]:
    """The post-mortem ``doc`` checked and normalised (times in UTC ISO, dates ISO).

    Every problem is one :class:`InputError`: ``pm.yaml:7: actions[0].owner: unknown
    user 'bob'``."""
    at = where or (lambda *path: source)

    def fail(path: tuple[str | int, ...], msg: str) -> InputError:
        return InputError(f"{at(*path)}: {format_path(path)}: {msg}")

    if not isinstance(doc, Mapping):
        got = "an empty document" if doc is None else f"a {type(doc).__name__}"
        raise InputError(f"{at()}: expected a mapping with 'root_cause', 'timeline', "
                         f"'contributing_factors', 'went_well' and 'actions', got {got}")
    for key in doc:
        if key not in FIELDS:
            raise fail((str(key),), "unknown field" + did_you_mean(str(key), FIELDS)
                       + " (expected " + ", ".join(FIELDS) + ")")

    def text(path: tuple[str | int, ...], value: Any, *, required: bool) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise fail(path, "required: say it in a sentence or more")
            return ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise fail(path, f"expected text, got {type(value).__name__}")
        value = str(value).strip()
        if len(value) > MAX_TEXT:
            raise fail(path, f"longer than {MAX_TEXT} characters")
        return value

    def texts(name: str) -> list[str]:
        value = doc.get(name)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise fail((name,), f"expected a list of sentences, got {type(value).__name__}")
        return [text((name, i), v, required=True) for i, v in enumerate(value)]

    def entries(name: str) -> list[tuple[tuple[str | int, ...], Mapping]]:
        value = doc.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise fail((name,), f"expected a list, got {type(value).__name__}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise fail((name, i), f"expected a mapping, got {type(item).__name__}")
            out.append(((name, i), item))
        return out

    def keys(path: tuple[str | int, ...], item: Mapping, allowed: tuple[str, ...]) -> None:
        for key in item:
            if key not in allowed:
                raise fail((*path, str(key)), "unknown field" + did_you_mean(str(key), allowed)
                           + " (expected " + ", ".join(allowed) + ")")

    root_cause = text(("root_cause",), doc.get("root_cause"), required=True)
    timeline = []
    for path, item in entries("timeline"):
        keys(path, item, TIMELINE_FIELDS)
        when = _time((*path, "at"), item.get("at"), fail)
        if now is not None and when > now:
            raise fail((*path, "at"), f"{when.isoformat()} is in the future")
        timeline.append({"at": when.isoformat(),
                         "what": text((*path, "what"), item.get("what"), required=True)})
    timeline.sort(key=lambda e: e["at"])
    actions = []
    for path, item in entries("actions"):
        keys(path, item, ACTION_FIELDS)
        owner = text((*path, "owner"), item.get("owner"), required=True).lower()
        user = session.scalars(select(User).where(User.username == owner)).first()
        if user is None or not user.active:
            raise fail((*path, "owner"), f"unknown or deactivated user '{owner}' (every action "
                       "needs an owner who is a user; see `assay user list`)")
        actions.append({"action": text((*path, "action"), item.get("action"), required=True),
                        "owner": user.username,
                        "due": _day((*path, "due"), item.get("due"), fail).isoformat()})
    return {"summary": text(("summary",), doc.get("summary"), required=False),
            "timeline": timeline, "root_cause": root_cause,
            "contributing_factors": texts("contributing_factors"),
            "went_well": texts("went_well"), "actions": actions}


def _time(path: tuple[str | int, ...], value: Any, fail: Callable[..., InputError]
          ) -> datetime:
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise fail(path, f"expected a time such as 2026-03-05T09:30:00+01:00, got "
                       f"{value!r}") from None
    else:
        raise fail(path, "required: a time with its zone, such as 2026-03-05T09:30:00+01:00")
    if when.tzinfo is None:
        raise fail(path, f"{when.isoformat()} has no time zone: add one (e.g. +01:00 or Z)")
    from datetime import UTC

    return when.astimezone(UTC)


def _day(path: tuple[str | int, ...], value: Any, fail: Callable[..., InputError]) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise fail(path, f"expected a due date such as 2026-04-01, got {value!r}")
