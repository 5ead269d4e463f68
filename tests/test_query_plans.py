"""The instance list's queries read an index instead of sorting or grouping every
instance (SQLite's plan; at 5,000 instances the summary took 5 ms without its index),
and the audit log finds an instance by its name in an index."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.test_page_queries import seed, signed_in

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's EXPLAIN QUERY PLAN"),
]


def plans_of(client, url: str) -> dict[str, str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    plans = {}
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            read = query["sql"].split(" FROM ")[-1][:40]
            if '"accounts_app_instance"' not in read and "WITH RECURSIVE" not in query["sql"]:
                continue
            cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
            plans[query["sql"]] = " / ".join(row[-1] for row in cursor.fetchall())
    return plans


def test_the_instance_list_neither_sorts_nor_groups_in_a_temporary_tree(requester, approver):
    seed(0, 50, requester, approver)
    plans = plans_of(signed_in(requester), reverse("instances"))
    choices = next(plan for sql, plan in plans.items() if "WITH RECURSIVE" in sql)
    newest = next(plan for sql, plan in plans.items() if "instance_newest_sync" in plan)
    page = next(plan for sql, plan in plans.items() if "instance_list_order" in plan)
    # The filter choices: a seek in an index per distinct value, no instance read in turn.
    assert "SCAN accounts_app_instance" not in choices, choices
    assert choices.count("SEARCH accounts_app_instance USING COVERING INDEX") == 8, choices
    assert "INDEX syncrun_newest_first" in newest  # the newest sync run it brings
    for plan in (choices, newest, page):
        assert "TEMP B-TREE" not in plan, plan


def test_a_drift_page_is_the_first_rows_of_an_index_not_every_drifting_account_sorted(
    requester, approver, auditor
):
    from accounts_app.selectors.accounts import DRIFT_COLUMNS, drift_rows

    seed(0, 50, requester, approver)
    # The page's rows as it reads them: with their instance and their request's requester.
    sql, params = drift_rows().values_list(*DRIFT_COLUMNS)[:50].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = " / ".join(row[-1] for row in cursor.fetchall())
    assert "knownaccount USING INDEX" in plan
    assert "TEMP B-TREE" not in plan, plan
    page = signed_in(auditor).get(reverse("drift")).content.decode()
    assert page.count("<tr data-account=") == 50


@pytest.mark.parametrize("query", ["instance_id=Payments-Cache", "q=payMENTS"])
def test_the_audit_log_finds_instances_by_name_in_an_index_not_by_reading_them_all(
    requester, approver, auditor, query
):
    seed(0, 50, requester, approver)
    plans = plans_of(signed_in(auditor), reverse("audit") + "?" + query)
    (plan,) = plans.values()
    # At 5,000 instances a case-insensitive LIKE read every name: 1.8 ms of a page.
    assert "USING INDEX instance_name_folded" in plan, plan
    assert "SCAN U0" not in plan and "SCAN accounts_app_instance" not in plan, plan
