"""Budgets of calls per fixed window of time, shared by every web server: a user's live
Alibaba checks from page views (live_calls.py) and an API token's calls (tokens.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone

from accounts_app.models import CallWindow


def spend(key: str, *, limit: int, window_seconds: int) -> int:
    """Count one call against ``key``: 0 when it is within ``limit`` calls in the current
    window, else the seconds until the window ends (the call is then not counted)."""
    now = int(timezone.now().timestamp())
    start = now - now % window_seconds
    if limit > 0 and _counted(key, datetime.fromtimestamp(start, tz=UTC), limit):
        return 0
    return max(1, start + window_seconds - now)


def _counted(key: str, window_start: datetime, limit: int) -> bool:
    """One statement whatever the window's state (SQLite and PostgreSQL both upsert):
    the first call opens the window, the next ones count while under the limit, and
    concurrent calls on several servers share the one row."""
    table = connection.ops.quote_name(CallWindow._meta.db_table)
    key_column, start_column, calls = (
        connection.ops.quote_name(name) for name in ("key", "window_start", "calls")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({key_column}, {start_column}, {calls}) "  # noqa: S608
            f"VALUES (%s, %s, 1) ON CONFLICT ({key_column}, {start_column}) "
            f"DO UPDATE SET {calls} = {table}.{calls} + 1 WHERE {table}.{calls} < %s "
            f"RETURNING {calls}",
            [key, connection.ops.adapt_datetimefield_value(window_start), limit],
        )
        return cursor.fetchone() is not None
