"""Comparing the ORM tables with what the migrations created."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def schema_diffs(engine: Any, tables: Collection[str]) -> list[Any]:
    """Alembic's differences between ``Base.metadata`` and the migrated database ``engine``
    that concern the named ``tables`` (an empty list when they match)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from assay.store.db import Base

    def concerns(diff: Any) -> bool:
        item = diff[0] if isinstance(diff, list) else diff
        for part in item[1:]:
            table = getattr(part, "table", None)
            name = getattr(table, "name", None) or getattr(part, "name", None)
            if isinstance(part, str):
                name = part
            if name in tables:
                return True
        return False

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return [d for d in compare_metadata(ctx, Base.metadata) if concerns(d)]
