"""A fleet request clicked many times at once on two app servers (gunicorn processes on
one PostgreSQL, tests/test_reliability.py's fixtures): one run, one CreateAccount per
instance."""

from __future__ import annotations

from functools import partial

import pytest
import requests

from accounts_app.models import AccountRequest, AuditEvent
from accounts_app.services import fleet, workflow
from tests import test_reliability as reliability
from tests.builders import origin_of
from tests.conftest import empty_instance
from tests.test_reliability import all_at_once, browser_for, post

# The two app servers and the simulator they share, as test_reliability.py starts them.
module_simulator = reliability.module_simulator
servers = reliability.servers
world = reliability.world

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PASSWORD = "Fl33t-Tw0-Servers"
CLICKS_PER_SERVER = 3


OPERATION = {"create": "CreateAccount", "delete": "DeleteAccount"}


@pytest.mark.parametrize("kind", ["create", "delete"])
def test_concurrent_clicks_on_two_servers_run_each_instance_exactly_once(world, kind):
    servers, simulator, users = world
    requester = users["requester"]
    instances = [empty_instance(simulator, f"r-bp1two{kind[0]}{n}q") for n in range(8)]
    if kind == "delete":
        for instance in instances:
            simulator.add_account(instance.instance_id, "fleet_two")
    row = fleet.fleet_submit(
        requester=requester,
        instances=instances,
        account_name="fleet_two",
        account_privilege="RoleReadOnly",
        account_description="",
        account_type="Normal",
        justification="Two servers, many clicks.",
        origin=origin_of(requester),
        kind=kind,
    )
    workflow.request_approve(
        request_id=row.pk, approver=users["bob"], comment="", origin=origin_of(users["bob"])
    )
    browser = browser_for(requester)
    password = {"account_password": PASSWORD, "account_password_confirm": PASSWORD}
    clicks = all_at_once(
        [
            partial(post, browser, f"{server.url}/requests/{row.pk}/fleet/execute/", password)
            for server in servers
            for _ in range(CLICKS_PER_SERVER)
        ]
    )
    problems = [r for r in clicks if not isinstance(r, requests.Response) or r.status_code >= 500]
    assert not problems, [servers[0].output(), servers[1].output(), problems]
    for instance in instances:
        calls = [
            call
            for call in simulator.calls(OPERATION[kind])
            if call["instance_id"] == instance.instance_id
        ]
        assert len(calls) == 1, f"{instance.instance_id}: {len(calls)} {OPERATION[kind]} calls"
        expected = 1 if kind == "create" else 0
        assert simulator.account_names(instance.instance_id).count("fleet_two") == expected
    # Post/redirect/get: the one run lands on the result page, every other click back
    # on the execute page (refused: the run was going on, or it was over).
    landed = [click.headers["Location"] for click in clicks]
    assert sum(place.endswith(f"/{row.pk}/fleet/execute/result/") for place in landed) == 1
    assert all(place.endswith(("/fleet/execute/", "/fleet/execute/result/")) for place in landed)
    row.refresh_from_db()
    assert row.status == AccountRequest.Status.CREATED
    started = row.events.filter(action=AuditEvent.Action.EXECUTION_STARTED).count()
    assert started == 1
