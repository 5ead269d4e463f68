"""Fleet requests through the JSON API and the simulator over a socket: one account on
many instances, approved once, created instance by instance."""

from __future__ import annotations

import pytest

from accounts_app.models import (
    AccountRequest,
    ApprovalPolicy,
    AuditEvent,
    CallWindow,
    FleetTarget,
)
from tests.api_support import ApiClient, token_for
from tests.builders import request_form_data
from tests.conftest import empty_instance
from tests.demo_instances import CHANGING, FULL, OLD_ENGINE

pytestmark = pytest.mark.django_db

PASSWORD = "Fl33t-Passw0rd"
Status = AccountRequest.Status
BLOCKED = [OLD_ENGINE, CHANGING, FULL]


def fleet_of(simulator, count: int, prefix: str = "r-fleet") -> list[str]:
    """``count`` healthy empty instances, on the simulator and in the inventory."""
    ids = [f"{prefix}{n:03d}" for n in range(count)]
    for instance_id in ids:
        empty_instance(simulator, instance_id)
    return ids


def fleet_body(instance_ids: list[str], **overrides) -> dict:
    body = request_form_data(**{"account_name": "order_ro", **overrides})
    del body["instance_id"]
    return {**body, "instance_ids": instance_ids}


def execute(client: ApiClient, pk: int, key: str):
    return client.post(
        f"/requests/{pk}/execute", {"account_password": PASSWORD}, **{"Idempotency-Key": key}
    )


def create_calls(estate, instance_id: str) -> int:
    return sum(
        call["params"].get("InstanceId") == instance_id for call in estate.calls("CreateAccount")
    )


def test_fifty_instances_three_blocked_are_approved_once_and_created_one_by_one(
    estate, requester, approver
):
    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))
    healthy = fleet_of(estate, 47)

    refused = alice.post("/requests", fleet_body(healthy + BLOCKED))
    assert refused.status_code == 409, refused.content
    checks = {row["instance_id"]: row for row in refused.json()["instances"]}
    assert len(checks) == 50
    assert sorted(i for i, row in checks.items() if row["status"] == "blocked") == sorted(BLOCKED)
    assert all(checks[i]["reason"] for i in BLOCKED)
    assert not AccountRequest.objects.exists()

    created = alice.post("/requests", fleet_body(healthy))
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["fleet_size"] == 47
    assert [t["instance_id"] for t in created.json()["targets"]] == healthy

    approved = bob.post(f"/requests/{pk}/approve", {"comment": "fine"})
    assert approved.json()["status"] == "approved"

    transient, unknown = healthy[10], healthy[20]
    estate.add_fault("throttle", action="CreateAccount", instance_id=transient)
    estate.add_fault("commit_then_timeout", action="CreateAccount", instance_id=unknown, delay=3)
    executed = execute(alice, pk, "run-1")
    assert executed.status_code == 200, executed.content
    body = executed.json()
    assert body["created"] is True
    assert body["request"]["progress"] == {"total": 47, "done": 47, "failed": 0, "unknown": 0}
    for instance_id in healthy:
        assert estate.account_names(instance_id).count("order_ro") == 1
    assert create_calls(estate, transient) == 2  # throttled once, then retried
    assert create_calls(estate, unknown) == 1  # its outcome found by DescribeAccounts
    events = AuditEvent.objects.filter(request_id=pk)
    assert events.filter(action="account_created").count() == 46
    assert list(
        events.filter(instance_id=unknown).order_by("seq").values_list("action", flat=True)
    ) == ["outcome_unknown", "reconciled"]
    assert PASSWORD not in executed.content.decode()


