"""Each page's query count is fixed: the same with a few rows as with many, and within
the issue's ceiling (bench/goals.py). Counts, not times: times depend on the machine.

What is counted: every query of the request through the whole middleware stack, the
session, the user and their roles included. The Alibaba calls of a live pre-flight are
HTTP, not queries; the task engine's enqueue rows are (the database backend).
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts_app.background.models import SyncRun
from accounts_app.models import AccountRequest, CircuitBreaker, Decision, Instance, KnownAccount
from accounts_app.services.breaker import KVSTORE_BREAKER
from bench.goals import MAX_QUERIES, MAX_QUERIES_LIVE
from tests.builders import instance_row, request_form_data, submitted_request

pytestmark = pytest.mark.django_db

Status = AccountRequest.Status
# Each status's share of the seeded requests, so that every dashboard list has rows.
BUSY = "r-bp1seed000000"
STATUSES = [Status.PENDING, Status.CREATED, Status.NEEDS_RECONCILIATION, Status.REJECTED]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    client.get(reverse("livez"))  # the first request after sign-in may write the session
    return client


def queries_of(client: Client, url: str, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries)


def seed(first: int, rows: int, requester, approver) -> None:
    """`rows` more instances, `rows` requests by the requester in mixed statuses, a
    decision on each decided one, and `rows` audit events."""
    now = timezone.now()
    last = Instance.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    Instance.objects.bulk_create(
        Instance(
            instance_id=f"r-bp1seed{number:06d}",
            name=f"seed-{number}",
            region_id="cn-hangzhou",
            engine_version="6.0",
            architecture_type="standard",
            status="Normal",
            account_count=number % 18,
            synced_at=now,
        )
        for number in range(first, first + rows)
    )
    instances = list(Instance.objects.filter(instance_id__startswith="r-bp1seed", pk__gt=last))
    requests = AccountRequest.objects.bulk_create(
        AccountRequest(
            requester=requester,
            instance=instance,
            account_name=f"seed_{first + number}",
            account_privilege="RoleReadOnly",
            justification="reports",
            approvals_required=1,
            status=STATUSES[number % len(STATUSES)],
            approved_at=now if STATUSES[number % len(STATUSES)] != Status.PENDING else None,
            finished_at=now if STATUSES[number % len(STATUSES)] != Status.PENDING else None,
            # Every account made is past its expiry and not deleted: overdue on the pages.
            expires_at=now - timedelta(days=1),
        )
        for number, instance in enumerate(instances)
    )
    Decision.objects.bulk_create(
        Decision(
            request=request,
            approver=approver,
            requester_id=requester.pk,
            verdict="approve" if request.status != Status.REJECTED else "reject",
        )
        for request in requests
        if request.status != Status.PENDING
    )
    KnownAccount.objects.bulk_create(
        KnownAccount(
            instance=instance,
            account_name=f"drift_{first + number}",
            drift=KnownAccount.Drift.values[number % len(KnownAccount.Drift.values)],
            created_by=requests[number] if number % 2 else None,
            first_seen_at=now,
            swept_at=now,
        )
        for number, instance in enumerate(instances)
    )
    # The first instance's page lists every account known of it: `rows` more each time.
    KnownAccount.objects.bulk_create(
        KnownAccount(
            instance=Instance.objects.get(instance_id=BUSY),
            account_name=f"known_{first + number}",
            created_by=request if number % 2 else None,
            first_seen_at=now,
            swept_at=now,
        )
        for number, request in enumerate(requests)
    )
    call_command("seed_audit", events=rows, stdout=io.StringIO())
    # A finished sync, as on any server after its first: the instances page shows it.
    SyncRun.objects.create(
        status=SyncRun.Status.DONE,
        regions=["cn-hangzhou"],
        progress={
            "cn-hangzhou": {"seen": rows, "created": rows, "updated": 0, "gone": 0, "failures": {}}
        },
    )


def page_counts(requester, approver, auditor) -> dict[str, int]:
    created = AccountRequest.objects.filter(status=Status.CREATED).order_by("-pk").first()
    as_requester, as_approver = signed_in(requester), signed_in(approver)
    as_auditor = signed_in(auditor)
    # Counted from the second look on: the first also writes the secret being enrolled
    # into the session (an UPDATE; here also the test transaction's savepoints).
    as_requester.get(reverse("two_factor"))
    return {
        "ceiling (/livez, signed in)": queries_of(as_auditor, reverse("livez")),
        "dashboard (approver)": queries_of(as_approver, reverse("dashboard")),
        "dashboard (requester)": queries_of(as_requester, reverse("dashboard")),
        "approvals": queries_of(as_approver, reverse("approvals")),
        "approvals, page 2": queries_of(as_approver, reverse("approvals"), page="2"),
        "requests, mine": queries_of(as_requester, reverse("request_list")),
        "requests, waiting": queries_of(as_approver, reverse("request_list"), tab="waiting"),
        "requests, all, filtered": queries_of(
            as_auditor, reverse("request_list"), tab="all", instance="seed", q="seed_", page="2"
        ),
        "instances": queries_of(as_requester, reverse("instances")),
        "instances, filtered": queries_of(as_requester, reverse("instances"), q="seed"),
        "instance picker": queries_of(
            as_requester, reverse("instance_choices"), instance_id="seed"
        ),
        "request detail, created": queries_of(
            as_approver, reverse("request_detail", args=[created.pk])
        ),
        "request form": queries_of(as_requester, reverse("request_new")),
        "audit": queries_of(as_auditor, reverse("audit")),
        "audit, filtered": queries_of(as_auditor, reverse("audit"), instance_id="r-bp1"),
        "created accounts": queries_of(as_auditor, reverse("created_accounts")),
        "created accounts, filtered": queries_of(
            as_auditor, reverse("created_accounts"), instance="seed", q="seed_"
        ),
        "drift": queries_of(as_auditor, reverse("drift")),
        "instance detail": queries_of(as_approver, reverse("instance_detail", args=[BUSY])),
        "drift, filtered": queries_of(
            as_auditor, reverse("drift"), instance_id="seed", drift="gone"
        ),
        "fleet request form": queries_of(as_requester, reverse("fleet_new")),
        "preferences": queries_of(as_requester, reverse("preferences")),
        "API tokens": queries_of(as_requester, reverse("api_tokens")),
        "two-factor setup": queries_of(as_requester, reverse("two_factor")),
    }


# What each page costs now; those above MAX_QUERIES miss the goal, and are held
# here so that they cannot grow.
EXPECTED = {
    "ceiling (/livez, signed in)": 3,
    "dashboard (approver)": 4,
    "dashboard (requester)": 3,
    "approvals": 4,
    "approvals, page 2": 4,
    "requests, mine": 3,
    "requests, waiting": 4,
    "requests, all, filtered": 3,
    # The page with its count; the filter choices; the last sync with the sync run (two
    # prepared queries cost less CPU than the one grouped query they replaced).
    "instances": 5,
    "instances, filtered": 5,
    "instance picker": 3,
    "request detail, created": 4,  # overdue: the deletions its expiry tried, with the request
    "request form": 3,  # with the approval policy it shows before submitting
    "audit": 3,
    "audit, filtered": 3,
    "created accounts": 4,  # the creations (their instances too), their requests and approvers
    "created accounts, filtered": 4,
    "drift": 4,
    "drift, filtered": 4,
    "instance detail": 5,  # the instance with the accounts the sweep saw, its requests
    "fleet request form": 3,
    # Where the account comes from and its second factor in one query; the chat links.
    "preferences": 4,
    "API tokens": 3,
    "two-factor setup": 3,  # whether a second factor is already on
}


def test_every_page_takes_the_same_queries_with_50_rows_as_with_500(requester, approver, auditor):
    seed(0, 50, requester, approver)
    few = page_counts(requester, approver, auditor)
    seed(50, 450, requester, approver)
    many = page_counts(requester, approver, auditor)
    assert few == many
    assert many == EXPECTED


def test_the_pages_that_meet_the_goal_are_the_ones_expected():
    within = {page for page, count in EXPECTED.items() if count <= MAX_QUERIES}
    assert within == set(EXPECTED) - OVER_GOAL


# Every page meets it now (the instance's page: the instance with its accounts known,
# its requests, the badge); a page that creeps over shows up here.
OVER_GOAL: set[str] = set()


def test_a_pending_request_with_its_live_preflight_has_a_fixed_count(estate, requester, approver):
    first = submitted_request(requester)
    second = submitted_request(requester, name="app_writer")
    as_approver = signed_in(approver)
    counts = {
        queries_of(as_approver, reverse("request_detail", args=[pk]))
        for pk in (first.pk, second.pk)
    }
    # The session, the user with their permissions, the request with all its page shows
    # (its decisions, events, deletions, another open request for its account), the
    # viewer's live-call budget, the circuit breaker's row (once for the pre-flight's two
    # Alibaba calls), who may still decide ("waiting for any of"), the nav's badge.
    assert counts == {7}
    assert max(counts) <= MAX_QUERIES_LIVE


def post_statements(requester, approver, before_each=lambda: None) -> dict[str, list[str]]:
    """Submit, approve (one approval: RoleReadOnly needs one) and execute through the
    pages, as the bench's flow_queries() posts them: each POST's statements.
    ``before_each``: run before each POST, outside its count."""
    # As on any server that has called Alibaba once: the breaker's row exists.
    CircuitBreaker.objects.get_or_create(name=KVSTORE_BREAKER)
    as_requester, as_approver = signed_in(requester), signed_in(approver)
    statements = {}
    before_each()
    with CaptureQueriesContext(connection) as submit:
        response = as_requester.post(reverse("request_new"), request_form_data())
    assert response.status_code == 302
    statements["submit"] = submit
    account_request = AccountRequest.objects.get()
    before_each()
    with CaptureQueriesContext(connection) as approve:
        response = as_approver.post(
            reverse("request_approve", args=[account_request.pk]), {"comment": "ok"}
        )
    assert response.status_code == 302
    statements["approve"] = approve
    password = "Str0ng-Passw0rd"
    before_each()
    with CaptureQueriesContext(connection) as execute:
        response = as_requester.post(
            reverse("request_execute", args=[account_request.pk]),
            {"account_password": password, "account_password_confirm": password},
        )
    assert response.status_code == 302  # post/redirect/get
    statements["execute"] = execute
    assert AccountRequest.objects.get().status == Status.CREATED
    return {post: [query["sql"] for query in captured] for post, captured in statements.items()}


def test_the_posts_take_a_fixed_number_of_queries(estate, requester, approver):
    counts = {post: len(sql) for post, sql in post_statements(requester, approver).items()}
    # In the test's transaction each atomic block is a savepoint (SAVEPOINT, RELEASE), and
    # the notifications wait for a commit that never comes (the inline task backend); the
    # approver wait is off. test_the_posts_meet_the_goal_as_production_counts_them counts
    # as make bench does.
    assert counts == {"submit": 12, "approve": 10, "execute": 16}


def counted_as_production_counts(make_user, settings):
    """Production's settings for the POSTs' counts, and a requester and an approver."""
    from accounts_app import roles
    from accounts_app.models import RoleGrant

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.APPROVER_WAIT_HOURS = 24
    requester = make_user("alice", roles.REQUESTERS)
    approvers = [make_user(f"dba{n}", roles.APPROVERS) for n in range(6)]
    for user in [requester, *approvers]:
        user.email = f"{user.username}@example.com"
        user.save()
    RoleGrant.objects.update(granted_at=timezone.now() - timedelta(days=2))
    return requester, approvers[0]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_posts_meet_the_goal_as_production_counts_them(estate, make_user, settings):
    """As `make bench` counts (bench/measure.py flow_queries): every atomic block its own
    BEGIN IMMEDIATE ... COMMIT (SQLite), the notifications rows of the database's task
    queue, the approver wait on; and as many deciders to mail as the bench has."""
    from bench.goals import POST_MAX_QUERIES

    statements = post_statements(*counted_as_production_counts(make_user, settings))

    counts = {post: len(sql) for post, sql in statements.items()}
    assert counts == {"submit": 13, "approve": 11, "execute": 17}
    assert all(counts[post] <= POST_MAX_QUERIES[post] for post in counts)
    # One task row a transition, whatever the number of recipients (six deciders here).
    tasks = {post: sum("dbtaskresult" in s for s in sql) for post, sql in statements.items()}
    assert tasks == {"submit": 1, "approve": 1, "execute": 1}
    # Each transaction is BEGIN IMMEDIATE ... COMMIT, not savepoints.
    if connection.vendor == "sqlite":
        assert sum(s == "BEGIN IMMEDIATE" for s in statements["approve"]) == 1
    # The circuit breaker reads its row once for the pre-flight's two calls, and the flash
    # message rides in its cookie: neither POST writes the session row.
    assert sum("circuitbreaker" in s for s in statements["submit"]) == 1
    assert not any("django_session" in s and s.startswith("UPDATE") for s in statements["submit"])
    assert not any("django_session" in s and s.startswith("UPDATE") for s in statements["approve"])


def test_the_approvals_badge_counts_up_to_99_then_says_99_plus(requester, approver):
    instance = instance_row("r-bp1badge")
    waiting = [
        AccountRequest(
            requester=requester,
            instance=instance,
            account_name=f"wait_{number}",
            account_privilege="RoleReadOnly",
            justification="reports",
            approvals_required=1,
        )
        for number in range(120)
    ]
    AccountRequest.objects.bulk_create(waiting[:99])
    page = signed_in(approver).get(reverse("dashboard")).content.decode()
    assert 'badge-count" title="waiting for your decision">99</span>' in page
    AccountRequest.objects.bulk_create(waiting[99:])
    page = signed_in(approver).get(reverse("dashboard")).content.decode()
    assert 'badge-count" title="waiting for your decision">99+</span>' in page


def fleet_page_counts(requester, approver, size: int) -> dict[str, int]:
    """A fleet of `size` instances, approved, run once (one instance failing): each of its
    pages, as its requester sees them."""
    from accounts_app.models import FleetTarget
    from accounts_app.services import workflow
    from tests.builders import origin_of

    prefix = f"r-bp1q{size:03d}"
    instances = [instance_row(f"{prefix}n{n:03d}", name=f"fleetq-{size}-{n}") for n in range(size)]
    row = AccountRequest.objects.create(
        requester=requester,
        instance=instances[0],
        account_name=f"fleet_{size}",
        account_privilege="RoleReadOnly",
        justification="reports",
        approvals_required=1,
        fleet_size=size,
    )
    FleetTarget.objects.bulk_create(
        FleetTarget(request=row, instance=instance, position=n)
        for n, instance in enumerate(instances)
    )
    workflow.request_approve(
        request_id=row.pk, approver=approver, comment="", origin=origin_of(approver)
    )
    FleetTarget.objects.filter(request=row).update(status=FleetTarget.Status.DONE)
    FleetTarget.objects.filter(request=row, position=0).update(status=FleetTarget.Status.FAILED)
    as_requester = signed_in(requester)
    return {
        "fleet form": queries_of(as_requester, reverse("fleet_new")),
        "fleet form, found": queries_of(as_requester, reverse("fleet_new"), name=prefix),
        "fleet detail": queries_of(as_requester, reverse("request_detail", args=[row.pk])),
        "fleet progress": queries_of(as_requester, reverse("fleet_progress", args=[row.pk])),
        "fleet execute": queries_of(as_requester, reverse("fleet_execute", args=[row.pk])),
        "fleet result": queries_of(as_requester, reverse("fleet_execute_result", args=[row.pk])),
    }


def test_the_fleet_pages_take_the_same_queries_with_3_instances_as_with_60(requester, approver):
    few = fleet_page_counts(requester, approver, 3)
    many = fleet_page_counts(requester, approver, 60)
    assert few == many
    assert many == FLEET_EXPECTED
    assert all(count <= MAX_QUERIES for count in FLEET_EXPECTED.values())


# The fleet's pages (none shows live data: the pre-flight runs on a POST). The detail is
# the request detail page's own count (the request with its decisions and events), one
# under the single request's (no approvals badge for a requester); the targets come with htmx.
FLEET_EXPECTED = {
    "fleet form": 3,  # with the privileges' lifetime rules its expiry field states
    "fleet form, found": 4,
    "fleet detail": 3,
    "fleet progress": 4,
    "fleet execute": 4,
    "fleet result": 4,
}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_post_after_another_workers_event_moves_the_chain_head_in_two_more(
    estate, make_user, settings
):
    """Several workers write one chain. The writer moves the head with a compare-and-set
    from the head its own thread wrote last (audit/writer.py): after another worker's
    event that misses, and the head is read and set again. `make bench` counts its submit
    so (the server wrote the events before it): 15, within the goal; an approve so counted
    is 13, over its 12."""
    from accounts_app.audit import Origin, record_event
    from accounts_app.models import AuditEvent
    from tests.threads import run_together

    def another_worker_writes() -> None:
        def write(_index: int) -> None:
            record_event(
                action=AuditEvent.Action.LOGIN,
                outcome=AuditEvent.Outcome.SUCCESS,
                origin=Origin.system("another worker"),
            )

        assert run_together(write, 1) == [("ok", None)]

    requester, approver = counted_as_production_counts(make_user, settings)
    statements = post_statements(requester, approver, before_each=another_worker_writes)

    counts = {post: len(sql) for post, sql in statements.items()}
    # Execute writes two events: only the first follows the other worker's.
    assert counts == {"submit": 15, "approve": 13, "execute": 19}


def test_the_admin_list_of_users_takes_the_same_queries_with_3_users_as_with_30(make_user):
    """Where each account comes from, its roles and its second factor are read with the
    users: the list asked three queries of every row."""
    from allauth.mfa.models import Authenticator
    from allauth.socialaccount.models import SocialAccount

    from accounts_app import roles

    admin = signed_in(make_user("root", superuser=True))
    url = reverse("admin:auth_user_changelist")

    def add_users(first: int, count: int) -> None:
        for number in range(first, first + count):
            user = make_user(f"person{number:02d}", roles.APPROVERS)
            claims = {"id_token": {"iss": "https://idp.example", "sub": str(number)}}
            SocialAccount.objects.create(user=user, provider="idp", uid=number, extra_data=claims)
            Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={})

    add_users(0, 3)
    few = queries_of(admin, url)
    add_users(3, 27)
    assert queries_of(admin, url) == few <= MAX_QUERIES + 2  # the admin's own: its counts
    listing = admin.get(url).content.decode()
    assert listing.count('<td class="field-comes_from">https://idp.example</td>') == 30
    assert listing.count('<td class="field-role_groups">Approvers</td>') == 30
    second_factor_on = '<td class="field-second_factor"><img src="/static/admin/img/icon-yes'
    assert listing.count(second_factor_on) == 30


def test_the_admin_list_of_decisions_takes_the_same_queries_with_50_rows_as_with_500(
    requester, approver, make_user
):
    """Each decision names its request, which names its instance: read with the rows."""
    admin = signed_in(make_user("root", superuser=True))
    url = reverse("admin:accounts_app_decision_changelist")
    seed(0, 50, requester, approver)
    few = queries_of(admin, url)
    seed(50, 450, requester, approver)
    assert queries_of(admin, url) == few <= MAX_QUERIES
