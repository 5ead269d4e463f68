"""Rows of a related table as one JSON column of a query: a list the page shows, read
with the row it belongs to rather than in a query of its own."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Aggregate, JSONField
from django.utils import timezone
from django.utils.dateparse import parse_datetime


class JsonRows(Aggregate):
    """The rows of a group as one JSON array (its argument: a JSONObject). The order in
    the array is not the caller's to rely on (SQLite before 3.44 cannot order inside an
    aggregate): sort what comes back."""

    output_field = JSONField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="JSON_GROUP_ARRAY", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        # jsonb, not json: Django's JSONField reads jsonb as text and decodes it itself.
        return self.as_sql(compiler, connection, function="JSONB_AGG", **extra)


def row_time(text: str | None) -> datetime | None:
    """A time read from a JSON row: PostgreSQL writes it with its zone, SQLite writes
    the UTC time without one."""
    if text is None:
        return None
    moment = parse_datetime(text)
    return timezone.make_aware(moment, UTC) if timezone.is_naive(moment) else moment
