"""The JSON API through the simulator: the same workflow, rules, permissions and audit."""

from __future__ import annotations

import json

import pytest

from accounts_app.models import AccountRequest, ApiIdempotencyKey, ApiToken, AuditEvent
from tests.api_support import ApiClient, token_for
from tests.builders import approved_request, request_form_data, submitted_request
from tests.demo_instances import HEALTHY, REPL_OK

pytestmark = pytest.mark.django_db

PASSWORD = "Str0ng-Passw0rd"
Status = AccountRequest.Status


def test_a_script_requests_gets_approval_and_executes(estate, requester, approver):
    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))

    created = alice.post("/requests", request_form_data(account_name="ci_reader"))
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["status"] == "pending"

    approved = bob.post(f"/requests/{pk}/approve", {"comment": "fine"})
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"

    executed = alice.post(
        f"/requests/{pk}/execute", {"account_password": PASSWORD}, **{"Idempotency-Key": "k1"}
    )
    assert executed.status_code == 200, executed.content
    assert executed.json()["created"] is True
    assert executed.json()["request"]["status"] == "created"
    assert estate.account_names(HEALTHY).count("ci_reader") == 1
    assert PASSWORD not in executed.content.decode()


def test_the_same_idempotency_key_returns_the_first_outcome_without_a_second_call(
    estate, requester, approver
):
    pk = approved_request(requester, approver).pk
    alice = ApiClient(token_for(requester))
    first = alice.post(
        f"/requests/{pk}/execute", {"account_password": PASSWORD}, **{"Idempotency-Key": "same"}
    )
    calls = len(estate.calls("CreateAccount"))
    again = alice.post(
        f"/requests/{pk}/execute", {"account_password": PASSWORD}, **{"Idempotency-Key": "same"}
    )
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert len(estate.calls("CreateAccount")) == calls == 1


def test_the_same_key_with_another_request_is_a_422(estate, requester, approver):
    first = approved_request(requester, approver, name="first_one").pk
    second = approved_request(requester, approver, name="second_one").pk
    alice = ApiClient(token_for(requester))
    alice.post(
        f"/requests/{first}/execute", {"account_password": PASSWORD}, **{"Idempotency-Key": "k"}
    )
    reused = alice.post(
        f"/requests/{second}/execute", {"account_password": PASSWORD}, **{"Idempotency-Key": "k"}
    )
    assert reused.status_code == 422
    assert reused.json()["code"] == "IdempotencyKeyReused"
    assert AccountRequest.objects.get(pk=second).status == Status.APPROVED


def test_execute_needs_an_idempotency_key(estate, requester, approver):
    pk = approved_request(requester, approver).pk
    answer = ApiClient(token_for(requester)).post(
        f"/requests/{pk}/execute", {"account_password": PASSWORD}
    )
    assert answer.status_code == 400
    assert "Idempotency-Key" in answer.json()["errors"]
    assert len(estate.calls("CreateAccount")) == 0


def test_the_password_is_never_stored_or_echoed(estate, requester, approver):
    pk = approved_request(requester, approver).pk
    alice = ApiClient(token_for(requester))
    weak = alice.post(
        f"/requests/{pk}/execute", {"account_password": "xkcd¥q"}, **{"Idempotency-Key": "w"}
    )
    assert weak.status_code == 400
    assert "xkcd" not in weak.content.decode() and "\\u00a5" not in weak.content.decode()
    assert weak.json()["errors"]["account_password"][0]["code"] == "InvalidAccountPassword.Format"
    wrong_type = alice.post(
        f"/requests/{pk}/execute", {"account_password": ["Secret-Pa55"]}, **{"Idempotency-Key": "t"}
    )
    assert wrong_type.status_code == 400
    assert "Secret-Pa55" not in wrong_type.content.decode()
    alice.post(
        f"/requests/{pk}/execute", {"account_password": PASSWORD}, **{"Idempotency-Key": "k"}
    )
    stored = json.dumps(list(ApiIdempotencyKey.objects.values()), default=str)
    assert PASSWORD not in stored
    assert "k" in ApiIdempotencyKey.objects.values_list("key", flat=True)


