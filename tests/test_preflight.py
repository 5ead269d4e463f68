"""run_preflight(), against the simulator's demo estate over a real socket."""

from __future__ import annotations

import json
import socket

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from accounts_app.models import AccountRequest, FleetTarget, Instance
from accounts_app.services.preflight import run_preflight
from tests.builders import instance_row, request_row
from tests.demo_instances import (
    CHANGING,
    CLUSTER_40,
    FULL,
    HEALTHY,
    OLD_ENGINE,
    PASSWORD_FREE,
    REPL_OK,
)

pytestmark = pytest.mark.django_db


def instance(instance_id: str) -> Instance:
    return Instance.objects.get(instance_id=instance_id)


def preflight(instance_id: str, name: str = "app_reader", privilege: str = "RoleReadOnly", **kw):
    return run_preflight(
        instance=instance(instance_id), account_name=name, privilege=privilege, **kw
    )


def statuses(result) -> dict[str, str]:
    return {check.key: check.status for check in result.checks}


def test_a_healthy_instance_passes_every_check_live(estate):
    result = preflight(HEALTHY)

    assert result.live
    assert result.can_proceed
    assert statuses(result) == {
        "instance": "ok",
        "status": "ok",
        "engine": "ok",
        "account_count": "ok",
        "account_name": "ok",
        "open_request": "ok",
        "privilege": "ok",
        "vpc_auth_mode": "ok",
    }
    # Two accounts a user created; the built-in Super account is not counted.
    assert "2 of 18 accounts" in result.check("account_count").message


def test_the_checks_ask_the_api_each_time(estate):
    estate.clear_calls()

    preflight(HEALTHY)

    assert len(estate.calls("DescribeInstanceAttribute")) == 1
    assert len(estate.calls("DescribeAccounts")) == 1


@pytest.mark.parametrize(
    ("instance_id", "key", "words"),
    [
        (CHANGING, "status", "not running (status: Changing)"),
        (OLD_ENGINE, "engine", "Redis 2.8"),
        (FULL, "account_count", "already has 18 accounts"),
    ],
)
def test_each_blocked_instance_of_the_demo_estate_is_blocked_with_its_reason(
    estate, instance_id, key, words
):
    result = preflight(instance_id)

    assert not result.can_proceed
    assert [check.key for check in result.blockers] == [key]
    assert words in result.blockers[0].message


def test_a_name_already_on_the_instance_is_blocked_although_the_last_sync_did_not_see_it(
    estate,
):
    estate.add_account(HEALTHY, "app_reader")

    result = preflight(HEALTHY)

    assert [check.key for check in result.blockers] == ["account_name"]
    assert "already exists" in result.blockers[0].message


def test_the_live_answer_corrects_the_synced_row(estate):
    for number in range(16):  # with the two already there: 18 user accounts
        estate.add_account(HEALTHY, f"extra{number:02d}")
    estate.add_instance(InstanceId=CHANGING, RegionId="cn-hangzhou", InstanceStatus="Normal")

    assert preflight(HEALTHY).check("account_count").status == "blocked"
    assert instance(HEALTHY).account_count == 18
    assert preflight(CHANGING).can_proceed
    assert instance(CHANGING).status == "Normal"


def test_a_name_in_another_open_request_is_blocked(estate, requester):
    other = request_row(requester, instance(HEALTHY), "app_reader")

    result = preflight(HEALTHY, viewer=requester)

    assert [check.key for check in result.blockers] == ["open_request"]
    assert f"#{other.pk}" in result.blockers[0].message
    # The request itself is not its own duplicate (approval and execute re-check it).
    assert preflight(HEALTHY, exclude_request_id=other.pk).can_proceed


def test_a_closed_request_for_the_same_name_does_not_block(estate, requester):
    request_row(requester, instance(HEALTHY), "app_reader", status=AccountRequest.Status.REJECTED)

    assert preflight(HEALTHY).can_proceed


@pytest.mark.parametrize(
    ("instance_id", "allowed"),
    [(REPL_OK, True), (HEALTHY, False), (CLUSTER_40, False)],
)
def test_replication_is_allowed_only_on_standard_redis_4_0(estate, instance_id, allowed):
    result = preflight(instance_id, name="replicator1", privilege="RoleRepl")

    assert (result.check("privilege").status == "ok") is allowed
    assert result.can_proceed is allowed


def test_password_free_vpc_access_is_a_warning_not_a_blocker(estate):
    result = preflight(PASSWORD_FREE)

    assert result.can_proceed
    assert [check.key for check in result.warnings] == ["vpc_auth_mode"]
    assert "isolates nothing" in result.warnings[0].message