def test_a_failed_instance_runs_again_without_a_new_approval(estate, requester, approver):
    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))
    ids = fleet_of(estate, 3)
    pk = alice.post("/requests", fleet_body(ids)).json()["id"]
    bob.post(f"/requests/{pk}/approve", {"comment": "ok"})
    estate.add_fault(
        "error", action="CreateAccount", instance_id=ids[1], code="IncorrectDBInstanceState"
    )

    first = execute(alice, pk, "first").json()
    assert first["created"] is False
    assert [t["status"] for t in first["request"]["targets"]] == ["done", "failed", "done"]
    assert first["request"]["status"] == "approved"
    assert first["error"]["code"] == "NotEveryInstanceCreated"

    second = execute(alice, pk, "second").json()
    assert second["created"] is True
    assert second["ran"] == 1  # the failed instance alone
    assert [create_calls(estate, i) for i in ids] == [1, 2, 1]
    assert AccountRequest.objects.get(pk=pk).decisions.count() == 1


def test_an_unknown_outcome_is_reconciled_for_that_instance_alone(estate, requester, approver):
    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))
    ids = fleet_of(estate, 3)
    pk = alice.post("/requests", fleet_body(ids)).json()["id"]
    bob.post(f"/requests/{pk}/approve", {"comment": "ok"})
    estate.add_fault("commit_then_timeout", action="CreateAccount", instance_id=ids[0], delay=3)
    estate.add_fault("http503", action="DescribeAccounts", instance_id=ids[0], count=0)

    run = execute(alice, pk, "k").json()
    assert run["request"]["status"] == "needs_reconciliation"
    assert [t["status"] for t in run["request"]["targets"]] == ["unknown", "done", "done"]

    estate.clear_faults()
    estate.clear_calls()
    settled = bob.post(f"/requests/{pk}/reconcile")
    assert settled.json()["status"] == "created", settled.content
    asked = [call["params"].get("InstanceId") for call in estate.calls("DescribeAccounts")]
    assert asked == [ids[0]]
    assert not estate.calls("CreateAccount")


def test_a_second_click_while_a_run_goes_on_is_refused(estate, requester, approver):
    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))
    pk = alice.post("/requests", fleet_body(fleet_of(estate, 2))).json()["id"]
    bob.post(f"/requests/{pk}/approve", {"comment": "ok"})
    AccountRequest.objects.filter(pk=pk).update(status=Status.EXECUTING)

    again = execute(alice, pk, "other")
    assert again.status_code == 409
    assert not estate.calls("CreateAccount")


def test_the_policy_caps_a_fleet_and_asks_one_more_approval_above_its_size(
    estate, requester, approver
):
    ApprovalPolicy.objects.update_or_create(
        account_privilege="RoleReadOnly",
        defaults={"approvals_required": 1, "max_fleet_size": 4, "extra_approval_above": 2},
    )
    alice = ApiClient(token_for(requester))
    ids = fleet_of(estate, 5)

    too_many = alice.post("/requests", fleet_body(ids))
    assert too_many.status_code == 409
    assert "at most 4" in too_many.json()["message"]

    assert alice.post("/requests", fleet_body(ids[:2])).json()["approvals_required"] == 1
    big = alice.post("/requests", fleet_body(ids[2:], account_name="other_ro"))
    assert big.json()["approvals_required"] == 2


def test_an_unknown_instance_id_is_named_and_nothing_is_submitted(estate, requester):
    alice = ApiClient(token_for(requester))
    answer = alice.post("/requests", fleet_body(["r-nosuchinstance0"]))
    assert answer.status_code == 400
    assert "r-nosuchinstance0" in answer.json()["errors"]["instance_ids"][0]["message"]
    assert not FleetTarget.objects.exists()


def with_account(estate, ids: list[str], name: str = "old_app", **options) -> None:
    for instance_id in ids:
        estate.add_account(instance_id, name, **options)


def calls_on(estate, action: str, instance_id: str) -> int:
    return sum(call["params"].get("InstanceId") == instance_id for call in estate.calls(action))


