"""Fleet requests on the server-rendered pages: the lists, the created accounts, the
progress partial, and the execute page's refusals (the browser flow: test_e2e_fleet.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts_app.models import AccountRequest
from accounts_app.services import fleet, workflow
from tests.api_support import ApiClient, token_for
from tests.builders import origin_of
from tests.conftest import empty_instance

pytestmark = pytest.mark.django_db

PASSWORD = "Fl33t-Pag3s-ok"


def approved_fleet(estate, requester, approver, count: int = 3, prefix: str = "r-page"):
    instances = [empty_instance(estate, f"{prefix}{n}x") for n in range(count)]
    row = fleet.fleet_submit(
        requester=requester,
        instances=instances,
        account_name="order_ro",
        account_privilege="RoleReadOnly",
        account_description="",
        account_type="Normal",
        justification="Orders read every shard.",
        origin=origin_of(requester),
    )
    workflow.request_approve(
        request_id=row.pk, approver=approver, comment="", origin=origin_of(approver)
    )
    return row, instances


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def run_page(client: Client, pk: int, **data):
    return client.post(f"/requests/{pk}/fleet/execute/", data)


def test_the_dashboard_lists_a_fleet_with_its_progress(estate, requester, approver):
    row, _ = approved_fleet(estate, requester, approver)
    page = signed_in(requester).get("/").content.decode()
    assert "3 instances" in page
    assert "0/3" in page
    run_page(
        signed_in(requester),
        row.pk,
        account_password=PASSWORD,
        account_password_confirm=PASSWORD,
    )
    assert "3/3" in signed_in(requester).get("/").content.decode()


def test_the_created_accounts_list_each_instance(estate, requester, approver, auditor):
    row, instances = approved_fleet(estate, requester, approver)
    run_page(
        signed_in(requester), row.pk, account_password=PASSWORD, account_password_confirm=PASSWORD
    )
    page = signed_in(auditor).get("/audit/accounts/").content.decode()
    assert page.count(f'data-fleet="{row.pk}"') == 3
    listed = ApiClient(token_for(auditor)).get("/accounts").json()["items"]
    assert sorted(item["instance_id"] for item in listed) == sorted(
        i.instance_id for i in instances
    )


def test_a_typed_password_that_breaks_the_rules_is_refused_and_nothing_runs(
    estate, requester, approver
):
    row, _ = approved_fleet(estate, requester, approver)
    answer = run_page(
        signed_in(requester), row.pk, account_password="Qx7zzy", account_password_confirm="Qx7zzy"
    )
    assert answer.context["form"].errors
    assert "Qx7zzy" not in answer.content.decode()
    assert not estate.calls("CreateAccount")


def test_a_run_answers_with_a_redirect_to_its_result_page(estate, requester, approver):
    row, _ = approved_fleet(estate, requester, approver)
    client = signed_in(requester)
    answer = run_page(client, row.pk, account_password=PASSWORD, account_password_confirm=PASSWORD)
    assert answer.status_code == 302
    assert answer["Location"] == f"/requests/{row.pk}/fleet/execute/result/"
    result = client.get(answer["Location"])
    page = result.content.decode()
    assert result.status_code == 200 and "no-store" in result["Cache-Control"]
    assert "3 done, 0 failed, 0 unknown, of 3 instances." in page
    assert PASSWORD not in page
    assert len(estate.calls("CreateAccount")) == 3
    # Back on the execute page of a finished fleet: the result, nothing to post.
    assert client.get(f"/requests/{row.pk}/fleet/execute/")["Location"].endswith("/result/")


def test_passwords_generated_in_the_page_go_one_to_each_instance_and_never_back(
    estate, requester, approver
):
    row, instances = approved_fleet(estate, requester, approver)
    generated = {i.instance_id: f"Each-{n}-Gen3rated" for n, i in enumerate(instances)}
    client = signed_in(requester)
    answer = run_page(
        client,
        row.pk,
        one_password_each="on",
        **{f"password-{instance_id}": pw for instance_id, pw in generated.items()},
    )
    assert answer.status_code == 302
    page = client.get(answer["Location"]).content.decode()
    assert not any(password in page for password in generated.values())
    for instance in instances:
        assert estate.account_names(instance.instance_id).count("order_ro") == 1
    assert AccountRequest.objects.get(pk=row.pk).status == AccountRequest.Status.CREATED


def test_per_instance_passwords_missing_or_invalid_run_nothing(estate, requester, approver):
    row, instances = approved_fleet(estate, requester, approver)
    posted = {f"password-{i.instance_id}": "Fine-Passw0rd" for i in instances[:2]}
    posted[f"password-{instances[1].instance_id}"] = "short"
    answer = run_page(signed_in(requester), row.pk, one_password_each="on", **posted)
    assert answer.status_code == 200
    assert "generate them again" in answer.content.decode()
    assert "Fine-Passw0rd" not in answer.content.decode()
    assert not estate.calls("CreateAccount")


def test_without_javascript_the_page_offers_one_typed_password(estate, requester, approver):
    row, instances = approved_fleet(estate, requester, approver)
    page = signed_in(requester).get(f"/requests/{row.pk}/fleet/execute/").content.decode()
    assert '<div class="field" id="fleet-each-choice" hidden>' in page
    assert '<div id="fleet-each" hidden>' in page
    for instance in instances:  # a field per instance that will run, empty
        assert f'name="password-{instance.instance_id}" data-each-password-field>' in page


def test_a_refused_run_goes_back_to_the_execute_page_with_the_reason(estate, requester, approver):
    row, _ = approved_fleet(estate, requester, approver)
    AccountRequest.objects.filter(pk=row.pk).update(status=AccountRequest.Status.EXECUTING)
    client = signed_in(requester)
    answer = run_page(client, row.pk, account_password=PASSWORD, account_password_confirm=PASSWORD)
    assert answer["Location"] == f"/requests/{row.pk}/fleet/execute/"
    assert "being created right now" in client.get(answer["Location"], follow=True).content.decode()
    assert not estate.calls("CreateAccount")


def test_a_fleet_delete_runs_without_a_password_field(estate, requester, approver):
    instances = [empty_instance(estate, f"r-gone{n}x") for n in range(2)]
    for instance in instances:
        estate.add_account(instance.instance_id, "old_app")
    row = fleet.fleet_submit(
        requester=requester,
        instances=instances,
        account_name="old_app",
        account_privilege="RoleReadOnly",
        account_description="",
        account_type="Normal",
        justification="Retired.",
        origin=origin_of(requester),
        kind="delete",
    )
    workflow.request_approve(
        request_id=row.pk, approver=approver, comment="", origin=origin_of(approver)
    )
    client = signed_in(requester)
    page = client.get(f"/requests/{row.pk}/fleet/execute/").content.decode()
    assert "account_password" not in page
    assert run_page(client, row.pk)["Location"].endswith("/fleet/execute/result/")
    assert all("old_app" not in estate.account_names(i.instance_id) for i in instances)


def test_the_checks_of_a_fleet_count_in_the_live_call_budget(settings, estate, requester):
    settings.LIVE_CALLS_PER_MINUTE = 2
    instances = [empty_instance(estate, f"r-budget{n}x") for n in range(5)]
    estate.clear_calls()
    data = {
        "step": "check",
        "instance_ids": [i.instance_id for i in instances],
        "account_name": "order_ro",
        "account_privilege": "RoleReadOnly",
        "account_type": "Normal",
        "justification": "Budget.",
    }
    answer = signed_in(requester).post("/requests/new/fleet/", data)
    page = answer.content.decode()
    assert "3 of 5 instances were checked against the last sync, not live" in page
    asked = {call["params"].get("InstanceId") for call in estate.calls()}
    assert asked - {None} == {i.instance_id for i in instances[:2]}
    assert [check.throttled for check in answer.context["checked"]] == [False] * 2 + [True] * 3


def test_someone_else_cannot_run_a_fleet(estate, requester, approver, other_requester):
    row, _ = approved_fleet(estate, requester, approver)
    answer = run_page(
        signed_in(other_requester),
        row.pk,
        account_password=PASSWORD,
        account_password_confirm=PASSWORD,
    )
    assert answer.status_code == 403
    assert not estate.calls("CreateAccount")


def test_the_progress_partial_shows_each_instance(estate, requester, approver, auditor):
    row, instances = approved_fleet(estate, requester, approver)
    partial = signed_in(auditor).get(f"/requests/{row.pk}/fleet/progress/").content.decode()
    for instance in instances:
        assert f'data-instance="{instance.instance_id}" data-outcome="waiting"' in partial
    assert 'hx-trigger="every 1s"' in partial


@pytest.mark.django_db
def test_a_selector_finds_instances_by_tag_as_the_instance_list_does():
    from accounts_app.selectors.fleet import FleetSelector, selected_instances
    from tests.builders import instance_row

    instance_row("r-orders1", name="orders-a", tags={"env": "prod", "team": "orders"})
    instance_row("r-orders2", name="orders-b", tags={"env": "staging", "team": "orders"})
    instance_row(
        "r-pay1", name="pay-a", tags={"env": "prod", "team": "pay"}, region_id="cn-beijing"
    )

    def found(**fields) -> list[str]:
        return [row.instance_id for row in selected_instances(FleetSelector(**fields))]

    assert found(name="env:prod") == ["r-pay1", "r-orders1"]  # by region, then ID
    assert found(name="env:prod", region="cn-hangzhou") == ["r-orders1"]
    assert found(name="team:orders") == ["r-orders1", "r-orders2"]
    assert found(name="pay") == ["r-pay1"]


def test_a_fleet_that_ended_with_failed_instances_lists_each_account_it_created(
    estate, requester, approver, auditor
):
    row, instances = approved_fleet(estate, requester, approver, prefix="r-part")
    estate.add_fault(
        "error",
        action="CreateAccount",
        instance_id=instances[1].instance_id,
        code="IncorrectDBInstanceState",
    )
    run_page(
        signed_in(requester), row.pk, account_password=PASSWORD, account_password_confirm=PASSWORD
    )
    assert AccountRequest.objects.get(pk=row.pk).status == AccountRequest.Status.APPROVED

    as_auditor = signed_in(auditor)
    listed = as_auditor.get("/audit/accounts/").context["rows"]
    assert sorted(a.instance.instance_id for a in listed if a.request.pk == row.pk) == sorted(
        [instances[0].instance_id, instances[2].instance_id]
    )
    export = b"".join(as_auditor.get("/audit/accounts/export.csv")).decode()
    assert instances[0].instance_id in export and instances[2].instance_id in export
    assert instances[1].instance_id not in export
    # The API lists the same accounts, a page at a time.
    api = ApiClient(token_for(auditor))
    first = api.get("/accounts", limit=1).json()
    rest = api.get("/accounts", limit=50, cursor=first["next_cursor"]).json()
    assert rest["next_cursor"] is None
    assert sorted(item["instance_id"] for item in first["items"] + rest["items"]) == sorted(
        [instances[0].instance_id, instances[2].instance_id]
    )
