"""The circuit breaker around the Alibaba client, against the real simulator."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts_app.alibaba.errors import (
    AlibabaApiError,
    ApiUnreachable,
    InstanceNotFound,
    OutcomeUnknown,
)
from accounts_app.models import AccountRequest, AuditEvent, CircuitBreaker
from accounts_app.services import breaker as breaker_module
from accounts_app.services.breaker import Breaker, BreakerOpen, GuardedClient, is_transient
from tests.builders import approved_request
from tests.demo_instances import HEALTHY

pytestmark = pytest.mark.django_db

PASSWORD = "Str0ng-Passw0rd"
Status = AccountRequest.Status


class Clock:
    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guarded(kvstore, clock):
    """A guarded client that breaks after 3 failures for 30 s of the movable clock."""

    def make() -> GuardedClient:
        return GuardedClient(kvstore.client(), Breaker(threshold=3, cooldown=30, now=clock))

    return make


def describe(client) -> list:
    return client.describe_accounts(region_id="cn-hangzhou", instance_id=HEALTHY)


def fail_three_times(client) -> None:
    for _ in range(3):
        with pytest.raises(ApiUnreachable) as raised:
            describe(client)
        assert not isinstance(raised.value, BreakerOpen)


def test_it_opens_after_consecutive_transient_failures_and_then_makes_no_call(kvstore, guarded):
    kvstore.add_fault("http503", count=0)
    client = guarded()
    fail_three_times(client)
    calls = len(kvstore.calls())

    # Open: refused at once, with no call (no wait for a deadline), whatever the clock says.
    with pytest.raises(BreakerOpen) as raised:
        describe(client)
    assert len(kvstore.calls()) == calls
    assert "unavailable right now" in str(raised.value.human_message)
    assert isinstance(raised.value, ApiUnreachable)


def test_another_app_server_sees_the_open_breaker(kvstore, guarded):
    kvstore.add_fault("throttle", count=0)
    fail_three_times(guarded())
    kvstore.clear_faults()
    calls = len(kvstore.calls())
    with pytest.raises(BreakerOpen):
        describe(guarded())  # a new client and breaker object: the state is in the database
    assert len(kvstore.calls()) == calls


def test_an_answer_that_says_no_is_not_a_failure_and_resets_the_count(kvstore, guarded):
    client = guarded()
    kvstore.add_fault("http500", count=0)
    with pytest.raises(ApiUnreachable):
        describe(client)
    with pytest.raises(ApiUnreachable):
        describe(client)
    kvstore.clear_faults()
    with pytest.raises(AlibabaApiError) as raised:
        client.describe_accounts(region_id="cn-hangzhou", instance_id="r-doesnotexist0000")
    assert raised.value.code == "InvalidInstanceId.NotFound"
    assert CircuitBreaker.objects.get().consecutive_failures == 0


def test_after_the_cooldown_one_trial_call_closes_it(kvstore, guarded, clock):
    kvstore.add_fault("http503", count=0)
    fail_three_times(guarded())
    kvstore.clear_faults()
    clock.advance(31)
    assert describe(guarded()) is not None
    state = CircuitBreaker.objects.get()
    assert (state.consecutive_failures, state.open_until) == (0, None)
    describe(guarded())


def test_only_one_trial_goes_through_while_half_open(kvstore, clock):
    Breaker(threshold=1, cooldown=30, now=clock)._record_failure()
    clock.advance(31)
    first, second = (Breaker(threshold=1, cooldown=30, now=clock) for _ in range(2))
    trial = first._admit()
    assert trial is not None
    with pytest.raises(BreakerOpen):
        second._admit()


def test_a_failed_trial_opens_it_for_another_cooldown(kvstore, guarded, clock):
    kvstore.add_fault("http503", count=0)
    fail_three_times(guarded())
    clock.advance(31)
    with pytest.raises(ApiUnreachable) as raised:
        describe(guarded())
    assert not isinstance(raised.value, BreakerOpen)
    calls = len(kvstore.calls())
    with pytest.raises(BreakerOpen):
        describe(guarded())
    assert len(kvstore.calls()) == calls


def test_without_its_database_row_the_breaker_lets_calls_through(kvstore, guarded, monkeypatch):
    def unavailable(*args, **kwargs):
        raise DatabaseError("the database is away")

    monkeypatch.setattr(breaker_module.CircuitBreaker.objects, "filter", unavailable)
    assert describe(guarded()) is not None
    assert kvstore.calls("DescribeAccounts")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ApiUnreachable("Client.ConnectionFailed"), True),
        (OutcomeUnknown("Client.Timeout"), True),
        (AlibabaApiError("InternalError", http_status=500), True),
        (AlibabaApiError("Throttling.User", http_status=400), True),
        (AlibabaApiError("Rejected.Throttling", http_status=400), True),
        (AlibabaApiError("IncorrectDBInstanceState", http_status=403), False),
        (InstanceNotFound("InvalidInstanceId.NotFound"), False),
        (AlibabaApiError("InvalidAccountName.Duplicate", http_status=400), False),
        (BreakerOpen(), False),
        (ValueError("a bug is not an outage"), False),
    ],
)
def test_which_errors_count_as_failures(error, transient):
    assert is_transient(error) is transient


# --- Through the execute page --------------------------------------------------------


def open_breaker() -> None:
    CircuitBreaker.objects.update_or_create(
        name="kvstore",
        defaults={
            "consecutive_failures": 5,
            "open_until": timezone.now() + timedelta(seconds=30),
        },
    )


def test_the_execute_page_says_the_api_is_unavailable_at_once_and_claims_nothing(
    estate, requester, approver
):
    account_request = approved_request(requester, approver)
    open_breaker()
    estate.clear_calls()
    client = Client()
    client.force_login(requester)
    url = reverse("request_execute", args=[account_request.pk])

    page = client.get(url)
    assert "unavailable right now" in page.content.decode()
    assert estate.calls() == []  # at once: the page waited for no call

    response = client.post(
        url, {"account_password": PASSWORD, "account_password_confirm": PASSWORD}, follow=True
    )
    assert response.redirect_chain == [(url, 302)]
    assert "unavailable right now" in response.content.decode()
    assert estate.calls() == []
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED
    assert account_request.executed_by is None
    assert not account_request.events.filter(action=AuditEvent.Action.EXECUTION_STARTED).exists()


def test_the_execute_page_recovers_by_itself_after_the_cooldown(
    estate, requester, approver, settings
):
    settings.KVSTORE_BREAKER_COOLDOWN = 0.3
    account_request = approved_request(requester, approver)
    estate.add_fault("http503", count=0)
    for _ in range(5):
        with pytest.raises(ApiUnreachable):
            breaker_module.get_guarded_client().describe_accounts(
                region_id="cn-hangzhou", instance_id=HEALTHY
            )
    assert breaker_module.api_breaker().is_open()
    estate.clear_faults()
    time.sleep(0.35)

    client = Client()
    client.force_login(requester)
    response = client.post(
        reverse("request_execute", args=[account_request.pk]),
        {"account_password": PASSWORD, "account_password_confirm": PASSWORD},
        follow=True,
    )
    assert "The account was created" in response.content.decode()
    assert len(estate.calls("CreateAccount")) == 1
    assert not breaker_module.api_breaker().is_open()


def test_an_instance_that_does_not_exist_is_an_answer_not_a_failure(kvstore, guarded):
    client = guarded()
    for _ in range(5):
        with pytest.raises(InstanceNotFound):
            client.describe_instance_attribute(
                region_id="cn-hangzhou", instance_id="r-bp1gone0000000000"
            )

    assert not client.breaker.is_open()
    assert CircuitBreaker.objects.get(name=client.breaker.name).consecutive_failures == 0


# --- One read for the calls close together (a pre-flight's two) ------------------------


def reads_of_the_breaker(captured) -> int:
    return sum("circuitbreaker" in query["sql"] for query in captured)


def test_calls_close_together_read_the_breaker_once(kvstore, guarded):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    CircuitBreaker.objects.create(name="kvstore")  # as on a server that called Alibaba once
    client = guarded()
    with CaptureQueriesContext(connection) as captured:
        describe(client)
        describe(client)
    assert len(kvstore.calls("DescribeAccounts")) == 2
    assert reads_of_the_breaker(captured) == 1


def test_a_breaker_opened_by_another_server_is_seen_once_the_read_is_stale(kvstore, guarded, clock):
    client = guarded()
    describe(client)
    open_breaker_until(clock.now + timedelta(seconds=60))  # another app server opened it
    clock.advance(breaker_module.FRESH_FOR.total_seconds() + 1)
    calls = len(kvstore.calls())
    with pytest.raises(BreakerOpen):
        describe(client)
    assert len(kvstore.calls()) == calls


def test_a_failure_drops_the_kept_read(kvstore, guarded):
    client = guarded()
    describe(client)  # a clean read, kept
    kvstore.add_fault("http503", count=0)
    fail_three_times(client)  # each counted in the database, the count read again
    with pytest.raises(BreakerOpen):
        describe(client)  # opened by this client's own failures, seen at once


def open_breaker_until(until) -> None:
    CircuitBreaker.objects.update_or_create(
        name="kvstore", defaults={"consecutive_failures": 5, "open_until": until}
    )
