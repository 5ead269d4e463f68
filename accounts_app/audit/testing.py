"""Test support: let the test suite flush the append-only audit table."""

from __future__ import annotations

from pathlib import Path

from django.db import connections


def permit_test_flush(using: str = "default") -> None:
    """Let Django's test flush empty the audit table of the *test* database.

    Migration 0003 explains the door this opens. Call it from the test suite's
    django_db_setup fixture, after the test database exists; it refuses to run
    against any other database.
    """
    from django.core import mail

    conn = connections[using]
    name = str(conn.settings_dict["NAME"])
    # setup_test_environment() gives mail an outbox; test databases are named
    # test_* (or live in memory).
    is_test_database = Path(name).name.startswith("test") or (
        conn.vendor == "sqlite" and conn.creation.is_in_memory_db(name)
    )
    if not (hasattr(mail, "outbox") and is_test_database):
        raise RuntimeError(f"permit_test_flush() is for test databases only, not {name!r}.")
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            # For this session, and for every later session to the test database.
            cursor.execute("SET audit.allow_flush = 'on'")
            database = conn.ops.quote_name(name)
            cursor.execute(f"ALTER DATABASE {database} SET audit.allow_flush = 'on'")
        elif conn.vendor == "sqlite":
            cursor.execute(
                "INSERT INTO accounts_app_audit_flush_permit (allowed) "
                "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM accounts_app_audit_flush_permit)"
            )
