"""Hostile answers from the API (issue 23, finding 3): an over-long RequestId or error
code, a NUL byte, an instance field longer than its column, an instance ID outside its
shape. Through the real client, against a proxy that rewrites the simulator's answers;
run with DATABASE_URL=postgres://... they meet PostgreSQL's refusals, which SQLite
would let pass."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts_app.audit import Origin
from accounts_app.models import AccountRequest, AuditEvent, Instance
from accounts_app.services import inventory, workflow
from tests.builders import approved_request
from tests.demo_instances import HEALTHY
from tests.hostile_upstream import hostile_endpoint

pytestmark = pytest.mark.django_db

PASSWORD = "Str0ng-Passw0rd"
Status = AccountRequest.Status
LONG_REQUEST_ID = "A" * 100
LONG_CODE = "Weird." + "x" * 300


def through(settings, simulator, rewrite):
    """Point the dashboard at a hostile proxy in front of the simulator."""
    proxy = hostile_endpoint(simulator.endpoint, rewrite)
    endpoint = proxy.__enter__()
    settings.KVSTORE_ENDPOINT = endpoint
    return proxy


def on(action: str, change):
    def rewrite(called: str, data: dict) -> dict:
        return change(data) if called == action else data

    return rewrite


def execute(account_request, requester):
    return workflow.request_execute(
        request_id=account_request.pk,
        user=requester,
        account_password=PASSWORD,
        origin=Origin.system("test"),
    )


@pytest.mark.parametrize(
    "request_id", [LONG_REQUEST_ID, "ABC\x00DEF", "AB/" * 30], ids=["long", "nul", "path"]
)
def test_a_created_account_is_recorded_whatever_its_request_id_looked_like(
    settings, estate, requester, approver, request_id
):
    account_request = approved_request(requester, approver)
    proxy = through(settings, estate, on("CreateAccount", lambda d: {**d, "RequestId": request_id}))
    try:
        result = execute(account_request, requester)
    finally:
        proxy.__exit__(None, None, None)
    account_request.refresh_from_db()
    assert result.created and account_request.status == Status.CREATED
    assert "app_reader" in estate.account_names(HEALTHY)
    stored = account_request.alibaba_request_id
    assert len(stored) <= 64 and "\x00" not in stored and "/" not in stored
    assert stored  # what fits of it is kept, to quote to Alibaba's support


@pytest.mark.parametrize("code", [LONG_CODE, "Bad\x00Code"], ids=["long", "nul"])
def test_a_refusal_with_a_hostile_code_fails_the_request_cleanly(
    settings, estate, requester, approver, code
):
    account_request = approved_request(requester, approver)

    def refuse(data: dict) -> dict:
        return {"RequestId": LONG_REQUEST_ID + "\x00", "Code": code, "Message": "no"}

    proxy = through(settings, estate, on("CreateAccount", refuse))
    try:
        result = execute(account_request, requester)
    finally:
        proxy.__exit__(None, None, None)
    account_request.refresh_from_db()
    assert not result.created and account_request.status == Status.FAILED
    assert len(account_request.error_code) <= 128 and "\x00" not in account_request.error_code
    event = AuditEvent.objects.get(request=account_request, action="execution_failed")
    assert "\x00" not in event.alibaba_request_id and len(event.alibaba_request_id) <= 64


def renamed(field: str, value: str):
    def change(data: dict) -> dict:
        for item in data["Instances"].get("DBInstanceAttribute") or []:
            if item.get("InstanceId") == HEALTHY:
                item[field] = value
        return data

    return on("DescribeInstanceAttribute", change)


def test_one_over_long_instance_field_skips_that_instance_and_syncs_the_rest(settings, kvstore, db):
    proxy = through(settings, kvstore, renamed("InstanceName", "n" * 500))
    try:
        report = inventory.sync_instances(origin=Origin.system("test"))
    finally:
        proxy.__exit__(None, None, None)
    assert HEALTHY in report.failures and "InstanceName" not in report.failures[HEALTHY]
    assert "name" in report.failures[HEALTHY]
    assert report.seen >= 1
    assert not Instance.objects.filter(instance_id=HEALTHY).exists()
    assert Instance.objects.exclude(instance_id=HEALTHY).exists()


def test_an_instance_renamed_with_a_nul_keeps_its_pages_working(settings, estate, requester):
    proxy = through(settings, estate, renamed("InstanceName", "bad\x00name" + "n" * 200))
    client = Client()
    client.force_login(requester)
    try:
        detail = client.get(reverse("instance_detail", args=[HEALTHY]))
        preflight = client.get(
            reverse("request_preflight"), {"instance_id": HEALTHY, "account_name": "app_x"}
        )
    finally:
        proxy.__exit__(None, None, None)
    assert detail.status_code == 200 and preflight.status_code == 200
    assert "\x00" not in Instance.objects.get(instance_id=HEALTHY).name


def test_an_instance_id_with_a_slash_is_skipped_and_the_list_still_renders(
    settings, kvstore, db, requester
):
    def slashed(data: dict) -> dict:
        items = data["Instances"]["KVStoreInstance"]
        if items:
            items.append({**items[0], "InstanceId": "r-evil/../x"})
            data["TotalCount"] = int(data.get("TotalCount") or 0) + 1
        return data

    proxy = through(settings, kvstore, on("DescribeInstances", slashed))
    try:
        report = inventory.sync_instances(origin=Origin.system("test"))
    finally:
        proxy.__exit__(None, None, None)
    assert any("r-evil" in key for key in report.failures)
    assert not Instance.objects.filter(instance_id__contains="/").exists()
    client = Client()
    client.force_login(requester)
    assert client.get(reverse("instances")).status_code == 200
