"""Opening the store: :func:`open_store` gives a :class:`Store` (see :mod:`assay.store`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from assay.config import Settings, load_settings
from assay.errors import AssayError, ConflictError
from assay.store.db import make_engine, session_factory, transaction
from assay.store.migrate import current_revisions, head_revisions, upgrade


class StoreError(AssayError):
    """The store cannot be opened or is not at the schema this assay expects."""

    code = "store_error"


def _first_line(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@dataclass
class Store:
    """An open store: engine, session factory and the settings it came from."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session] = field(repr=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception.

        A constraint violation that escapes the domain layer (typically two
        people creating the same record at the same moment) becomes a
        :class:`ConflictError`; a lock timeout or deadlock too, with advice
        to retry. Either way nothing is written.
        """
        try:
            with transaction(self.sessions) as session:
                yield session
        except IntegrityError as exc:
            raise ConflictError(f"conflicting change, nothing was written: "
                                f"{_first_line(exc)}") from None
        except OperationalError as exc:
            msg = _first_line(exc)
            if any(w in msg.lower() for w in ("locked", "deadlock", "could not serialize",
                                               "lock timeout")):
                raise ConflictError(f"the store is busy ({msg}); nothing was written, "
                                    "try again") from None
            raise StoreError(f"database error on {self.url}: {msg}") from None

    @property
    def url(self) -> str:
        """The database URL without its password, for messages."""
        return _redact(self.settings.database_url)

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(settings: Settings | None = None, *, auto_upgrade: bool | None = None,
               check: bool = True) -> Store:
    """Open the store described by ``settings`` (default: from the environment).

    A new or empty SQLite database is created and upgraded automatically
    (``auto_upgrade=None`` means: only for SQLite). With ``check``, a database
    that is not at the current schema raises :class:`StoreError` naming the
    command that fixes it.
    """
    settings = settings or load_settings()
    url = settings.database_url
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        db_path = url.split("///", 1)[-1] if "///" in url else ""
        try:
            settings.home.mkdir(parents=True, exist_ok=True)
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the assay home {settings.home} (ASSAY_HOME): "
                             f"{exc.strerror or exc}") from None
    engine = make_engine(url)
    try:
        current = current_revisions(engine)
        wants_upgrade = auto_upgrade or (auto_upgrade is None and is_sqlite)
        if not current and wants_upgrade and not inspect(engine).get_table_names():
            current = upgrade(engine)
        if check:
            heads = head_revisions()
            if current != heads:
                if not current:
                    raise StoreError(
                        f"database {_redact(url)} has no assay schema yet: run `assay db "
                        "upgrade` once to create it (a shared database is never migrated "
                        "by surprise)")
                raise StoreError(
                    f"database {_redact(url)} is at schema {', '.join(sorted(current))}, "
                    f"this assay expects {', '.join(sorted(heads))}: run `assay db upgrade`")
    except OperationalError as exc:
        engine.dispose()
        raise StoreError(f"cannot open database {_redact(url)}: {_first_line(exc)}") from None
    except BaseException:
        engine.dispose()
        raise
    sessions = session_factory(engine)
    sessions.kw["info"] = {"settings": settings}  # evidence goes under this store's home
    return Store(settings=settings, engine=engine, sessions=sessions)
