"""The API's lists cost a fixed number of queries whatever their size (bench/bench_api.py
measures them at the benchmark's sizes)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts_app.audit import Origin, record_event
from accounts_app.models import AccountRequest, AuditEvent
from tests.api_support import ApiClient, token_for
from tests.builders import instance_row, request_row

pytestmark = pytest.mark.django_db

# The token with its user, the token's call budget (one UPDATE, services/call_budgets.py),
# then the list's own queries.
EXPECTED = {
    "/instances": 4,  # + filter choices, the page
    "/requests": 4,  # + the user's permissions, the page (instance and requester joined)
    "/audit/events": 4,  # + the user's permissions, the page
    # + the user's permissions, the accounts (single and fleets' in one query, with their
    # instances), their requests with who approved them.
    "/accounts": 5,
}


def fill(requester, approver, count: int) -> None:
    for index in range(count):
        instance = instance_row(f"r-q{count}x{index:03d}")
        row = request_row(requester, instance, f"q{index}", status=AccountRequest.Status.CREATED)
        row.decisions.create(approver=approver, requester=requester, verdict="approve")
        record_event(
            action=AuditEvent.Action.REQUEST_SUBMITTED,
            outcome=AuditEvent.Outcome.SUCCESS,
            origin=Origin.system("test"),
            request=row,
        )


def queries(client: ApiClient, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        answer = client.get(path, limit=100)
    assert answer.status_code == 200, answer.content
    return len(captured)


@pytest.mark.parametrize("path", list(EXPECTED))
def test_a_list_costs_the_same_queries_at_any_size(path, approver, requester, settings):
    settings.API_RATE_LIMIT = 1_000_000
    client = ApiClient(token_for(approver))
    client.get("/instances")  # the token's first use notes its last use, once a minute
    fill(requester, approver, 3)
    small = queries(client, path)
    fill(requester, approver, 40)
    assert (small, queries(client, path)) == (EXPECTED[path], EXPECTED[path])
