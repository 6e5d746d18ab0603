"""What every part of the workflow shares: time and text helpers, the transaction
guard that turns a lost race into a :class:`ConflictError`, the audit helper,
and the queries over the workflow tables."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from assay.errors import ConflictError
from assay.workflow import _registry as reg
from assay.workflow.tables import (
    APPROVED,
    IN_REVIEW,
    Document,
    SignOff,
    StageState,
    Submission,
)

F = TypeVar("F", bound=Callable[..., Any])

PASSING = ("passed", "passed_with_warnings")
SUBMIT_ROLES = ("data_scientist",)
OPEN_STATES = (IN_REVIEW, APPROVED)




def _now(now: datetime | None) -> datetime:
    return _aware(now) if now is not None else datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    """Datetimes read back from SQLite are naive; everything stored is UTC."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _iso(dt: datetime | None) -> str | None:
    dt = _aware(dt)
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def _day(dt: datetime | None) -> str:
    dt = _aware(dt)
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else "-"


def _clean(text: str | None) -> str:
    return (text or "").strip()


def _subject(model_name: str, version: str) -> str:
    return f"{model_name}@{version}"


def _sha(digest: str | None) -> str:
    """Digests compare as "sha256:<hex>" whether or not the prefix was stored."""
    d = str(digest or "")
    return d if not d or d.startswith("sha256:") else f"sha256:{d}"


def _evidence(**items: str | None) -> dict[str, str]:
    return {k: v for k, v in items.items() if v}


def _flush(session: Session, what: str) -> None:
    """Flush, turning a lost race into a ConflictError (the transaction rolls back)."""
    with _lost_race(what):
        session.flush()


@contextmanager
def _lost_race(what: str) -> Iterator[None]:
    """A concurrent change detected by the database becomes a ConflictError."""
    try:
        yield
    except StaleDataError:
        raise ConflictError(
            f"{what}: someone else changed this submission at the same time; "
            "nothing was recorded, reload and try again"
        ) from None
    except IntegrityError:
        raise ConflictError(
            f"{what}: conflicts with a sign-off recorded at the same time; nothing was recorded"
        ) from None
    except OperationalError as exc:
        if "locked" in str(exc).lower():
            raise ConflictError(
                f"{what}: the database was busy with a concurrent change; "
                "nothing was recorded, try again"
            ) from None
        raise


def _action(what: str) -> Callable[[F], F]:
    """Mark a domain action: a lost race anywhere inside it (also during an
    autoflush) is reported as a ConflictError, never as a database error."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _lost_race(what):
                _serialize(args[0] if args else kwargs["session"])
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco


def _serialize(session: Session) -> None:
    """On SQLite, take the database write lock before reading what the action
    decides on (a write matching no row holds it to the end of the transaction),
    so concurrent actions run one after the other and each sees the other's
    result. PostgreSQL locks the rows themselves with ``SELECT ... FOR UPDATE``."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE wf_submissions SET id = id WHERE 1 = 0"))


def _audit(session: Session, actor: Any, action: str, model_name: str, version: str,
           payload: dict[str, Any], evidence: dict[str, str]) -> None:
    from assay.store.audit import append_event

    append_event(session, actor=actor.username, action=action, subject_type="model_version",
                 subject_id=_subject(model_name, version),
                 payload=json.loads(json.dumps(payload, default=str)), evidence=evidence or None)




def latest_submission(session: Session, version_id: int, *, lock: bool = False
                      ) -> Submission | None:
    stmt = (select(Submission).where(Submission.model_version_id == version_id)
            .order_by(Submission.id.desc()).limit(1))
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).first()


def _stages(session: Session, submission_id: int) -> list[StageState]:
    return list(session.scalars(select(StageState).where(StageState.submission_id == submission_id)
                                .order_by(StageState.position)))


def _signoffs(session: Session, submission_id: int, stage: str | None = None) -> list[SignOff]:
    stmt = select(SignOff).where(SignOff.submission_id == submission_id)
    if stage is not None:
        stmt = stmt.where(SignOff.stage == stage)
    return list(session.scalars(stmt.order_by(SignOff.id)))


def _documents(session: Session, submission_id: int, stage: str | None = None) -> list[Document]:
    stmt = select(Document).where(Document.submission_id == submission_id)
    if stage is not None:
        stmt = stmt.where(Document.stage == stage)
    return list(session.scalars(stmt.order_by(Document.id)))



def _usernames(session: Session, ids: Iterable[int]) -> dict[int, str]:
    return {i: reg.username_of(session, i) for i in set(ids)}