def test_without_a_name_or_privilege_only_the_instance_is_checked(estate):
    result = run_preflight(instance=instance(HEALTHY))

    assert set(statuses(result)) == {
        "instance",
        "status",
        "engine",
        "account_count",
        "vpc_auth_mode",
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_when_the_api_cannot_be_reached_the_synced_data_is_used_and_marked(estate, settings):
    settings.KVSTORE_ENDPOINT = f"http://127.0.0.1:{free_port()}"
    settings.KVSTORE_MAX_ATTEMPTS = 1

    result = preflight(FULL)

    assert not result.live
    assert "could not be reached" in result.note
    assert "synced at" in result.note
    # What the last sync knew still blocks; what only the API knows is not a pass.
    assert result.check("account_count").status == "blocked"
    assert result.check("account_name").status == "warning"
    assert result.check("open_request").status == "ok"


def test_an_api_error_also_falls_back_to_the_synced_data(estate):
    estate.add_fault("http503", action="DescribeInstanceAttribute", count=1)

    result = preflight(HEALTHY, client=estate.client(max_attempts=1))

    assert not result.live
    assert result.can_proceed
    assert result.check("account_name").status == "warning"


def test_an_instance_the_last_sync_did_not_find_is_blocked_without_asking(estate):
    Instance.objects.filter(instance_id=HEALTHY).update(is_gone=True)
    estate.clear_calls()

    result = preflight(HEALTHY)

    assert [check.key for check in result.blockers] == ["instance"]
    assert not estate.calls()


def test_an_instance_released_since_the_last_sync_is_blocked_live(estate):
    state = json.loads(estate.state_path.read_text(encoding="utf-8"))
    del state["instances"][HEALTHY]
    estate.state_path.write_text(json.dumps(state), encoding="utf-8")
    estate.simulator.store.load()

    result = preflight(HEALTHY)

    assert result.live
    assert [check.key for check in result.blockers] == ["instance"]


def test_the_partial_renders_each_check_and_the_note(estate, settings):
    blocked = preflight(FULL)
    html = render_to_string("instances/_preflight.html", {"preflight": blocked})
    assert 'class="blocked" data-check="account_count"' in html
    assert 'data-can-proceed="false"' in html
    assert blocked.note in html

    settings.KVSTORE_ENDPOINT = f"http://127.0.0.1:{free_port()}"
    settings.KVSTORE_MAX_ATTEMPTS = 1
    stale = render_to_string("instances/_preflight.html", {"preflight": preflight(PASSWORD_FREE)})
    assert 'data-live="false"' in stale
    assert 'class="warning" data-check="vpc_auth_mode"' in stale
    assert "could not be reached" in stale


def test_another_users_open_request_is_mentioned_without_its_number(
    estate, requester, other_requester
):
    other = AccountRequest.objects.create(
        requester=requester,
        instance=instance(HEALTHY),
        account_name="app_reader",
        account_privilege="RoleReadOnly",
        justification="first",
        approvals_required=1,
    )
    client = Client()
    client.force_login(other_requester)

    page = client.get(
        reverse("request_preflight"),
        {"instance_id": HEALTHY, "account_name": "app_reader", "account_privilege": "RoleReadOnly"},
    ).content.decode()

    assert "Another open request" in page
    assert f"#{other.pk}" not in page and f"{other.pk}</" not in page


def test_a_requests_page_names_the_fleet_request_open_for_the_same_account(
    estate, requester, other_requester, approver
):
    """The request's page reads the other open request with the request itself
    (selectors.visible_request): its number for whoever may see it, not otherwise."""
    single = request_row(requester, instance(HEALTHY), "app_reader")
    elsewhere = instance_row("r-bp1fleetpeer0001")
    fleet = request_row(other_requester, elsewhere, "app_reader", fleet_size=2)
    FleetTarget.objects.create(request=fleet, instance=elsewhere, position=0)
    FleetTarget.objects.create(request=fleet, instance=instance(HEALTHY), position=1)

    def page_of(user) -> str:
        client = Client()
        client.force_login(user)
        return client.get(reverse("request_detail", args=[single.pk])).content.decode()

    named = f"Request #{fleet.pk} for “app_reader” on this instance is still open."
    assert named in page_of(approver)
    as_requester = page_of(requester)
    assert "Another open request for “app_reader” on this instance already exists." in as_requester
    assert named not in as_requester
    fleet.status = AccountRequest.Status.REJECTED
    fleet.save(update_fields=["status"])
    assert "No other open request is for “app_reader”." in page_of(approver)


@pytest.mark.parametrize("name", ["1starts_with_a_digit", "has-dash", "x" * 40])
def test_a_name_the_rules_refuse_says_its_checks_did_not_run(estate, requester, name):
    client = Client()
    client.force_login(requester)

    page = client.get(
        reverse("request_preflight"),
        {"instance_id": HEALTHY, "account_name": name, "account_privilege": "RoleReadOnly"},
    ).content.decode()

    assert '<li class="blocked" data-check="account_name">' in page
    assert "The name checks did not run" in page
    assert 'data-can-proceed="false"' in page


def test_a_valid_name_is_checked_and_passes(estate, requester):
    client = Client()
    client.force_login(requester)

    page = client.get(
        reverse("request_preflight"),
        {"instance_id": HEALTHY, "account_name": "app_new", "account_privilege": "RoleReadOnly"},
    ).content.decode()

    assert '<li class="ok" data-check="account_name">' in page
    assert "The name checks did not run" not in page
