"""Time-boxed accounts, against the simulator over a socket: the policy (one lookup, one
floor, a lifetime per privilege), an expiry on a request (form, API, fleet, adoption),
the deletion at expiry through the lifecycle's delete path (exactly once, failures
retried, unknown outcomes reconciled, overdue until gone), reminders once each, and
extensions through approval."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts_app import policy
from accounts_app.audit.messages import event_text
from accounts_app.background import scheduler
from accounts_app.background.models import NotificationDelivery
from accounts_app.chat.messages import compose
from accounts_app.models import AccountRequest, ApprovalPolicy, AuditEvent, Instance
from accounts_app.services import drift, expiry, lifecycle, workflow
from accounts_app.services.workflow import TransitionError
from tests.api_support import ApiClient, token_for
from tests.builders import approve, origin_of, request_form_data, submitted_request
from tests.demo_instances import HEALTHY
from tests.test_fleet_api import execute as fleet_execute
from tests.test_fleet_api import fleet_body, fleet_of

pytestmark = pytest.mark.django_db

Kind = AccountRequest.Kind
Status = AccountRequest.Status
Action = AuditEvent.Action
PASSWORD = "Str0ng-Passw0rd!"
NAME = "app_reader"


def lifetime(privilege="RoleReadOnly", *, days=90, open_ended=False, kind=Kind.CREATE):
    row, _ = ApprovalPolicy.objects.update_or_create(
        kind=kind,
        account_privilege=privilege,
        defaults={"max_lifetime_days": days, "allow_no_expiry": open_ended},
    )
    return row


def made_account(requester, approver, *, days=30, name=NAME) -> AccountRequest:
    """An account created through the workflow, expiring in ``days`` days."""
    account_request = submitted_request(
        requester, name=name, expires_at=timezone.now() + timedelta(days=days)
    )
    approve(account_request, approver)
    result = workflow.request_execute(
        request_id=account_request.pk,
        user=requester,
        account_password=PASSWORD,
        origin=origin_of(requester),
    )
    assert result.created
    account_request.refresh_from_db()
    return account_request


def after(account_request, days=1):
    return account_request.expires_at + timedelta(days=days)


def on_simulator(simulator, name=NAME):
    return name in simulator.account_names(HEALTHY)


# --- The policy ---------------------------------------------------------------------------


def test_one_lookup_answers_every_kind_with_the_floor_applied_once(settings):
    ApprovalPolicy.objects.filter(account_privilege="RoleRepl").delete()
    assert policy.approvals_required(Kind.CREATE, "RoleRepl") == 2  # the default, no row
    ApprovalPolicy.objects.update_or_create(
        kind=Kind.CREATE, account_privilege="RoleReadWrite", defaults={"approvals_required": 3}
    )
    # A kind without a row of its own asks what creating that privilege asks.
    assert policy.approvals_required(Kind.EXTEND, "RoleReadWrite") == 3
    assert policy.approvals_required(Kind.DELETE, "RoleReadWrite") == 3
    ApprovalPolicy.objects.create(
        kind=Kind.EXTEND, account_privilege="RoleReadWrite", approvals_required=1
    )
    assert policy.approvals_required(Kind.EXTEND, "RoleReadWrite") == 1
    assert lifecycle.approvals_required(Kind.EXTEND, "RoleReadWrite") == 1
    assert workflow.approvals_required_for("RoleReadWrite") == 3
    settings.MIN_APPROVALS = 2
    assert policy.approvals_required(Kind.EXTEND, "RoleReadWrite") == 2
    assert policy.approvals_required(Kind.CREATE, "RoleReadOnly") == 2
    assert policy.approvals_required_by_privilege()["RoleReadOnly"] == 2


def test_the_lifetime_rules_refuse_too_long_past_and_missing_expiries():
    now = timezone.now()
    ninety = policy.Lifetime(90, False)
    assert policy.expiry_refusal(ninety, now + timedelta(days=89), now) == ""
    assert "90 days" in policy.expiry_refusal(ninety, now + timedelta(days=91), now)
    assert "future" in policy.expiry_refusal(ninety, now - timedelta(minutes=1), now)
    assert "needs an expiry" in policy.expiry_refusal(ninety, None, now)
    assert policy.expiry_refusal(policy.Lifetime(None, True), None, now) == ""
    assert policy.expiry_refusal(policy.Lifetime(None, True), now + timedelta(days=900), now) == ""
    assert policy.lifetime_for("RoleReadOnly") == policy.Lifetime(None, True)
    lifetime(days=30)
    assert policy.lifetime_for("RoleReadOnly") == policy.Lifetime(30, False)


def test_changing_a_lifetime_in_the_policy_is_audited():
    row = lifetime(days=90)
    row.max_lifetime_days = 30
    row.save()
    said = [
        event_text(event)
        for event in AuditEvent.objects.filter(
            action=Action.POLICY_CHANGED, message_id="admin.policy_lifetime_changed"
        ).order_by("seq")
    ]
    assert said[-1].startswith("Approval policy RoleReadOnly: longest lifetime 90 -> 30 days")
    assert len(said) == 2  # the row's creation, then the change


# --- An expiry on the request -----------------------------------------------------------------


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_form_takes_days_or_a_date_and_says_what_the_policy_refuses(estate, requester):
    lifetime(days=90)
    page = signed_in(requester)
    response = page.post(reverse("request_new"), request_form_data(expires_in_days="120"))
    assert response.status_code == 200
    assert "at most 90 days" in str(response.context["form"].errors["expires_in_days"])
    response = page.post(reverse("request_new"), request_form_data())
    assert "needs an expiry" in str(response.context["form"].errors["expires_in_days"])
    both = request_form_data(expires_in_days="7", expires_at="2099-01-01")
    response = page.post(reverse("request_new"), both)
    assert "not both" in str(response.context["form"].errors["expires_at"])
    assert not AccountRequest.objects.exists()

    in_ten_days = (timezone.localdate() + timedelta(days=10)).isoformat()
    response = page.post(reverse("request_new"), request_form_data(expires_at=in_ten_days))
    assert response.status_code == 302
    account_request = AccountRequest.objects.get()
    local = timezone.localtime(account_request.expires_at)
    assert (local.date().isoformat(), local.hour, local.minute) == (in_ten_days, 0, 0)


def test_the_refusal_is_said_in_chinese_too(estate, requester):
    lifetime(days=90)
    page = signed_in(requester)
    response = page.post(
        reverse("request_new"),
        request_form_data(expires_in_days="120"),
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    message = str(response.context["form"].errors["expires_in_days"])
    assert "90" in message and "at most" not in message


def test_a_change_carries_no_expiry(estate, requester):
    estate.add_account(HEALTHY, "legacy_etl")
    page = signed_in(requester)
    response = page.post(
        reverse("request_new"),
        request_form_data(kind="delete", account_name="legacy_etl", expires_in_days="7"),
    )
    assert "Only a new or adopted account" in str(response.context["form"].errors)


def test_approvers_see_the_expiry_on_the_page_and_in_the_mail(
    estate, requester, approver, django_capture_on_commit_callbacks
):
    approver.email = "bob@example.com"
    approver.save()
    with django_capture_on_commit_callbacks(execute=True):
        account_request = submitted_request(
            requester, expires_at=timezone.now() + timedelta(days=7)
        )
    expires = timezone.localtime(account_request.expires_at).strftime("%Y-%m-%d")
    response = signed_in(approver).get(reverse("request_detail", args=[account_request.pk]))
    assert "Expires" in response.text and expires in response.text
    in_utc = account_request.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert any(f"Expires: {in_utc} UTC" in m.body for m in mail.outbox)


def test_the_api_takes_expires_in_days_and_refuses_what_the_policy_does(estate, requester):
    lifetime(days=90)
    api = ApiClient(token_for(requester))
    body = {
        "instance_id": HEALTHY,
        "account_name": NAME,
        "account_privilege": "RoleReadOnly",
        "justification": "Nightly reports.",
    }
    refused = api.post("/requests", {**body, "expires_in_days": 91})
    assert refused.status_code == 400
    assert "expires_in_days" in refused.json()["errors"]
    refused = api.post("/requests", body)
    assert refused.json()["errors"]["expires_in_days"][0]["message"].startswith(
        "This privilege needs an expiry"
    )
    created = api.post("/requests", {**body, "expires_in_days": 30})
    assert created.status_code == 201
    answer = created.json()
    assert answer["expires_at"] is not None and answer["overdue"] is False
    row = AccountRequest.objects.get()
    assert timedelta(days=29, hours=23) < row.expires_at - timezone.now() <= timedelta(days=30)


def test_an_adoption_may_carry_an_expiry_checked_against_the_accounts_privilege(estate, requester):
    estate.add_account(HEALTHY, "legacy_etl", privilege="RoleReadWrite")
    lifetime("RoleReadWrite", days=30)
    instance = Instance.objects.get(instance_id=HEALTHY)
    fields = {
        "kind": Kind.ADOPT,
        "requester": requester,
        "instance": instance,
        "account_name": "legacy_etl",
        "account_privilege": "RoleReadOnly",  # ignored: the account's own counts
        "account_description": "",
        "account_type": "Normal",
        "justification": "Owned by the ETL team.",
        "origin": origin_of(requester),
    }
    with pytest.raises(TransitionError, match="at most 30 days"):
        lifecycle.request_submit(**fields, expires_at=timezone.now() + timedelta(days=60))
    adoption = lifecycle.request_submit(**fields, expires_at=timezone.now() + timedelta(days=20))
    assert adoption.expires_at is not None


# --- The deletion at expiry -------------------------------------------------------------------


def test_an_account_is_deleted_once_at_its_expiry_and_the_requester_told(
    estate, requester, approver, django_capture_on_commit_callbacks
):
    requester.email = "alice@example.com"
    requester.save()
    maker = made_account(requester, approver, days=30)
    assert expiry.expire_accounts(now=maker.expires_at - timedelta(minutes=1)).deleted == 0
    assert estate.calls("DeleteAccount") == []

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        report = expiry.expire_accounts(now=after(maker))

    assert report.deleted == 1
    assert len(estate.calls("DeleteAccount")) == 1
    assert not on_simulator(estate)
    maker.refresh_from_db()
    assert maker.expiry_done_at is not None and not maker.is_overdue(after(maker))
    deletion = maker.follow_ups.get()
    assert (deletion.kind, deletion.status) == (Kind.DELETE, Status.CREATED)
    done = deletion.events.get(action=Action.ACCOUNT_DELETED)
    assert done.message_id == "expiry.deleted" and done.actor is None  # the system did it
    assert maker.events.filter(action=Action.ACCOUNT_EXPIRED).count() == 1
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]

    # The next run finds nothing to do.
    assert expiry.expire_accounts(now=after(maker, days=2)).deleted == 0
    assert len(estate.calls("DeleteAccount")) == 1


def test_a_failed_deletion_leaves_the_account_overdue_and_the_next_run_retries(
    estate, requester, approver
):
    maker = made_account(requester, approver, days=10)
    estate.add_fault("error", action="DeleteAccount", code="IncorrectDBInstanceState", count=1)

    report = expiry.expire_accounts(now=after(maker))

    assert (report.deleted, report.overdue) == (0, 1)
    assert on_simulator(estate)
    maker.refresh_from_db()
    assert maker.is_overdue(timezone.now() + timedelta(days=11))
    assert maker.expiry_done_at is None
    failed = maker.follow_ups.get()
    assert failed.events.filter(action=Action.EXECUTION_FAILED).exists()
    overdue = ApiClient(token_for(requester)).get(f"/requests/{maker.pk}").json()
    assert overdue["overdue"] is False  # not due yet by the real clock
    AccountRequest.objects.filter(pk=maker.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert ApiClient(token_for(requester)).get(f"/requests/{maker.pk}").json()["overdue"]

    report = expiry.expire_accounts()

    assert report.deleted == 1
    assert len(estate.calls("DeleteAccount")) == 2
    assert not on_simulator(estate)


def test_an_unknown_outcome_is_reconciled_never_deleted_twice(
    estate, settings, requester, approver
):
    settings.KVSTORE_DEADLINE = 0.5
    maker = made_account(requester, approver, days=10)
    estate.add_fault("commit_then_timeout", action="DeleteAccount", delay=3.0)

    expiry.expire_accounts(now=after(maker))
    expiry.expire_accounts(now=after(maker))

    assert len(estate.calls("DeleteAccount")) == 1
    deletion = maker.follow_ups.get()
    assert deletion.status == Status.CREATED
    assert deletion.events.filter(action=Action.OUTCOME_UNKNOWN).exists()
    maker.refresh_from_db()
    assert maker.expiry_done_at is not None


def test_an_account_already_gone_is_not_deleted_again(estate, requester, approver):
    maker = made_account(requester, approver, days=10)
    estate.simulator.store.remove_account(HEALTHY, NAME)

    assert expiry.expire_accounts(now=after(maker)).deleted == 1

    assert estate.calls("DeleteAccount") == []
    assert maker.follow_ups.get().events.filter(message_id="expiry.gone").exists()


def test_an_open_request_on_the_account_holds_the_deletion_back(estate, requester, approver):
    maker = made_account(requester, approver, days=10)
    lifecycle.request_submit(
        kind=Kind.DESCRIPTION,
        requester=requester,
        instance=maker.instance,
        account_name=NAME,
        account_privilege="RoleReadOnly",
        account_description="nightly-etl",
        account_type="Normal",
        justification="Rename.",
        origin=origin_of(requester),
    )

    report = expiry.expire_accounts(now=after(maker))

    assert report.overdue == 1
    assert estate.calls("DeleteAccount") == []


def test_the_command_and_the_scheduler_run_it(estate, requester, approver, settings):
    maker = made_account(requester, approver, days=1)
    AccountRequest.objects.filter(pk=maker.pk).update(expires_at=timezone.now())
    call_command("expire_accounts")
    assert len(estate.calls("DeleteAccount")) == 1
    settings.SCHEDULE_ACCOUNT_EXPIRY_SECONDS = 300
    assert "account_expiry" in scheduler.tick()


# --- Reminders --------------------------------------------------------------------------------


def test_reminders_go_once_each_before_the_expiry(estate, requester, approver, settings):
    settings.EXPIRY_REMINDER_DAYS = [7, 1]
    requester.email = "alice@example.com"
    requester.save()
    maker = made_account(requester, approver, days=30)
    mail.outbox.clear()

    assert expiry.send_reminders(now=maker.expires_at - timedelta(days=8)) == 0
    for _ in range(2):
        expiry.send_reminders(now=maker.expires_at - timedelta(days=6))
    assert len(mail.outbox) == 1
    assert "within 7 days" in mail.outbox[0].subject
    for _ in range(2):
        expiry.send_reminders(now=maker.expires_at - timedelta(hours=12))
    assert len(mail.outbox) == 2
    assert "within 1 day" in mail.outbox[1].subject
    assert NotificationDelivery.objects.filter(sent_at__isnull=False).count() == 2


# --- Extensions -------------------------------------------------------------------------------


def extension(requester, maker, days):
    return lifecycle.request_submit(
        kind=Kind.EXTEND,
        requester=requester,
        instance=maker.instance,
        account_name=maker.account_name,
        account_privilege=maker.account_privilege,
        account_description="",
        account_type="Normal",
        justification="The project runs a month longer.",
        origin=origin_of(requester),
        expires_at=timezone.now() + timedelta(days=days),
    )


def test_an_extension_needs_approval_then_moves_the_expiry(estate, requester, approver):
    lifetime(days=90)
    maker = made_account(requester, approver, days=10)
    with pytest.raises(TransitionError, match="at most 90 days"):
        extension(requester, maker, 120)
    ask = extension(requester, maker, 60)
    assert ask.about == maker and ask.approvals_required == 1
    with pytest.raises(TransitionError, match="own request"):
        approve(ask, requester)
    approve(ask, approver)

    result = lifecycle.request_execute(
        request_id=ask.pk, user=requester, origin=origin_of(requester)
    )

    assert result.created
    maker.refresh_from_db()
    assert maker.expires_at == ask.expires_at
    event = ask.events.get(action=Action.EXPIRY_EXTENDED)
    assert event.message_id == "expiry.extended"
    assert estate.calls("DeleteAccount") == []
    # The old expiry passes: nothing is deleted.
    assert expiry.expire_accounts(now=timezone.now() + timedelta(days=11)).deleted == 0
    assert estate.calls("DeleteAccount") == []


def test_only_an_account_the_dashboard_made_can_be_extended(estate, requester):
    estate.add_account(HEALTHY, "legacy_etl")
    with pytest.raises(TransitionError, match="made no account"):
        lifecycle.request_submit(
            kind=Kind.EXTEND,
            requester=requester,
            instance=Instance.objects.get(instance_id=HEALTHY),
            account_name="legacy_etl",
            account_privilege="RoleReadOnly",
            account_description="",
            account_type="Normal",
            justification="Longer.",
            origin=origin_of(requester),
            expires_at=timezone.now() + timedelta(days=5),
        )


def test_an_overdue_account_is_shown_as_such_on_every_page_until_it_is_gone(
    estate, requester, approver, auditor
):
    maker = made_account(requester, approver, days=10)
    estate.add_fault("error", action="DeleteAccount", code="IncorrectDBInstanceState", count=1)
    expiry.expire_accounts(now=after(maker))
    # By the real clock: its expiry passed more than a run ago.
    AccountRequest.objects.filter(pk=maker.pk).update(
        expires_at=timezone.now() - timedelta(hours=1)
    )
    drift.sweep_accounts(instances=[maker.instance], pause=0)
    as_auditor = signed_in(auditor)

    pages = {
        "request": signed_in(requester).get(reverse("request_detail", args=[maker.pk])),
        "instance": as_auditor.get(reverse("instance_detail", args=[HEALTHY])),
        "created accounts": as_auditor.get(reverse("created_accounts")),
        "drift": as_auditor.get(reverse("drift"), {"drift": "undeleted"}),
    }

    for page in ("request", "instance", "created accounts"):
        assert "data-overdue" in pages[page].text, page
    # The request's page names the deletions tried: the failed one, with its error.
    failed = maker.follow_ups.get()
    callout = pages["request"].text.split("data-overdue-callout>")[1].split("</div>")[0]
    assert f'<a href="/requests/{failed.pk}/">#{failed.pk}</a>' in callout
    assert f"{failed.get_status_display()} <code>IncorrectDBInstanceState</code>" in callout
    assert f"<code>{NAME}</code>" in pages["drift"].text
    assert "Extend" in pages["request"].text

    expiry.expire_accounts()
    drift.sweep_accounts(instances=[maker.instance], pause=0)
    assert (
        "data-overdue"
        not in signed_in(requester).get(reverse("request_detail", args=[maker.pk])).text
    )
    assert "data-overdue" not in as_auditor.get(reverse("created_accounts")).text
    assert (
        f"<code>{NAME}</code>" not in as_auditor.get(reverse("drift"), {"drift": "undeleted"}).text
    )


def test_an_extension_through_the_api(estate, requester, approver):
    lifetime(days=90)
    maker = made_account(requester, approver, days=10)
    api = ApiClient(token_for(requester))
    body = {
        "kind": "extend",
        "instance_id": HEALTHY,
        "account_name": NAME,
        "account_privilege": "RoleReadOnly",
        "justification": "Longer.",
    }
    refused = api.post("/requests", {**body, "expires_in_days": 120})
    assert refused.status_code == 400
    assert "at most 90 days" in refused.json()["errors"]["expires_in_days"][0]["message"]
    assert api.post("/requests", body).json()["errors"]["expires_in_days"][0]["message"] == (
        "Give the new expiry."
    )
    in_sixty = (timezone.localdate() + timedelta(days=60)).isoformat()
    asked = api.post("/requests", {**body, "expires_at": in_sixty})
    assert asked.status_code == 201, asked.json()
    assert asked.json()["kind"] == "extend"
    approve(AccountRequest.objects.get(pk=asked.json()["id"]), approver)
    done = api.post(f"/requests/{asked.json()['id']}/execute", {}, **{"Idempotency-Key": "x1"})
    assert done.status_code == 200, done.json()
    maker.refresh_from_db()
    assert timezone.localtime(maker.expires_at).date().isoformat() == in_sixty


def test_a_fleets_expiry_deletes_the_account_on_every_instance(estate, requester, approver):
    lifetime(days=30)
    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))
    ids = fleet_of(estate, 3)
    too_long = alice.post("/requests", fleet_body(ids, expires_in_days=31))
    assert too_long.status_code == 400
    assert "expires_in_days" in too_long.json()["errors"]
    pk = alice.post("/requests", fleet_body(ids, expires_in_days=10)).json()["id"]
    bob.post(f"/requests/{pk}/approve", {"comment": "ok"})
    assert fleet_execute(alice, pk, "one").json()["created"] is True
    fleet = AccountRequest.objects.get(pk=pk)
    assert fleet.expires_at is not None

    report = expiry.expire_accounts(now=after(fleet))

    assert report.deleted == 1
    deleted = sorted(call["instance_id"] for call in estate.calls("DeleteAccount"))
    assert deleted == sorted(ids)
    assert all("order_ro" not in estate.account_names(i) for i in ids)
    fleet.refresh_from_db()
    assert fleet.expiry_done_at is not None


def test_a_fleet_left_with_a_failed_instance_still_loses_its_accounts_at_expiry(
    estate, requester, approver
):
    lifetime(days=30)
    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))
    ids = fleet_of(estate, 3)
    pk = alice.post("/requests", fleet_body(ids, expires_in_days=10)).json()["id"]
    bob.post(f"/requests/{pk}/approve", {"comment": "ok"})
    estate.add_fault(
        "error", action="CreateAccount", instance_id=ids[1], code="IncorrectDBInstanceState"
    )
    assert fleet_execute(alice, pk, "one").json()["request"]["status"] == "approved"
    fleet = AccountRequest.objects.get(pk=pk)

    report = expiry.expire_accounts(now=after(fleet))

    # The two accounts it made are deleted, the first instance's (the row's own) too, and
    # the approval ends: the failed instance can no longer get an account past its expiry.
    assert report.deleted == 1
    deleted = sorted(call["instance_id"] for call in estate.calls("DeleteAccount"))
    assert deleted == sorted([ids[0], ids[2]])
    assert all("order_ro" not in estate.account_names(i) for i in ids)
    fleet.refresh_from_db()
    assert fleet.status == AccountRequest.Status.EXPIRED and fleet.expiry_done_at is not None
    ended = AuditEvent.objects.get(request=fleet, action=AuditEvent.Action.REQUEST_EXPIRED)
    assert ended.message_id == "expiry.fleet_approval_ended"
    estate.clear_faults()
    again = fleet_execute(alice, pk, "two")
    assert again.status_code == 409 and create_calls_on(estate, ids[1]) == 1


def create_calls_on(estate, instance_id) -> int:
    return sum(call["instance_id"] == instance_id for call in estate.calls("CreateAccount"))


def test_the_chat_card_shows_the_expiry_to_approvers(estate, requester):
    account_request = submitted_request(requester, expires_at=timezone.now() + timedelta(days=7))
    in_utc = account_request.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    english = dict(compose("submitted", account_request, "en").fields)
    chinese = dict(compose("submitted", account_request, "zh-hans").fields)
    assert english["Expires"] == in_utc
    assert chinese["过期时间"] == in_utc
    no_expiry = submitted_request(requester, name="app_writer")
    assert "Expires" not in dict(compose("submitted", no_expiry, "en").fields)