def test_every_field_error_at_once_with_codes_in_the_callers_language(estate, requester):
    body = request_form_data(account_name="9admin!", account_description="-bad", justification="")
    english = ApiClient(token_for(requester)).post("/requests", body)
    chinese = ApiClient(token_for(requester), language="zh-hans").post("/requests", body)
    assert english.status_code == chinese.status_code == 400
    errors = english.json()["errors"]
    assert set(errors) == {"account_name", "account_description", "justification"}
    assert {e["code"] for e in errors["account_name"]} == {"InvalidAccountName.Format"}
    assert errors["account_description"][0]["code"] == "InvalidAccountDescription.Format"
    assert errors["justification"][0]["code"] == "MissingParameter"
    name_en = errors["account_name"][0]["message"]
    name_zh = chinese.json()["errors"]["account_name"][0]["message"]
    assert name_en != name_zh and any("\u4e00" <= ch <= "\u9fff" for ch in name_zh)


def test_a_reserved_name_gets_alibabas_forbid_code(estate, requester):
    answer = ApiClient(token_for(requester)).post(
        "/requests", request_form_data(account_name="root")
    )
    assert answer.json()["errors"]["account_name"][0]["code"] == "InvalidAccountName.Forbid"


def test_a_token_of_the_requester_cannot_approve(estate, make_user):
    frank = make_user("frank", "Approvers")
    pk = submitted_request(frank).pk
    answer = ApiClient(token_for(frank)).post(f"/requests/{pk}/approve", {"comment": "me"})
    assert answer.status_code == 403
    assert AccountRequest.objects.get(pk=pk).status == Status.PENDING


def test_repl_needs_two_approvals(estate, requester, approver, second_approver):
    pk = submitted_request(requester, instance_id=REPL_OK, privilege="RoleRepl").pk
    first = ApiClient(token_for(approver)).post(f"/requests/{pk}/approve", {})
    assert first.json()["status"] == "pending"
    second = ApiClient(token_for(second_approver)).post(f"/requests/{pk}/approve", {})
    assert second.json()["status"] == "approved"


def test_a_transition_no_longer_possible_is_a_409_with_the_state(estate, requester, approver):
    pk = approved_request(requester, approver).pk
    answer = ApiClient(token_for(approver)).post(f"/requests/{pk}/reject", {"comment": "late"})
    assert answer.status_code == 409
    assert answer.json()["status"] == "approved"


def test_a_request_you_may_not_see_is_a_404_like_one_that_does_not_exist(
    estate, requester, other_requester
):
    pk = submitted_request(requester).pk
    dave = ApiClient(token_for(other_requester))
    hidden, missing = dave.get(f"/requests/{pk}"), dave.get("/requests/999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


def test_a_token_never_does_more_than_its_scopes(estate, requester):
    reader = ApiClient(token_for(requester, "read"))
    answer = reader.post("/requests", request_form_data())
    assert answer.status_code == 403
    assert answer.json()["code"] == "Forbidden.Scope"
    assert not AccountRequest.objects.exists()


def test_a_token_never_does_more_than_its_user(estate, requester):
    answer = ApiClient(token_for(requester)).get("/audit/events")
    assert answer.status_code == 403
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PERMISSION_DENIED).exists()


def test_revoked_and_expired_tokens_are_refused(estate, requester):
    revoked, expired = token_for(requester), token_for(requester, days=-1)
    ApiToken.objects.filter(name="ci").update(revoked_at=ApiToken.objects.first().created_at)
    for token in (revoked, expired):
        assert ApiClient(token).get("/instances").status_code == 401
    assert ApiClient("rdk_not-a-token").get("/instances").status_code == 401


def test_token_use_is_audited_by_id_and_name_never_the_token(estate, requester):
    secret = token_for(requester, name="jira-bot")
    ApiClient(secret).post("/requests", request_form_data())
    token = ApiToken.objects.get()
    event = AuditEvent.objects.get(action=AuditEvent.Action.REQUEST_SUBMITTED)
    assert f"api token #{token.pk} jira-bot" in event.user_agent
    assert secret not in json.dumps(list(AuditEvent.objects.values()), default=str)
    assert token.last_used_at is not None


