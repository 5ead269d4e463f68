"""Created accounts in Debian's Chromium, in English and in Chinese (issue 21): reached
from the navigation, one row per (instance, account) created, a fleet's instances too when
some of them failed, filtered by an instance's name, with both CSV exports."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from accounts_app.models import AccountRequest, FleetTarget
from tests.builders import instance_row, request_row
from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAV = {"en": "Created accounts", "zh-hans": "已创建的账号"}
INSTANCE = {"en": "Instance", "zh-hans": "实例"}


@pytest.fixture
def creations(requester):
    orders = instance_row("r-bp1orders0000001", name="orders-cache")
    billing = instance_row("r-bp1billing000001", name="billing-cache")
    failed = instance_row("r-bp1failed000001", name="orders-failed")
    single = request_row(requester, billing, "billing_ro", status=AccountRequest.Status.CREATED)
    # A fleet that ended with one instance failed: it stays approved, one account made.
    fleet = request_row(
        requester, orders, "orders_ro", status=AccountRequest.Status.APPROVED, fleet_size=2
    )
    FleetTarget.objects.create(
        request=fleet,
        instance=orders,
        position=0,
        status=FleetTarget.Status.DONE,
        finished_at=timezone.now(),
    )
    FleetTarget.objects.create(
        request=fleet, instance=failed, position=1, status=FleetTarget.Status.FAILED
    )
    return {"single": single, "fleet": fleet}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_created_accounts_from_the_navigation_filtered_and_exported(
    live_server, page, auditor, creations, language
):
    base = live_server.url
    sign_in(page, base, auditor.username)
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base}]
    )
    page.goto(f"{base}/")
    page.get_by_role("navigation").get_by_role("link", name=NAV[language]).click()
    expect(page).to_have_url(re.compile(r"/audit/accounts/$"))
    rows = page.locator("#created-results tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator('tr[data-instance="r-bp1orders0000001"]')).to_have_attribute(
        "data-fleet", str(creations["fleet"].pk)
    )
    expect(page.locator('tr[data-instance="r-bp1failed000001"]')).to_have_count(0)

    page.get_by_label(INSTANCE[language], exact=True).fill("orders")
    # Typing filters as it goes once htmx is ready; the button filters either way (htmx,
    # or the plain GET form while the page's scripts are still loading).
    page.locator('form[role="search"] button[type="submit"]').click()
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"instance=orders"))
    export = page.locator('a[href^="/audit/accounts/export.csv"]')
    expect(export).to_have_attribute("href", re.compile(r"instance=orders"))
    with page.expect_download() as download:
        page.locator('a[href^="/audit/accounts/export.excel.csv"]').click()
    body = open(download.value.path(), encoding="utf-8").read()
    assert body.startswith("\ufeff") and "orders_ro" in body and "billing_ro" not in body
