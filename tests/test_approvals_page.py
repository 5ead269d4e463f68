"""The approvals page reads its rows through a query compiled once per process
(selectors/prepared.py): for every approver, page and time, the rows the queryset
gives when built and run directly."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts_app.models import Decision, RoleGrant
from accounts_app.selectors import request_list
from accounts_app.selectors.requests import waiting_for_approval
from tests.test_prepared_queries import waiting

pytestmark = pytest.mark.django_db


def direct_page(user, number: int) -> request_list.RequestPage:
    return request_list.page_of(waiting_for_approval(user), number)


def test_each_approver_and_page_gets_the_rows_of_the_queryset(requester, approver, second_approver):
    mine = waiting(requester, request_list.PAGE_SIZE + 3)
    waiting(approver, 2, "r-bp1preparedb")
    Decision.objects.create(
        request=mine[0], approver=approver, requester_id=requester.pk, verdict="approve"
    )
    for user in (approver, second_approver, approver):
        for number in (1, 2, 3, request_list.PREPARED_PAGES + 1):
            page = request_list.approvals_page(user, number)
            assert page == direct_page(user, number), (user.username, number)
    first = request_list.approvals_page(second_approver, 1)
    assert (len(first.rows), first.has_next) == (request_list.PAGE_SIZE, True)
    assert first.rows[0]["instance__instance_id"] == "r-bp1preparedb"
    assert request_list.approvals_page(approver, 2).rows[-1]["approvals_given"] == 0
    assert len(request_list.approvals_page(approver, 2).rows) == 2  # not their own, not decided


def test_the_approver_wait_is_asked_with_the_time_of_each_run(settings, requester, approver):
    settings.APPROVER_WAIT_HOURS = 24
    waiting(requester, 2)
    RoleGrant.objects.create(user=approver, what="group Approvers")
    assert request_list.approvals_page(approver, 1).rows == []
    RoleGrant.objects.filter(user=approver).update(granted_at=timezone.now() - timedelta(hours=25))
    assert len(request_list.approvals_page(approver, 1).rows) == 2


def test_a_second_run_compiles_nothing_and_takes_one_query(requester, approver):
    waiting(requester, 2)
    request_list.approvals_page(approver, 1)
    with (
        mock.patch.object(
            SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql
        ) as compiled,
        CaptureQueriesContext(connection) as queries,
    ):
        page = request_list.approvals_page(approver, 1)
    assert (compiled.call_count, len(queries)) == (0, 1)
    assert [row["account_name"] for row in page.rows] == ["prep_red_1", "prep_red_0"]


def test_the_request_list_tabs_as_they_open_are_the_querysets_rows(
    requester, approver, second_approver
):
    waiting(requester, request_list.PAGE_SIZE + 3)
    waiting(approver, 2, "r-bp1preparedb")
    unfiltered = request_list.RequestFilter()
    for user in (requester, approver, second_approver, requester):
        for tab in request_list.available_tabs(user):
            for number in (1, 2, request_list.PREPARED_PAGES + 1):
                expected = request_list.page_of(
                    request_list.filtered_requests(
                        request_list.tab_requests(user, tab), unfiltered
                    ),
                    number,
                )
                page = request_list.tab_page(user, tab, unfiltered, number)
                assert page == expected, (user.username, tab, number)
    assert len(request_list.tab_page(requester, "mine", unfiltered, 2).rows) == 3
    assert len(request_list.tab_page(approver, "mine", unfiltered, 1).rows) == 2


def test_a_tab_as_it_opens_compiles_nothing_the_second_time(requester):
    waiting(requester, 2)
    unfiltered = request_list.RequestFilter()
    request_list.tab_page(requester, "mine", unfiltered, 1)
    with mock.patch.object(
        SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql
    ) as compiled:
        page = request_list.tab_page(requester, "mine", unfiltered, 1)
    assert compiled.call_count == 0
    assert [row["account_name"] for row in page.rows] == ["prep_red_1", "prep_red_0"]
