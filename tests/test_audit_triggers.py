"""The database itself refuses to change or remove an audit event.

Runs on SQLite, and on PostgreSQL when DATABASE_URL points at one (CI runs both).
The test database carries the flush permit of migration 0003 (Django's test
flush needs it), so most tests first take it away, as production never has it.
"""

from __future__ import annotations

import importlib

import pytest
from django.db import DatabaseError, connection, transaction

from accounts_app.audit import Origin, record_event
from accounts_app.audit.testing import permit_test_flush
from accounts_app.models import AuditEvent

pytestmark = pytest.mark.django_db

migration = importlib.import_module("accounts_app.migrations.0003_audit_append_only_triggers")
TABLE = AuditEvent._meta.db_table


@pytest.fixture
def event() -> AuditEvent:
    return record_event(
        action=AuditEvent.Action.INSTANCES_SYNCED,
        outcome=AuditEvent.Outcome.SUCCESS,
        origin=Origin.system("test"),
        comment="original",
    )


@pytest.fixture
def as_in_production():
    """No flush permit, for the rest of this test's transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL audit.allow_flush = 'off'")
        else:
            cursor.execute(f"DELETE FROM {migration.PERMIT_TABLE}")  # noqa: S608


def run_sql(sql: str, params=()) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        if sql.startswith("TRUNCATE"):
            # Run the deferred foreign key checks of this test's inserts now:
            # PostgreSQL refuses to TRUNCATE a table with pending ones.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(sql, params)


def stored_comment(event: AuditEvent) -> str:
    return AuditEvent.objects.get(pk=event.pk).comment


@pytest.mark.usefixtures("as_in_production")
def test_raw_update_is_refused(event):
    with pytest.raises(DatabaseError, match="append-only"):
        run_sql(f"UPDATE {TABLE} SET comment = %s WHERE seq = %s", ["rewritten", event.seq])  # noqa: S608

    assert stored_comment(event) == "original"


@pytest.mark.usefixtures("as_in_production")
def test_raw_update_of_every_row_is_refused(event):
    with pytest.raises(DatabaseError, match="append-only"):
        run_sql(f"UPDATE {TABLE} SET hash = prev_hash")  # noqa: S608

    assert stored_comment(event) == "original"


@pytest.mark.usefixtures("as_in_production")
def test_raw_delete_is_refused(event):
    with pytest.raises(DatabaseError, match="append-only"):
        run_sql(f"DELETE FROM {TABLE} WHERE seq = %s", [event.seq])  # noqa: S608

    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_update_is_refused_even_with_the_flush_permit(event):
    with pytest.raises(DatabaseError, match="append-only"):
        run_sql(f"UPDATE {TABLE} SET comment = 'rewritten'")  # noqa: S608

    assert stored_comment(event) == "original"


@pytest.mark.postgres
@pytest.mark.usefixtures("as_in_production")
def test_truncate_is_refused_on_postgresql(event):
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE exists on PostgreSQL only")

    with pytest.raises(DatabaseError, match="append-only"):
        run_sql(f"TRUNCATE {TABLE} CASCADE")

    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.postgres
def test_delete_is_refused_on_postgresql_even_with_the_flush_permit(event):
    if connection.vendor != "postgresql":
        pytest.skip("on SQLite the permit is what lets the test flush DELETE")

    with pytest.raises(DatabaseError, match="append-only"):
        run_sql(f"DELETE FROM {TABLE}")  # noqa: S608


def test_the_flush_permit_lets_the_test_flush_empty_the_table(event):
    """What TransactionTestCase does between tests; rolled back with this test."""
    permit_test_flush()  # conftest's django_db_setup did it already; it is idempotent
    statement = f"TRUNCATE {TABLE} CASCADE" if connection.vendor == "postgresql" else None
    run_sql(statement or f"DELETE FROM {TABLE}")  # noqa: S608

    assert not AuditEvent.objects.exists()


@pytest.mark.usefixtures("as_in_production")
def test_the_migration_can_be_reversed_and_applied_again(event):
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            # ALTER TABLE waits for no deferred check of this test's inserts.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for sql in migration._statements(vendor, forward=False):
            cursor.execute(sql)
    run_sql(f"UPDATE {TABLE} SET comment = 'changed while unprotected'")  # noqa: S608

    with connection.cursor() as cursor:
        for sql in migration._statements(vendor, forward=True):
            cursor.execute(sql)
    with pytest.raises(DatabaseError, match="append-only"):
        run_sql(f"UPDATE {TABLE} SET comment = 'rewritten'")  # noqa: S608
    assert stored_comment(event) == "changed while unprotected"
