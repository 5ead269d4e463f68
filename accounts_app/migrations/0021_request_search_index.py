"""The request list's free-text search, indexed (selectors/request_list.py).

SQLite: two FTS5 tables with the trigram tokenizer (SQLite >= 3.34), one over the
requests' searched columns and one over the instances', kept in step with their tables
by triggers. Trigrams keep the search a case-insensitive substring search, Chinese
included (which has no word boundaries for a word tokenizer to find).

Django's SQLite schema editor rebuilds a table for some changes (a copy, then a rename)
and the triggers go with the old table: a later migration that rebuilds either table
must create them again (tests/test_request_search.py fails without them).

PostgreSQL keeps the ORM's `icontains`: trigram GIN indexes (pg_trgm) on the five
upper-cased columns were measured and left out: for the search's OR across the join the
planner still scanned every request (81 to 143 ms for a rare term at 50,000 requests
even with them). What helps there is request_list_order: a frequent term walks
it and stops at a page's rows (1 to 2.4 ms).
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


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for fts, table, columns in SEARCHED:
        for statement in _sqlite_statements(fts, table, columns):
            schema_editor.execute(statement)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for fts, _table, _columns in SEARCHED:
        for event in ("insert", "delete", "update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {fts}_{event}")
        schema_editor.execute(f"DROP TABLE IF EXISTS {fts}")


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
