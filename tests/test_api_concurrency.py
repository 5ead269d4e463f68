"""On PostgreSQL: 20 concurrent execute calls through the API, with one Idempotency-Key or
with 20 different ones, make exactly one CreateAccount at the simulator."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts_app.audit import Origin
from accounts_app.models import AccountRequest
from accounts_app.services import workflow
from tests.api_support import token_for
from tests.builders import request_row
from tests.conftest import empty_instance
from tests.threads import ON_POSTGRESQL_IN_TRANSACTIONS, run_together

pytestmark = ON_POSTGRESQL_IN_TRANSACTIONS

CALLS = 20
TRIALS = 5


def execute_together(pk: int, token: str, keys: list[str]) -> list[int]:
    def call(index: int) -> int:
        response = Client().post(
            f"/api/v1/requests/{pk}/execute",
            json.dumps({"account_password": "Str0ng-Passw0rd"}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": keys[index]},
        )
        return response.status_code

    outcomes = run_together(call, len(keys))
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    return [status for _, status in outcomes]


@pytest.mark.parametrize("same_key", [True, False], ids=["one key", "different keys"])
def test_concurrent_api_executions_make_exactly_one_call(
    estate, requester, approver, settings, same_key
):
    settings.API_RATE_LIMIT = 1_000_000
    token = token_for(requester)
    for trial in range(TRIALS):
        instance = empty_instance(estate, f"r-bp1api{int(same_key)}{trial:03d}")
        account_request = request_row(requester, instance, "api_load")
        workflow.request_approve(
            request_id=account_request.pk,
            approver=approver,
            comment="",
            origin=Origin(actor=approver, actor_name=approver.username),
        )
        estate.clear_calls()
        keys = [f"t{trial}" if same_key else f"t{trial}-{i}" for i in range(CALLS)]
        statuses = execute_together(account_request.pk, token, keys)
        assert len(estate.calls("CreateAccount")) == 1, f"trial {trial}: {statuses}"
        assert len(statuses) == CALLS and set(statuses) <= {200, 409}, statuses
        account_request.refresh_from_db()
        assert account_request.status == AccountRequest.Status.CREATED