def test_rate_limits_per_token_answer_429_with_retry_after(estate, requester, settings):
    settings.API_RATE_LIMIT = 2
    busy, other = ApiClient(token_for(requester)), ApiClient(token_for(requester))
    answers = [busy.get("/instances").status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    limited = busy.get("/instances")
    assert int(limited["Retry-After"]) >= 1
    assert other.get("/instances").status_code == 200


def test_execute_by_a_token_older_than_the_policy_allows_is_refused(
    estate, requester, approver, settings
):
    pk = approved_request(requester, approver).pk
    secret = token_for(requester)
    settings.API_EXECUTE_TOKEN_MAX_AGE_HOURS = 0
    answer = ApiClient(secret).post(
        f"/requests/{pk}/execute", {"account_password": PASSWORD}, **{"Idempotency-Key": "k"}
    )
    assert answer.status_code == 403
    assert len(estate.calls("CreateAccount")) == 0


def test_session_calls_need_csrf(estate, requester, client):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(requester)
    session = ApiClient(None, client=browser)
    assert session.get("/instances").status_code == 200
    refused = session.post("/requests", request_form_data())
    assert refused.status_code == 403
    assert not AccountRequest.objects.exists()


def test_lists_filter_and_page_with_cursors(estate, requester, auditor):
    alice = ApiClient(token_for(requester))
    first = alice.get("/instances", limit=3)
    assert len(first.json()["items"]) == 3
    rest = alice.get("/instances", limit=100, cursor=first.json()["next_cursor"])
    seen = [i["instance_id"] for i in first.json()["items"] + rest.json()["items"]]
    assert len(seen) == len(set(seen)) and HEALTHY in seen
    assert alice.get("/instances", status="Changing").json()["items"][0]["status"] == "Changing"
    submitted_request(requester)
    carol = ApiClient(token_for(auditor))
    events = carol.get("/audit/events", action="request_submitted").json()["items"]
    assert [e["action"] for e in events] == ["request_submitted"]


def test_instance_detail_lists_live_accounts_and_preflights_a_name(estate, requester):
    answer = ApiClient(token_for(requester)).get(
        f"/instances/{HEALTHY}", account_name="app_reader", account_privilege="RoleReadOnly"
    )
    assert answer.status_code == 200
    assert answer.json()["accounts"] is not None
    assert answer.json()["preflight"]["can_proceed"] is True


def test_a_request_pre_flight_refuses_is_a_409_with_the_checks(estate, requester):
    estate.add_account(HEALTHY, "taken_name")
    answer = ApiClient(token_for(requester)).post(
        "/requests", request_form_data(account_name="taken_name")
    )
    assert answer.status_code == 409, answer.content
    assert answer.json()["code"] == "PreflightFailed"
    blocked = [c for c in answer.json()["preflight"]["checks"] if c["status"] == "blocked"]
    assert [c["key"] for c in blocked] == ["account_name"]


def test_a_request_lists_its_decisions_and_events_in_the_order_they_were_made(
    estate, requester, approver, second_approver, auditor
):
    from accounts_app.models import ApprovalPolicy
    from tests.builders import approve

    ApprovalPolicy.objects.update_or_create(
        account_privilege="RoleReadOnly", defaults={"approvals_required": 2}
    )
    account_request = submitted_request(requester)
    approve(account_request, second_approver, comment="first look")
    approve(account_request, approver, comment="second look")

    detail = ApiClient(token_for(auditor)).get(f"/requests/{account_request.pk}").json()

    actions = [(event["action"], event["actor"]) for event in detail["timeline"]]
    assert actions == [
        ("request_submitted", requester.username),
        ("request_approved", second_approver.username),
        ("request_approved", approver.username),
    ]
    assert [event["seq"] for event in detail["timeline"]] == sorted(
        AuditEvent.objects.filter(request=account_request).values_list("seq", flat=True)
    )
    said = [(d["approver"], d["verdict"], d["comment"]) for d in detail["decisions"]]
    assert said == [
        (second_approver.username, "approve", "first look"),
        (approver.username, "approve", "second look"),
    ]
    fresh = ApiClient(token_for(auditor)).get(
        f"/requests/{submitted_request(requester, name='app_other').pk}"
    )
    assert fresh.json()["decisions"] == []
    assert [event["action"] for event in fresh.json()["timeline"]] == ["request_submitted"]