def test_a_fleet_deletes_one_account_on_many_instances_each_checked_first(
    estate, requester, approver
):
    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))
    ids = fleet_of(estate, 5)
    with_account(estate, ids[:3])
    estate.add_account(ids[4], "old_app", account_type="Super")
    body = fleet_body(ids, kind="delete", account_name="old_app", account_description="")

    refused = alice.post("/requests", body)
    assert refused.status_code == 409, refused.content
    rows = {row["instance_id"]: row for row in refused.json()["instances"]}
    assert [i for i in ids if rows[i]["status"] == "blocked"] == [ids[3], ids[4]]
    assert "no account named old_app" in rows[ids[3]]["reason"]
    assert "built-in" in rows[ids[4]]["reason"]

    created = alice.post("/requests", {**body, "instance_ids": ids[:3]})
    assert created.status_code == 201, created.content
    assert created.json()["kind"] == "delete"
    pk = created.json()["id"]
    bob.post(f"/requests/{pk}/approve", {"comment": "gone"})
    estate.add_fault("throttle", action="DeleteAccount", instance_id=ids[1])
    estate.add_fault("commit_then_timeout", action="DeleteAccount", instance_id=ids[2], delay=3)

    run = alice.post(f"/requests/{pk}/execute", {}, **{"Idempotency-Key": "delete-1"}).json()

    assert run["created"] is True, run
    assert run["request"]["progress"] == {"total": 3, "done": 3, "failed": 0, "unknown": 0}
    for instance_id in ids[:3]:
        assert "old_app" not in estate.account_names(instance_id)
    assert [calls_on(estate, "DeleteAccount", i) for i in ids[:3]] == [1, 2, 1]
    assert not estate.calls("CreateAccount")
    events = AuditEvent.objects.filter(request_id=pk)
    assert sorted(
        events.filter(action="account_deleted").values_list("instance_id", flat=True)
    ) == [
        ids[0],
        ids[1],
    ]
    assert list(
        events.filter(instance_id=ids[2]).order_by("seq").values_list("action", flat=True)
    ) == ["outcome_unknown", "reconciled"]
    assert "old_app" in estate.account_names(ids[4])  # the built-in one: never named


def test_a_privilege_fleet_fails_one_instance_and_runs_it_again_while_approved(
    estate, requester, approver
):
    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))
    ids = fleet_of(estate, 4)
    with_account(estate, ids[:3], privilege="RoleReadOnly")
    with_account(estate, ids[3:], privilege="RoleReadWrite")
    body = fleet_body(
        ids, kind="privilege", account_name="old_app", account_privilege="RoleReadWrite"
    )

    refused = alice.post("/requests", body).json()
    assert [row["status"] for row in refused["instances"]][3] == "blocked"  # already has it
    created = alice.post("/requests", {**body, "instance_ids": ids[:3]}).json()
    assert (created["kind"], created["account_privilege"]) == ("privilege", "RoleReadWrite")
    bob.post(f"/requests/{created['id']}/approve", {"comment": "ok"})
    estate.add_fault(
        "error", action="GrantAccountPrivilege", instance_id=ids[1], code="IncorrectDBInstanceState"
    )

    first = alice.post(f"/requests/{created['id']}/execute", {}, **{"Idempotency-Key": "p1"})
    assert [t["status"] for t in first.json()["request"]["targets"]] == ["done", "failed", "done"]
    assert first.json()["request"]["status"] == "approved"
    estate.clear_faults()
    second = alice.post(f"/requests/{created['id']}/execute", {}, **{"Idempotency-Key": "p2"})

    assert second.json()["created"] is True and second.json()["ran"] == 1
    assert [calls_on(estate, "GrantAccountPrivilege", i) for i in ids[:3]] == [1, 2, 1]
    for instance_id in ids[:3]:
        (account,) = [a for a in estate.accounts(instance_id) if a["AccountName"] == "old_app"]
        (granted,) = account["DatabasePrivileges"]["DatabasePrivilege"]
        assert granted["AccountPrivilege"] == "RoleReadWrite"


