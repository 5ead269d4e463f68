"""Live Alibaba calls made by page views are throttled per user (issue 23, "Also"): one
user refreshing an instance's accounts or reloading the pre-flight cannot spend the API's
rate limit, and open the shared circuit breaker, for everyone. Counted in the database, so every
web server shares one count."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts_app.models import CallWindow
from tests.demo_instances import HEALTHY

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def one_clock_minute():
    """A budget is per clock minute: the clock stands still inside one while each test
    counts. (One that crossed a minute's end found its budget renewed: CI saw a fourth
    refresh go through.)"""
    start = timezone.now().replace(second=1, microsecond=0)
    with mock.patch("django.utils.timezone.now", return_value=start):
        yield


THROTTLED = {
    "en": "You have asked Alibaba Cloud for live details many times in the last minute",
    "zh-hans": "您在过去一分钟内多次向阿里云查询实时信息",
}


def signed_in(user, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_refreshing_an_instances_accounts_stops_calling_the_api_once_a_users_budget_is_spent(
    settings, estate, approver, second_approver, language
):
    settings.LIVE_CALLS_PER_MINUTE = 3
    client = signed_in(approver, language)
    url = reverse("instance_accounts_refresh", args=[HEALTHY])
    estate.clear_calls()
    for _ in range(3):
        assert THROTTLED[language] not in client.post(url, follow=True).content.decode()
    calls = len(estate.calls())
    assert calls >= 3

    page = client.post(url, follow=True).content.decode()

    assert THROTTLED[language] in page
    assert len(estate.calls()) == calls  # no call made
    # Another user's budget is their own.
    other = signed_in(second_approver, language).post(url, follow=True).content.decode()
    assert THROTTLED[language] not in other
    assert len(estate.calls()) > calls


def test_the_live_preflight_falls_back_to_synced_data_when_throttled(settings, estate, requester):
    settings.LIVE_CALLS_PER_MINUTE = 2
    client = signed_in(requester)
    query = {"instance_id": HEALTHY, "account_name": "app_x", "account_privilege": "RoleReadOnly"}
    url = reverse("request_preflight")
    assert 'data-live="true"' in client.get(url, query).content.decode()
    assert 'data-live="true"' in client.get(url, query).content.decode()
    estate.clear_calls()

    page = client.get(url, query).content.decode()

    assert 'data-live="false"' in page and THROTTLED["en"] in page
    assert estate.calls() == []
    assert CallWindow.objects.get(key=f"live:{requester.pk}").calls == 2
