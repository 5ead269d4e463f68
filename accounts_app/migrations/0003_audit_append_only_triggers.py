"""Database triggers that refuse UPDATE, DELETE and TRUNCATE of audit events.

The model and its queryset already refuse; these catch everything else: raw
SQL, a shell, another program using the same database account.

The one door left open is for the test suite, whose TransactionTestCase empties
every table between tests (TRUNCATE on PostgreSQL, DELETE on SQLite):

- PostgreSQL: TRUNCATE is allowed when the session setting audit.allow_flush is
  'on'. UPDATE and DELETE are refused always. The application never sets it.
- SQLite has no session settings and a trigger cannot read a TEMP table, so
  DELETE is allowed while the one-row table accounts_app_audit_flush_permit
  holds a row. The table is not a model (Django's flush never empties it) and
  stays empty outside the test database. UPDATE is refused always.

tests/conftest.py opens the door once the test database exists (see
accounts_app.audit.permit_test_flush). Anyone who can run those statements could
as well drop the triggers: the HMAC chain is what proves nothing was changed.

Table rebuilds on SQLite (some AlterField operations) drop the table's
triggers: a later migration that rebuilds accounts_app_auditevent must create
them again (tests/test_audit_triggers.py fails if it does not).

Also on PostgreSQL: the two columns the audit page searches by prefix
(instance_id, account_name) get the bytewise "C" collation, so that the range
[q, q + U+10FFFF) the search uses means "starts with q" whatever the database's
default collation (en_US.UTF-8 sorts punctuation and case its own way). Both
hold ASCII identifiers. An AlterField on either column resets the collation:
tests/test_audit_page.py checks it.
"""

from django.db import migrations

TABLE = "accounts_app_auditevent"
PERMIT_TABLE = "accounts_app_audit_flush_permit"
MESSAGE = "audit events are append-only"

SEARCHED_COLUMNS = {"instance_id": 64, "account_name": 64}

POSTGRESQL_FORWARD = [
    f"ALTER TABLE {TABLE} "
    + ", ".join(
        f'ALTER COLUMN {name} TYPE varchar({length}) COLLATE "C"'
        for name, length in SEARCHED_COLUMNS.items()
    ),
    f"""
    CREATE FUNCTION accounts_app_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' AND current_setting('audit.allow_flush', true) = 'on' THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION '{MESSAGE} (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$
    """,
    f"""
    CREATE TRIGGER auditevent_no_update_or_delete
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION accounts_app_audit_append_only()
    """,
    f"""
    CREATE TRIGGER auditevent_no_truncate
    BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_app_audit_append_only()
    """,
]

POSTGRESQL_BACKWARD = [
    f"DROP TRIGGER IF EXISTS auditevent_no_truncate ON {TABLE}",
    f"DROP TRIGGER IF EXISTS auditevent_no_update_or_delete ON {TABLE}",
    "DROP FUNCTION IF EXISTS accounts_app_audit_append_only()",
    f"ALTER TABLE {TABLE} "
    + ", ".join(
        f'ALTER COLUMN {name} TYPE varchar({length}) COLLATE "default"'
        for name, length in SEARCHED_COLUMNS.items()
    ),
]

SQLITE_FORWARD = [
    f"CREATE TABLE {PERMIT_TABLE} (allowed integer NOT NULL)",
    f"""
    CREATE TRIGGER auditevent_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
    """,
    f"""
    CREATE TRIGGER auditevent_no_delete BEFORE DELETE ON {TABLE}
    WHEN NOT EXISTS (SELECT 1 FROM {PERMIT_TABLE})
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
    """,  # noqa: S608 (constants, no input)
]

SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS auditevent_no_delete",
    "DROP TRIGGER IF EXISTS auditevent_no_update",
    f"DROP TABLE IF EXISTS {PERMIT_TABLE}",
]


def _statements(vendor: str, *, forward: bool) -> list[str]:
    if vendor == "postgresql":
        return POSTGRESQL_FORWARD if forward else POSTGRESQL_BACKWARD
    if vendor == "sqlite":
        return SQLITE_FORWARD if forward else SQLITE_BACKWARD
    raise NotImplementedError(f"No append-only triggers for the {vendor} database backend.")


def install(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, forward=True):
        schema_editor.execute(sql, params=None)


def uninstall(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, forward=False):
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("accounts_app", "0002_roles_policy_chain_head")]

    operations = [migrations.RunPython(install, uninstall)]
