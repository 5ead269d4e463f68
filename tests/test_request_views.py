"""The workflow's pages, through Django's test client and the real simulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts_app.models import AccountRequest, AuditEvent, Instance
from tests.builders import approved_request, request_form_data, request_row
from tests.conftest import cast_member
from tests.demo_instances import HEALTHY, OLD_ENGINE, PASSWORD_FREE

pytestmark = pytest.mark.django_db

Status = AccountRequest.Status

PASSWORD = "Str0ng-Passw0rd"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def submit(user, **overrides):
    return signed_in(user).post(reverse("request_new"), request_form_data(**overrides))


def test_the_request_form_suggests_synced_instances_with_reasons(estate, requester):
    client = signed_in(requester)
    page = client.get(reverse("request_new")).content.decode()
    assert 'role="combobox"' in page
    assert 'id="kvstore-rules"' in page
    # The 2.8 instance is suggested, but disabled with its reason.
    answer = client.get(reverse("instance_choices"), {"instance_id": OLD_ENGINE}).content.decode()
    [option] = [item for item in answer.split("<li") if f'data-value="{OLD_ENGINE}"' in item]
    assert 'aria-disabled="true"' in option
    assert "2.8" in option
    assert (
        HEALTHY
        in client.get(reverse("instance_choices"), {"instance_id": "ord5x"}).content.decode()
    )


def test_a_valid_request_is_submitted_and_redirects_to_its_page(estate, requester):
    response = submit(requester)
    account_request = AccountRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("request_detail", args=[account_request.pk])
    assert account_request.status == AccountRequest.Status.PENDING


def test_bad_input_gets_a_message_at_the_field_keeps_the_values_and_changes_nothing(
    estate, requester
):
    response = submit(requester, account_name="Admin", justification="keep me")
    assert response.status_code == 200
    form = response.context["form"]
    assert "account_name" in form.errors
    page = response.content.decode()
    assert 'value="Admin"' in page
    assert "keep me" in page
    assert not AccountRequest.objects.exists()


def test_replication_is_refused_where_the_instance_does_not_allow_it(estate, requester):
    response = submit(requester, instance_id=PASSWORD_FREE, account_privilege="RoleRepl")
    assert "account_privilege" in response.context["form"].errors
    assert not AccountRequest.objects.exists()


def test_an_instance_that_cannot_take_an_account_is_refused(estate, requester):
    response = submit(requester, instance_id=OLD_ENGINE)
    assert "instance_id" in response.context["form"].errors
    assert not AccountRequest.objects.exists()


def test_the_live_preflight_answers_for_the_form(estate, requester):
    response = signed_in(requester).get(
        reverse("request_preflight"),
        {"instance_id": HEALTHY, "account_name": "app_reader", "account_privilege": "RoleReadOnly"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b"<html" not in response.content


def test_the_whole_flow_through_the_pages(estate, requester, approver):
    submit(requester)
    account_request = AccountRequest.objects.get()
    signed_in(approver).post(
        reverse("request_approve", args=[account_request.pk]), {"comment": "fine"}
    )
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.APPROVED
    client = signed_in(requester)
    page = client.get(reverse("request_execute", args=[account_request.pk]))
    assert page.status_code == 200
    response = client.post(
        reverse("request_execute", args=[account_request.pk]),
        {"account_password": PASSWORD, "account_password_confirm": PASSWORD},
    )
    # Post/redirect/get: the outcome is a page of its own, which a refresh asks again.
    result_url = reverse("request_execute_result", args=[account_request.pk])
    assert (response.status_code, response.url) == (302, result_url)
    for _refresh in range(2):
        body = client.get(result_url).content.decode()
        assert "The account was created" in body
        assert "AUTH app_reader:" in body
        assert "nothing to create" not in body
        assert PASSWORD not in body
    assert len(estate.calls("CreateAccount")) == 1
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.CREATED
    # The form of a created request answers with its result, not an empty password form.
    form = client.get(reverse("request_execute", args=[account_request.pk]))
    assert form.url == result_url


def test_the_request_page_counts_the_account_it_has_just_created(estate, requester, approver):
    account_request = approved_request(requester, approver)
    instance = account_request.instance
    before = instance.account_count
    assert before is not None
    client = signed_in(requester)
    detail = reverse("request_detail", args=[account_request.pk])
    assert f"{before} / 18" in client.get(detail).content.decode()
    client.post(
        reverse("request_execute", args=[account_request.pk]),
        {"account_password": PASSWORD, "account_password_confirm": PASSWORD},
    )
    assert f"{before + 1} / 18" in client.get(detail).content.decode()
    instance.refresh_from_db()
    assert instance.account_count == before + 1


def created_page(requester, approver, instance_id: str) -> bytes:
    account_request = approved_request(requester, approver)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        instance=Instance.objects.get(instance_id=instance_id)
    )
    client = signed_in(requester)
    client.post(
        reverse("request_execute", args=[account_request.pk]),
        {"account_password": PASSWORD, "account_password_confirm": PASSWORD},
    )
    return client.get(reverse("request_execute_result", args=[account_request.pk])).content


def test_the_created_page_gives_the_redis_6_auth_line_with_a_placeholder(
    estate, requester, approver
):
    body = created_page(requester, approver, PASSWORD_FREE)  # Redis 7.0
    assert b"AUTH app_reader &lt;password&gt;" in body
    assert b"AUTH app_reader:&lt;password&gt;" in body
    assert PASSWORD.encode() not in body


def test_the_created_page_of_redis_5_gives_only_the_user_colon_password_line(
    estate, requester, approver
):
    body = created_page(requester, approver, HEALTHY)  # Redis 5.0
    assert b"AUTH app_reader:&lt;password&gt;" in body
    assert b"AUTH app_reader &lt;password&gt;" not in body


def test_an_execution_refused_before_the_call_redirects_to_the_form_with_the_reason(
    estate, requester, approver, settings
):
    account_request = approved_request(requester, approver)
    AccountRequest.objects.filter(pk=account_request.pk).update(account_name="app_exists")
    estate.add_account(account_request.instance.instance_id, "app_exists")
    client = signed_in(requester)
    response = client.post(
        reverse("request_execute", args=[account_request.pk]),
        {"account_password": PASSWORD, "account_password_confirm": PASSWORD},
        follow=True,
    )
    assert response.redirect_chain == [(reverse("request_execute", args=[account_request.pk]), 302)]
    body = response.content.decode()
    assert "see the pre-flight checks" in body
    assert "see the checks below" not in body
    assert "data-next-steps" in body  # cancel, or copy with another name
    assert PASSWORD not in body
    assert not estate.calls("CreateAccount")


def test_a_mismatched_confirmation_is_refused_and_the_password_not_rendered_back(
    estate, requester, approver
):
    account_request = approved_request(requester, approver)
    response = signed_in(requester).post(
        reverse("request_execute", args=[account_request.pk]),
        {"account_password": PASSWORD, "account_password_confirm": PASSWORD + "x"},
    )
    assert "account_password_confirm" in response.context["form"].errors
    assert PASSWORD not in response.content.decode()
    assert not estate.calls("CreateAccount")


def test_a_refused_password_character_is_not_quoted_back_on_the_page(estate, requester, approver):
    refused = "Str0ng-Pass¤§"
    account_request = approved_request(requester, approver)
    response = signed_in(requester).post(
        reverse("request_execute", args=[account_request.pk]),
        {"account_password": refused, "account_password_confirm": refused},
    )
    assert [e.code for e in response.context["form"].errors.as_data()["account_password"]] == [
        "charset"
    ]
    page = response.content.decode()
    assert "¤" not in page and "§" not in page
    assert not estate.calls("CreateAccount")


def test_the_requester_cannot_approve_and_the_refusal_is_audited(estate, make_user):
    both = cast_member(make_user, "approver_requester")
    submit(both)
    account_request = AccountRequest.objects.get()
    signed_in(both).post(reverse("request_approve", args=[account_request.pk]), {"comment": ""})
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.PENDING


def test_rejecting_ones_own_request_is_refused_as_four_eyes_even_without_a_reason(
    estate, make_user
):
    both = cast_member(make_user, "approver_requester")
    submit(both)
    account_request = AccountRequest.objects.get()
    response = signed_in(both).post(
        reverse("request_reject", args=[account_request.pk]), {"comment": ""}
    )
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="permission_denied", actor=both).exists()
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.PENDING


def test_a_requester_cannot_open_the_approvals_page(estate, requester):
    response = signed_in(requester).get(reverse("approvals"))
    assert response.status_code == 403
    assert b"Approver" in response.content
    assert AuditEvent.objects.filter(action="permission_denied", actor=requester).exists()


def test_another_requester_cannot_see_a_request(estate, requester, other_requester):
    submit(requester)
    account_request = AccountRequest.objects.get()
    response = signed_in(other_requester).get(reverse("request_detail", args=[account_request.pk]))
    assert response.status_code == 403


def test_an_auditor_reads_a_request_but_cannot_act(estate, requester, auditor):
    submit(requester)
    account_request = AccountRequest.objects.get()
    client = signed_in(auditor)
    assert client.get(reverse("request_detail", args=[account_request.pk])).status_code == 200
    assert client.post(reverse("request_approve", args=[account_request.pk])).status_code == 403
    assert client.post(reverse("request_cancel", args=[account_request.pk])).status_code == 403


def test_copy_into_a_new_request_prefills_the_form(estate, requester):
    submit(requester)
    account_request = AccountRequest.objects.get()
    signed_in(requester).post(reverse("request_cancel", args=[account_request.pk]))
    page = signed_in(requester).get(reverse("request_new"), {"copy": account_request.pk})
    assert page.context["form"].initial["account_name"] == "app_reader"


def test_the_dashboard_lists_my_requests_and_those_waiting_for_me(estate, requester, approver):
    submit(requester)
    mine = signed_in(requester).get(reverse("dashboard"))
    assert len(mine.context["my_requests"]) == 1
    theirs = signed_in(approver).get(reverse("dashboard"), headers={"HX-Request": "true"})
    assert len(theirs.context["waiting"]) == 1
    assert b"<html" not in theirs.content


def test_the_dashboard_shows_a_requester_only_their_own_created_accounts(
    estate, requester, other_requester, approver
):
    account_request = approved_request(requester, approver)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        status=AccountRequest.Status.CREATED
    )

    def created_on_dashboard(user) -> int:
        return len(signed_in(user).get(reverse("dashboard")).context["recently_created"])

    assert created_on_dashboard(requester) == 1
    assert created_on_dashboard(other_requester) == 0
    assert created_on_dashboard(approver) == 1


def test_each_dashboard_list_shows_its_ten_newest_rows_even_when_they_overlap(
    estate, requester, other_requester, approver
):
    instance = Instance.objects.get(instance_id=HEALTHY)
    now = timezone.now()
    for number in range(12):  # each newer than the one before
        finished = now + timedelta(minutes=number)
        request_row(
            requester, instance, f"mine_{number}", status=Status.CREATED, finished_at=finished
        )
        request_row(other_requester, instance, f"theirs_{number}")
    newest = range(11, 1, -1)
    lists = signed_in(approver).get(reverse("dashboard")).context
    assert [row.account_name for row in lists["waiting"]] == [f"theirs_{n}" for n in newest]
    created = [f"mine_{n}" for n in newest]
    assert [row.account_name for row in lists["recently_created"]] == created
    as_requester = signed_in(requester).get(reverse("dashboard")).context
    assert [row.account_name for row in as_requester["my_requests"]] == created
    assert [row.account_name for row in as_requester["recently_created"]] == created
    assert as_requester["waiting"] == []
