"""Call budgets live in the database, so several web servers share one budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.cache import cache

from accounts_app.models import CallWindow
from accounts_app.services.call_budgets import spend

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 11, 30, 12, 0, 10, tzinfo=UTC)


def spend_at(moment: datetime, key: str = "api:token:abc", limit: int = 2) -> int:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        return spend(key, limit=limit, window_seconds=60)


def test_calls_within_the_budget_pass_and_the_next_waits_for_the_window_to_end():
    assert [spend_at(NOON), spend_at(NOON)] == [0, 0]

    assert spend_at(NOON) == 50


def test_the_budget_is_kept_in_the_database_not_in_a_process_cache():
    spend_at(NOON)
    spend_at(NOON)
    cache.clear()

    assert spend_at(NOON) == 50
    assert CallWindow.objects.get(key="api:token:abc").calls == 2


def test_a_new_window_brings_a_new_budget():
    spend_at(NOON)
    spend_at(NOON)

    assert spend_at(NOON + timedelta(minutes=1)) == 0
    assert CallWindow.objects.filter(key="api:token:abc").count() == 2


def test_a_call_is_one_statement_whether_it_opens_its_window_or_not(
    django_assert_num_queries,
):
    with django_assert_num_queries(1):
        spend_at(NOON)
    with django_assert_num_queries(1):
        spend_at(NOON)
    with django_assert_num_queries(1):
        spend_at(NOON)


def test_each_key_has_its_own_budget():
    spend_at(NOON)
    spend_at(NOON)

    assert spend_at(NOON, key="live:7") == 0


def test_a_call_that_finds_its_window_opened_meanwhile_counts_there():
    CallWindow.objects.create(
        key="api:token:abc", window_start=datetime(2026, 11, 30, 12, 0, tzinfo=UTC), calls=1
    )

    assert spend_at(NOON) == 0
    assert spend_at(NOON) == 50


def test_a_budget_of_nothing_refuses_every_call():
    assert spend_at(NOON, limit=0) == 50
