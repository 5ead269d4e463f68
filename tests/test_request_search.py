"""The request list's free-text search: a case-insensitive substring of the account name,
description, justification, or the instance's ID or name, in either language; on SQLite
read from the FTS5 trigram index (migration request_search_index), which must find
exactly what a LIKE over the same columns finds."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts_app.models import AccountRequest, Instance
from accounts_app.selectors.request_list import SEARCHED, RequestFilter, filtered_requests
from tests.builders import instance_row, request_row
from tests.test_request_list import listed, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def estate(requester):
    reports = instance_row("r-bp1reports0001", name="reports-prod")
    analytics = instance_row("r-bp1analytic001", name="数据分析-生产")
    return {
        "reader": request_row(
            requester, reports, "app_reader", justification="Nightly REPORTS for finance"
        ),
        "etl": request_row(
            requester,
            analytics,
            "etl_loader",
            account_description="夜间批处理",
            justification='The "load" job, 100% of it: under_score',
        ),
        "cache": request_row(requester, reports, "cache_warm", account_description="Warm-up"),
    }


def searched(term: str) -> list[int]:
    found = filtered_requests(AccountRequest.objects.all(), RequestFilter(search=term))
    return sorted(found.values_list("pk", flat=True))


def searched_with_like(term: str) -> list[int]:
    """The reference: the ORM's icontains over every searched column."""
    found = AccountRequest.objects.none()
    for column in SEARCHED:
        found |= AccountRequest.objects.filter(**{f"{column}__icontains": term})
    return sorted(found.values_list("pk", flat=True))


@pytest.mark.parametrize(
    "term",
    [
        "app_reader",  # the account name
        "REPORTS",  # the justification, and the instance's name, another case
        "reports",
        "warm-UP",  # the description
        "r-bp1analytic",  # the instance ID
        "数据分",  # the instance's name, in Chinese: no word boundaries
        "批处理",  # the description, in Chinese
        "分析",  # shorter than a trigram
        "ap",
        '"load" job',  # quotes are text, not FTS5 syntax
        "100%",  # neither % nor _ is a wildcard
        "r_sc",
        "der_score",
        "nothing-like-this",
    ],
)
def test_the_search_finds_what_a_substring_search_finds(estate, term):
    assert searched(term) == searched_with_like(term)


@pytest.mark.parametrize("term", ["REPORTS", "数据分", '"load" job', "100%", "ap", "none-such"])
def test_each_tabs_page_compiled_once_finds_what_a_substring_search_finds(
    estate, requester, auditor, term
):
    for _ in range(2):  # compiled, then run again with the same shape
        for user, tab in ((requester, "mine"), (auditor, "all")):
            page = listed(user, tab=tab, q=term, status="pending")
            assert sorted(page) == searched_with_like(term), (user.username, tab)


def test_the_search_names_the_requests_it_finds(estate):
    assert searched("数据分") == [estate["etl"].pk]
    assert searched("REPORTS") == sorted([estate["reader"].pk, estate["cache"].pk])
    assert searched('"load" job') == [estate["etl"].pk]


def test_the_index_follows_the_rows_it_reads(estate):
    """Triggers keep the index in step: a later migration that rebuilds a table on
    SQLite (Django's copy-and-rename) would drop them with the old table."""
    etl = estate["etl"]
    AccountRequest.objects.filter(pk=etl.pk).update(justification="Quarterly audit")
    assert searched("Quarterly") == [etl.pk]
    assert searched("under_score") == []
    Instance.objects.filter(pk=estate["reader"].instance_id).update(name="ledger-prod")
    assert searched("ledger") == sorted([estate["reader"].pk, estate["cache"].pk])
    assert searched("reports-prod") == []
    estate["cache"].delete()
    assert searched("ledger") == [estate["reader"].pk]


def test_the_list_page_searches_in_every_tab(estate, requester, auditor):
    assert listed(requester, q="数据分") == [estate["etl"].pk]
    assert listed(auditor, tab="all", q="warm-up") == [estate["cache"].pk]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's EXPLAIN QUERY PLAN")
def test_on_sqlite_the_search_reads_the_index_and_walks_the_list_order(estate, auditor):
    client = signed_in(auditor)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("request_list"), {"tab": "all", "q": "reports"}).status_code
    (search,) = [query["sql"] for query in queries.captured_queries if " MATCH " in query["sql"]]
    assert " LIKE " not in search
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + search)
        plan = " / ".join(row[-1] for row in cursor.fetchall())
    assert "request_list_order" in plan
    assert "TEMP B-TREE" not in plan
    assert "accounts_app_request_search VIRTUAL TABLE" in plan
    assert "accounts_app_instance_search VIRTUAL TABLE" in plan
