"""The request list's free-text search, indexed (selectors/request_list.py).

SQLite: two FTS5 tables with the trigram tokenizer (SQLite >= 3.34), one over the
requests' searched columns and one over the instances', kept in step with their tables
by triggers. Trigrams keep the search a case-insensitive substring search, Chinese
included (which has no word boundaries for a word tokenizer to find).

Django's SQLite schema editor rebuilds a table for some changes (a copy, then a rename)
and the triggers go with the old table: a later migration that rebuilds either table
must create them again (tests/test_request_search.py fails without them).

PostgreSQL: trigram GIN indexes (pg_trgm) on the upper-cased columns, the expression
Django's `icontains` compares: the query itself stays the ORM's.
"""

from django.db import migrations, models

# (FTS table, content table, searched columns)
SEARCHED = [
    (
        "accounts_app_request_search",
        "accounts_app_accountrequest",
        ("account_name", "account_description", "justification"),
    ),
    ("accounts_app_instance_search", "accounts_app_instance", ("instance_id", "name")),
]


def _sqlite_statements(fts: str, table: str, columns: tuple[str, ...]) -> list[str]:
    listed = ", ".join(columns)
    new = ", ".join(f"new.{column}" for column in columns)
    old = ", ".join(f"old.{column}" for column in columns)
    delete = f"INSERT INTO {fts}({fts}, rowid, {listed}) VALUES ('delete', old.id, {old});"
    insert = f"INSERT INTO {fts}(rowid, {listed}) VALUES (new.id, {new});"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({listed}, content='{table}', "
        "content_rowid='id', tokenize='trigram')",
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {insert} END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {delete} END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {listed} ON {table} "
        f"BEGIN {delete} {insert} END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    ]


def _postgresql_statements(table: str, columns: tuple[str, ...]) -> list[str]:
    return [
        f"CREATE INDEX {table}_{column}_trgm ON {table} "
        f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        for column in columns
    ]


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = []
    if vendor == "sqlite":
        for fts, table, columns in SEARCHED:
            statements += _sqlite_statements(fts, table, columns)
    elif vendor == "postgresql":
        statements.append("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for _fts, table, columns in SEARCHED:
            statements += _postgresql_statements(table, columns)
    for statement in statements:
        schema_editor.execute(statement)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for fts, table, columns in SEARCHED:
        if vendor == "sqlite":
            for event in ("insert", "delete", "update"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {fts}_{event}")
            schema_editor.execute(f"DROP TABLE IF EXISTS {fts}")
        elif vendor == "postgresql":
            for column in columns:
                schema_editor.execute(f"DROP INDEX IF EXISTS {table}_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts_app", "0020_instance_list_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="accountrequest",
            index=models.Index(fields=["created_at", "id", "instance"], name="request_list_order"),
        ),
        migrations.RunPython(create, drop),
    ]
