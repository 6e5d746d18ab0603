"""The store: one database (SQLite under ``ASSAY_HOME`` or PostgreSQL) plus evidence files.

>>> store = open_store()                  # ./.assay/assay.db, created on first use
>>> with store.transaction() as session:  # commit on success, roll back on error
...     ...

Schema changes are Alembic migrations shipped inside the package
(``assay/store/migrations``); :func:`upgrade` applies them to ``heads``
without any ``alembic.ini``. :func:`open_store` upgrades an empty SQLite file
by itself; any other database that is behind must be upgraded explicitly
with ``assay db upgrade`` (so a shared server is never migrated by surprise).
"""

from assay.store.connect import Store, StoreError, open_store
from assay.store.migrate import MIGRATIONS_DIR, current_revisions, head_revisions, upgrade

__all__ = ["MIGRATIONS_DIR", "Store", "StoreError", "current_revisions", "head_revisions",
           "open_store", "upgrade"]
