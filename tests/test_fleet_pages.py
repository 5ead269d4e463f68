"""Fleet requests on the server-rendered pages: the lists, the created accounts, the
progress partial, and the execute page's refusals (the browser flow: test_e2e_fleet.py)."""

from __future__ import annotations

import html

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
        signed_in(requester), row.pk, account_password="short", account_password_confirm="short"
    )
    assert answer.context["form"].errors
    assert "short" not in answer.content.decode().replace("too short", "")
    assert not estate.calls("CreateAccount")


def test_passwords_generated_per_instance_differ_and_are_shown_once(estate, requester, approver):
    row, _ = approved_fleet(estate, requester, approver)
    answer = run_page(signed_in(requester), row.pk, one_password_each="on")
    passwords = [run.password for run in answer.context["runs"]]
    assert len(set(passwords)) == 3
    page = answer.content.decode()
    assert all(html.escape(password) in page for password in passwords)
    assert answer["Cache-Control"].startswith("max-age=0") or "no-store" in answer["Cache-Control"]
    again = signed_in(requester).get(f"/requests/{row.pk}/fleet/execute/").content.decode()
    assert not any(html.escape(password) in again for password in passwords)
    assert AccountRequest.objects.get(pk=row.pk).status == AccountRequest.Status.CREATED


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