def test_a_password_reset_fleet_sends_the_password_to_each_instance_and_never_back(
    estate, requester, approver
):
    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))
    ids = fleet_of(estate, 2)
    with_account(estate, ids)
    created = alice.post(
        "/requests", fleet_body(ids, kind="reset_password", account_name="old_app")
    ).json()
    bob.post(f"/requests/{created['id']}/approve", {"comment": "ok"})

    run = execute(alice, created["id"], "reset")

    assert run.json()["created"] is True, run.content
    assert [calls_on(estate, "ResetAccountPassword", i) for i in ids] == [1, 1]
    assert PASSWORD not in run.content.decode()
    assert AuditEvent.objects.filter(request_id=created["id"], action="password_reset").count() == 2


def test_a_fleet_cannot_adopt_accounts(estate, requester):
    alice = ApiClient(token_for(requester))
    answer = alice.post("/requests", fleet_body(fleet_of(estate, 2), kind="adopt"))
    assert answer.status_code == 400
    assert "adopt them one by one" in answer.json()["errors"]["kind"][0]["message"]
    assert not AccountRequest.objects.exists()


def test_the_single_instance_execute_refuses_a_fleet(estate, requester, approver):
    from accounts_app.services import workflow
    from tests.builders import origin_of

    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))
    pk = alice.post("/requests", fleet_body(fleet_of(estate, 2))).json()["id"]
    bob.post(f"/requests/{pk}/approve", {"comment": "ok"})
    with pytest.raises(workflow.TransitionError):
        workflow.request_execute(
            request_id=pk, user=requester, account_password=PASSWORD, origin=origin_of(requester)
        )
    assert not estate.calls("CreateAccount")


def test_no_call_is_counted_at_the_very_end_of_a_second(monkeypatch):
    """A call counted in the last moments of a second would reach Alibaba in the next
    one: the run waits for the next second, and the call counts there."""
    from datetime import UTC, datetime

    from django.utils import timezone

    from accounts_app.models import CallWindow
    from accounts_app.services import fleet

    clock = [1_800_000_000.95]
    monkeypatch.setattr(timezone, "now", lambda: datetime.fromtimestamp(clock[0], tz=UTC))
    slept = []

    def sleep(seconds):
        slept.append(round(seconds, 3))
        clock[0] += seconds

    fleet._wait_for_budget(sleep)
    assert slept == [0.05]
    (window,) = CallWindow.objects.filter(key=fleet.CREATE_BUDGET_KEY)
    assert window.window_start.timestamp() == 1_800_000_001
    clock[0] = 1_800_000_001.5
    fleet._wait_for_budget(sleep)  # well inside the second: no wait
    assert slept == [0.05]


def test_a_change_checked_against_the_last_sync_asks_the_strictest_policy(
    settings, estate, requester
):
    """An instance not checked live (the requester's live-call budget spent) may hold
    the account with any privilege: the fleet asks what the strictest policy asks."""
    ApprovalPolicy.objects.update_or_create(
        kind="delete", account_privilege="RoleReadWrite", defaults={"approvals_required": 3}
    )
    alice = ApiClient(token_for(requester))
    ids = fleet_of(estate, 2)
    with_account(estate, ids, privilege="RoleReadOnly")
    body = fleet_body(ids, kind="delete", account_name="old_app", account_description="")

    settings.LIVE_CALLS_PER_MINUTE = 100
    live = alice.post("/requests", body).json()
    assert (live["approvals_required"], live["account_privilege"]) == (1, "RoleReadOnly")
    assert alice.post(f"/requests/{live['id']}/cancel").status_code == 200
    CallWindow.objects.all().delete()  # a new minute

    settings.LIVE_CALLS_PER_MINUTE = 1  # the first instance live, the second not
    synced = alice.post("/requests", body).json()
    assert (synced["approvals_required"], synced["account_privilege"]) == (3, "RoleReadWrite")
    assert synced["current_privilege"] == "RoleReadOnly"
