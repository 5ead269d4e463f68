"""The request list (/requests/): tabs, filters, search, paging and the approvals column."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts_app.models import AccountRequest, Decision
from accounts_app.selectors.request_list import PAGE_SIZE
from tests.builders import instance_row, request_row

pytestmark = pytest.mark.django_db
Status = AccountRequest.Status


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def listed(user, **params) -> list[int]:
    response = signed_in(user).get(reverse("request_list"), params)
    assert response.status_code == 200
    return [int(pk) for pk in re.findall(r'<tr data-request="(\d+)"', response.content.decode())]


@pytest.fixture
def orders(requester, second_approver):
    """Requests by two people on two instances, in several statuses."""
    reports = instance_row("r-bp1reports0001", name="reports-prod")
    billing = instance_row("r-bp1billing0001", name="billing-prod")
    return {
        "reader": request_row(requester, reports, "app_reader"),
        "writer": request_row(
            requester, billing, "app_writer", privilege="RoleReadWrite", status=Status.CREATED
        ),
        "repl": request_row(
            second_approver, billing, "sync_repl", privilege="RoleRepl", approvals_required=2
        ),
    }


def test_a_requester_sees_only_their_own_requests(orders, requester):
    assert sorted(listed(requester)) == sorted([orders["reader"].pk, orders["writer"].pk])
    assert sorted(listed(requester, tab="all")) == sorted(listed(requester))


def test_an_approver_sees_what_waits_for_them_and_everything_under_all(orders, approver):
    assert listed(approver, tab="waiting") == [orders["repl"].pk, orders["reader"].pk]
    assert len(listed(approver, tab="all")) == 3


def test_the_filters_narrow_the_list(orders, approver, requester):
    assert listed(approver, tab="all", status="created") == [orders["writer"].pk]
    assert listed(approver, tab="all", instance="reports") == [orders["reader"].pk]
    assert listed(approver, tab="all", instance="r-bp1billing") == [
        orders["repl"].pk,
        orders["writer"].pk,
    ]
    assert listed(approver, tab="all", requester=requester.username) == [
        orders["writer"].pk,
        orders["reader"].pk,
    ]
    assert listed(approver, tab="all", privilege="RoleRepl") == [orders["repl"].pk]
    assert listed(approver, tab="all", q="sync_") == [orders["repl"].pk]
    today = timezone.localdate()
    assert len(listed(approver, tab="all", date_from=today.isoformat())) == 3
    assert listed(approver, tab="all", date_to=(today - timedelta(days=1)).isoformat()) == []


def test_a_reversed_date_range_is_said_next_to_the_field(orders, approver):
    response = signed_in(approver).get(
        reverse("request_list"), {"tab": "all", "date_from": "2026-02-02", "date_to": "2026-01-01"}
    )
    assert "The end date is before the start date." in response.content.decode()


def test_the_approvals_column_says_given_over_required(orders, approver, second_approver):
    repl = orders["repl"]
    Decision.objects.create(
        request=repl, approver=approver, requester_id=repl.requester_id, verdict="approve"
    )
    html = signed_in(approver).get(reverse("request_list"), {"tab": "all"}).content.decode()
    row = html[html.index(f'<tr data-request="{repl.pk}"') :]
    assert '<td class="nowrap" data-approvals>1 / 2</td>' in row[: row.index("</tr>")]


def test_the_list_pages_instead_of_stopping(requester, approver):
    instance = instance_row("r-bp1paging00001")
    AccountRequest.objects.bulk_create(
        AccountRequest(
            requester=requester,
            instance=instance,
            account_name=f"page_{number}",
            account_privilege="RoleReadOnly",
            justification="reports",
            approvals_required=1,
        )
        for number in range(PAGE_SIZE + 5)
    )
    first = listed(approver, tab="waiting")
    second = listed(approver, tab="waiting", page="2")
    assert (len(first), len(second)) == (PAGE_SIZE, 5)
    assert not set(first) & set(second)
    html = signed_in(approver).get(reverse("request_list"), {"tab": "waiting"}).content.decode()
    assert 'rel="next"' in html and "page=2" in html
    assert listed(approver, tab="waiting", page="²") == first


def test_the_dashboard_links_to_the_whole_lists(approver):
    html = signed_in(approver).get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("request_list")}?tab=waiting"' in html
    assert f'href="{reverse("request_list")}?tab=mine"' in html
