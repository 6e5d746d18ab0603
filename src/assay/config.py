"""Where assay keeps its state: ``ASSAY_HOME`` and ``ASSAY_DATABASE_URL``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str

    @property
    def evidence_dir(self) -> Path:
        return self.home / "evidence"


def load_settings(home: str | os.PathLike[str] | None = None,
                  database_url: str | None = None) -> Settings:
    """Settings from arguments, then the environment, then defaults.

    ``ASSAY_HOME`` defaults to ``./.assay``; the database defaults to a SQLite
    file inside it, so nothing needs to be set up.
    """
    h = Path(home or os.environ.get("ASSAY_HOME") or ".assay").expanduser().resolve()
    url = database_url or os.environ.get("ASSAY_DATABASE_URL") or f"sqlite:///{h / 'assay.db'}"
    return Settings(home=h, database_url=url)
