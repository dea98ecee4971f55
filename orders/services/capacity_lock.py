"""One lock around "is there capacity?" and "reserve this order", so they happen as one step.

Without it two checkouts could both read the same headroom and both pass on the last dollar.
On PostgreSQL a transaction-scoped advisory lock serialises the check-and-insert of every
checkout (it is held for two small queries and an INSERT). SQLite needs nothing more: the store
opens its SQLite transactions IMMEDIATE, so a writer already excludes the others.
"""

from __future__ import annotations

from django.db import connection

# An arbitrary constant naming this lock in pg_locks (hex "capacity").
CAPACITY_LOCK_ID = 0x6361706163697479


def capacity_lock() -> None:
    """Take the capacity lock until the current transaction ends (call inside `transaction.atomic`)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CAPACITY_LOCK_ID])


__all__ = ["CAPACITY_LOCK_ID", "capacity_lock"]
