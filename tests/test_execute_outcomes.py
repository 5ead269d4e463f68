"""The execute step against the simulator: busy instances, accounts being created, and a
duplicate after an unknown outcome (docs/alibaba-api.md, "Busy instances", "Retries")."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts_app.audit import Origin
from accounts_app.models import AccountRequest, AuditEvent, CircuitBreaker, Instance
from accounts_app.services import workflow
from accounts_app.services.breaker import get_guarded_client
from accounts_app.services.preflight import run_preflight

pytestmark = pytest.mark.django_db

HEALTHY = "r-bp1ord5x0c9kq2m7wa"
PASSWORD = "Str0ng-Passw0rd"
Status = AccountRequest.Status
Action = AuditEvent.Action


def approved_request(requester, approver, name: str = "app_reader") -> AccountRequest:
    account_request = workflow.request_submit(
        requester=requester,
        instance=Instance.objects.get(instance_id=HEALTHY),
        account_name=name,
        account_privilege="RoleReadOnly",
        account_description="reporting",
        account_type="Normal",
        justification="Nightly reports.",
        origin=Origin.system("test"),
    )
    workflow.request_approve(
        request_id=account_request.pk, approver=approver, comment="", origin=Origin.system("t")
    )
    return account_request


def after_preflight(monkeypatch, change) -> None:
    """Run ``change`` right after the execute step's pre-flight: what the cloud does
    between the checks and the call (a colleague's account, a late first send)."""
    original = workflow.run_preflight

    def preflight_then_change(**kwargs):
        result = original(**kwargs)
        change()
        return result

    monkeypatch.setattr(workflow, "run_preflight", preflight_then_change)


def execute(account_request, requester):
    return workflow.request_execute(
        request_id=account_request.pk,
        user=requester,
        account_password=PASSWORD,
        origin=Origin.system("test"),
    )


def execute_page(user, account_request, *, post: bool):
    client = Client()
    client.force_login(user)
    url = reverse("request_execute", args=[account_request.pk])
    if not post:
        return client.get(url).content.decode()
    data = {"account_password": PASSWORD, "account_password_confirm": PASSWORD}
    return client.post(url, data, follow=True).content.decode()


@pytest.mark.parametrize(
    "code", ["IncorrectDBInstanceState", "OperationDeniedDBStatus", "LockTimeout"]
)
def test_a_busy_instance_keeps_the_approval_and_offers_to_try_again(
    estate, requester, approver, code
):
    account_request = approved_request(requester, approver)
    estate.add_fault("error", action="CreateAccount", code=code)

    html = execute_page(requester, account_request, post=True)

    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED
    assert account_request.finished_at is None
    assert 'data-outcome="instance-busy"' in html
    assert "The instance is busy: nothing was created" in html
    assert "Your request is still approved" in html
    assert f'href="{reverse("request_execute", args=[account_request.pk])}"' in html
    refused = account_request.events.get(action=Action.EXECUTION_FAILED)
    assert refused.error_code == code
    assert refused.outcome == AuditEvent.Outcome.FAILURE
    assert "app_reader" not in estate.account_names(HEALTHY)

    # The second try, once the instance is free, creates the account.
    execute_page(requester, account_request, post=True)
    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED
    assert "app_reader" in estate.account_names(HEALTHY)


def test_the_instance_refusing_a_second_account_keeps_the_approval(
    estate, requester, approver, monkeypatch
):
    # The real sequence: a colleague created an account between the pre-flight and the
    # call; the instance refuses this one while that one activates (no fault injected).
    estate.set_activation_delay(600)
    account_request = approved_request(requester, approver)
    after_preflight(
        monkeypatch,
        lambda: estate.client().create_account(
            region_id="cn-hangzhou",
            instance_id=HEALTHY,
            account_name="colleague_rw",
            account_password=PASSWORD,
        ),
    )

    result = execute(account_request, requester)

    assert result.instance_busy
    assert result.error.code == "IncorrectDBInstanceState"
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED
    assert account_request.events.filter(
        action=Action.EXECUTION_FAILED, error_code="IncorrectDBInstanceState"
    ).exists()


def test_an_account_being_created_blocks_execute_with_a_clear_reason(estate, requester, approver):
    estate.set_activation_delay(600)
    account_request = approved_request(requester, approver)
    estate.client().create_account(
        region_id="cn-hangzhou",
        instance_id=HEALTHY,
        account_name="colleague_rw",
        account_password=PASSWORD,
    )
    estate.clear_calls()

    page = execute_page(requester, account_request, post=False)
    assert 'class="blocked" data-check="account_in_progress"' in page
    assert "Another account is being created on this instance (colleague_rw)" in page

    refused = execute_page(requester, account_request, post=True)
    assert "Another account is being created on this instance" in refused
    assert estate.calls("CreateAccount") == []
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED

    estate.clock.advance(601)  # the colleague's account is Available now
    execute_page(requester, account_request, post=True)
    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED


def test_an_account_being_created_is_only_a_warning_before_execute(estate):
    estate.set_activation_delay(600)
    estate.client().create_account(
        region_id="cn-hangzhou",
        instance_id=HEALTHY,
        account_name="colleague_rw",
        account_password=PASSWORD,
    )

    result = run_preflight(instance=Instance.objects.get(instance_id=HEALTHY))

    assert result.check("account_in_progress").status == "warning"
    assert result.can_proceed


def test_a_duplicate_after_an_unknown_outcome_is_reconciled_not_failed(
    estate, requester, approver, monkeypatch
):
    account_request = approved_request(requester, approver)
    # First send: the connection breaks, nothing is known; the reconcile finds nothing.
    estate.add_fault("reset", action="CreateAccount")
    first = execute(account_request, requester)
    assert first.request.status == Status.APPROVED
    assert account_request.events.filter(action=Action.OUTCOME_UNKNOWN).exists()
    # The first send lands after all, late: after the second try's pre-flight.
    after_preflight(
        monkeypatch, lambda: estate.add_account(HEALTHY, "app_reader", privilege="RoleReadOnly")
    )

    second = execute(account_request, requester)

    assert second.error.code == "InvalidAccountName.Duplicate"
    assert second.created
    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED
    assert account_request.events.filter(
        action=Action.RECONCILED, outcome=AuditEvent.Outcome.SUCCESS
    ).exists()
    assert not account_request.events.filter(action=Action.EXECUTION_FAILED).exists()


def test_a_duplicate_without_an_unknown_outcome_is_still_a_failure(
    estate, requester, approver, monkeypatch
):
    account_request = approved_request(requester, approver)
    # Someone else took the name between the pre-flight and the call.
    after_preflight(monkeypatch, lambda: estate.add_account(HEALTHY, "app_reader"))

    result = execute(account_request, requester)

    assert not result.created
    account_request.refresh_from_db()
    assert account_request.status == Status.FAILED


def test_an_instance_that_vanished_is_marked_gone_without_opening_the_breaker(estate, settings):
    settings.KVSTORE_BREAKER_THRESHOLD = 1
    estate.add_instance(InstanceId="r-bp1vanish00000000", RegionId="cn-hangzhou")
    from accounts_app.services.inventory import sync_instances

    sync_instances(origin=Origin.system("test"))
    estate.simulator.store._data["instances"].pop("r-bp1vanish00000000")
    instance = Instance.objects.get(instance_id="r-bp1vanish00000000")

    result = run_preflight(instance=instance, client=get_guarded_client())

    assert [check.key for check in result.blockers] == ["instance"]
    assert "no longer exists" in result.blockers[0].message
    assert Instance.objects.get(instance_id="r-bp1vanish00000000").is_gone
    assert not CircuitBreaker.objects.filter(open_until__isnull=False).exists()
    assert not get_guarded_client().breaker.is_open()
