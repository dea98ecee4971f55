"""The staff CSV export of a period's orders, streamed row by row, with no secrets in it."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime

from orders.metrics import orders_in_period

EXPORT_COLUMNS = (
    ("order_id", "order_id"),
    ("created_at", "created_at"),
    ("customer_email", "user__email"),
    ("model_id", "model_id"),
    ("token_count", "token_count"),
    ("base_usd_cost", "base_usd_cost"),
    ("markup_amount", "markup_amount"),
    ("total_usd_cost", "total_usd_cost"),
    ("crypto_type", "crypto_type"),
    ("crypto_amount", "crypto_amount"),
    ("status", "status"),
    ("reason", "reason"),
    ("payment_hash", "payment_hash"),
    ("paid_at", "paid_at"),
    ("delivered_at", "delivered_at"),
    ("key_hash", "key_hash"),
    ("key_usage_usd", "key_usage_usd"),
    ("refund_reference", "refund_reference"),
    ("refund_status", "refund__status"),
    ("refund_total_crypto", "refund__total_amount"),
    ("refund_receiving_crypto", "refund__receiving_amount"),
    ("refunded_at", "refund__refunded_at"),
)
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose write() returns what it was given (for streaming csv.writer)."""

    def write(self, value: str) -> str:
        return value


def orders_csv_lines(*, since: datetime, until: datetime) -> Iterator[str]:
    """The period's orders as CSV lines, read in chunks with a server-side cursor. No secrets."""
    writer = csv.writer(_Echo())
    yield writer.writerow([name for name, _ in EXPORT_COLUMNS])
    rows = (
        orders_in_period(since=since, until=until)
        .order_by("created_at", "id")
        .values_list(*(column for _, column in EXPORT_COLUMNS))
        .iterator(chunk_size=2000)
    )
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


__all__ = ["EXPORT_COLUMNS", "orders_csv_lines"]
