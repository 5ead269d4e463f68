"""A change followed to its end (background/follow.py): on the real database queue and
django-tasks-db's worker, against the simulator over a socket with its activation delay
on a movable clock. The request page says "in progress" until DescribeAccounts shows
the account settled, then the final state; a second change on the instance waits, and
its page says why."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts_app.audit import Origin
from accounts_app.background import follow
from accounts_app.models import AccountRequest, KnownAccount
from accounts_app.services import drift
from tests.builders import approve
from tests.demo_instances import HEALTHY
from tests.test_lifecycle_requests import NAME, execute, submit
from tests.test_tasks import DATABASE_BACKEND, run_worker

pytestmark = pytest.mark.django_db

Kind = AccountRequest.Kind
FOLLOW = "accounts_app.background.follow.follow_account_change"


@pytest.fixture
def settling(settings, estate):
    """An account made outside, a queue in the database, and a minute's activation."""
    settings.TASKS = DATABASE_BACKEND
    estate.add_account(HEALTHY, NAME, privilege="RoleReadOnly", description="by-hand")
    estate.set_activation_delay(60)
    return estate


def carried_out(requester, approver, kind, capture, **fields) -> AccountRequest:
    account_request = submit(requester, kind, **fields)
    approve(account_request, approver)
    with capture(execute=True):
        assert execute(account_request, requester).created
    account_request.refresh_from_db()
    return account_request


def looks_queued() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=FOLLOW, status="READY").order_by("pk"))


def due_now() -> None:
    DBTaskResult.objects.filter(task_path=FOLLOW, status="READY").update(run_after=timezone.now())


def page_of(user, account_request) -> str:
    client = Client()
    client.force_login(user)
    return client.get(reverse("request_detail", args=[account_request.pk])).content.decode()


def test_a_change_is_followed_until_it_settles_then_its_page_shows_the_final_state(
    settling, requester, approver, django_capture_on_commit_callbacks
):
    before = timezone.now()
    change = carried_out(
        requester,
        approver,
        Kind.PRIVILEGE,
        django_capture_on_commit_callbacks,
        account_privilege="RoleReadWrite",
    )

    assert change.settling_since is not None
    [first] = looks_queued()
    wait = timedelta(seconds=follow.FOLLOW_WAITS[0])
    assert before + wait <= first.run_after <= timezone.now() + wait
    assert "data-settling" in page_of(requester, change)
    settling.clear_calls()
    run_worker()
    assert settling.calls("DescribeAccounts") == []  # the look waits its turn

    due_now()
    run_worker()  # still Unavailable: a second look, later
    assert len(settling.calls("DescribeAccounts")) == 1
    [second] = looks_queued()
    assert second.args_kwargs["kwargs"] == {"request_id": change.pk, "attempt": 2}
    change.refresh_from_db()
    assert change.settling_since is not None
    assert "data-settling" in page_of(requester, change)

    settling.clock.advance(61)
    due_now()
    run_worker()

    change.refresh_from_db()
    assert change.settling_since is None
    assert looks_queued() == []
    page = page_of(requester, change)
    assert "data-settling" not in page and "data-settled" in page
    known = KnownAccount.objects.get(instance__instance_id=HEALTHY, account_name=NAME)
    assert (known.privilege, known.status) == ("RoleReadWrite", "Available")
    assert len(settling.calls("DescribeAccounts")) == 2


def test_a_second_change_on_the_instance_waits_and_its_page_says_why(
    settling, requester, approver, django_capture_on_commit_callbacks
):
    first = carried_out(
        requester,
        approver,
        Kind.DESCRIPTION,
        django_capture_on_commit_callbacks,
        account_description="nightly-etl",
    )
    second = submit(requester, Kind.DELETE, name="reporting_ro")
    approve(second, approver)
    client = Client()
    client.force_login(requester)

    waiting = client.get(reverse("request_execute", args=[second.pk])).content.decode()
    assert "data-instance-settling" in waiting
    assert f'href="/requests/{first.pk}/"' in waiting
    refused = client.post(reverse("request_execute", args=[second.pk]), {}, follow=True)
    assert "still being created or changed" in refused.content.decode()
    second.refresh_from_db()
    assert (second.status, settling.calls("DeleteAccount")) == (AccountRequest.Status.APPROVED, [])

    settling.clock.advance(61)
    due_now()
    run_worker()

    assert (
        "data-instance-settling"
        not in client.get(reverse("request_execute", args=[second.pk])).content.decode()
    )


def test_the_looks_are_bounded_and_the_next_sweep_settles_what_is_left(
    settling, requester, approver, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(follow, "FOLLOW_WAITS", (0, 0, 0))
    deletion = carried_out(requester, approver, Kind.DELETE, django_capture_on_commit_callbacks)
    settling.clear_calls()

    run_worker()

    assert len(settling.calls("DescribeAccounts")) == 3
    assert looks_queued() == []
    deletion.refresh_from_db()
    assert deletion.settling_since is not None

    settling.clock.advance(61)
    drift.sweep_accounts(origin=Origin.system("test"), pause=0)

    deletion.refresh_from_db()
    assert deletion.settling_since is None
    assert "is gone from the instance" in page_of(approver, deletion)
