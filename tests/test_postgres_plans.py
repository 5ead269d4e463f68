"""PostgreSQL reads the few rows a page shows, not every row of a table: its plans, with
the tables analysed as autovacuum would. (SQLite's plans: test_query_plans.py.) At
50,000 requests reading them all cost the dashboard 35 ms and the created accounts 70.

At a test's few thousand rows reading a table whole is the cheapest plan, and the
planner takes it. So the steps that read a table whole (sequential scans, hash and
merge joins) are priced out: the plan then shows whether the query's shape lets
PostgreSQL read less, as it does at full size."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.test_page_queries import seed, signed_in

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner"),
]

ROWS = 3_000


def most_rows_read(client, url: str, table: str, marker: str) -> tuple[int, str]:
    """The most rows a step of the page's query (the one that says `marker`) read from
    `table`: the rows a scan of it gave (all loops), or those its filter threw away."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        for whole_table_step in ("seqscan", "hashjoin", "mergejoin"):
            cursor.execute(f"SET enable_{whole_table_step} = off")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    worst, worst_plan = -1, ""
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            if marker not in query["sql"]:
                continue
            cursor.execute("EXPLAIN (ANALYZE) " + query["sql"])
            plan = [row[0] for row in cursor.fetchall()]
            read = rows_read(plan, table)
            if read >= worst:
                worst, worst_plan = read, "\n".join(plan)
    assert worst >= 0, f"no query says {marker}"
    return worst, worst_plan


def rows_read(plan: list[str], table: str) -> int:
    most, on_table = 0, False
    for line in plan:
        if node := re.search(r"Scan .*\(actual time=\S+ rows=(\d+) loops=(\d+)\)", line):
            on_table = re.search(rf" on {table}( |$)", line) is not None
            if on_table:
                most = max(most, int(node[1]) * int(node[2]))
        elif "(actual time=" in line:
            on_table = False
        elif on_table and (removed := re.search(r"Rows Removed by Filter: (\d+)", line)):
            most = max(most, int(removed[1]))
    return most


def test_the_dashboard_reads_its_lists_rows_not_every_request(requester, approver):
    seed(0, ROWS, requester, approver)
    read, plan = most_rows_read(
        signed_in(approver), reverse("dashboard"), "accounts_app_accountrequest", "in_my_requests"
    )
    assert read < ROWS / 10, plan


def test_the_created_accounts_read_a_pages_rows_not_every_creation_sorted(
    requester, approver, auditor
):
    seed(0, ROWS, requester, approver)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_app_accountrequest SET status = 'created', kind = 'create', "
            "finished_at = now() - id * interval '1 minute'"
        )
    read, plan = most_rows_read(
        signed_in(auditor), reverse("created_accounts"), "accounts_app_accountrequest", "c_request"
    )
    assert read < ROWS / 10, plan
