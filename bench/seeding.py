"""The bench database's users, instances and requests, in bulk.

The audit events come from `manage.py seed_audit`; its vocabulary (names, regions,
error codes) is the one used here, and the open statuses are the model's.
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

# Imported once Django is set up (bench/run.py imports this module then).
from accounts_app.management.commands.seed_audit import (
    ERROR_CODES,
    FAMILY_NAMES,
    FIRST_NAMES,
    NAME_PARTS,
    REGIONS,
)
from accounts_app.models import OPEN_STATUSES

DESCRIPTIONS = ["", "orders-service", "BI-dashboards", "nightly-etl", "web-sessions", "数据分析"]
JUSTIFICATIONS = [
    "Nightly reports need read access.",
    "New service going live next sprint.",
    "Replacing a shared account with one per service.",
    "Incident follow-up: the job needs its own credentials.",
]
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass
class Actors:
    """The users the measurements sign in as, and the seeded population."""

    password: str
    bench: dict[str, object] = field(default_factory=dict)  # role -> User
    requesters: list = field(default_factory=list)
    approvers: list = field(default_factory=list)


def seed_users() -> Actors:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group

    from accounts_app import roles

    User = get_user_model()
    password = secrets.token_urlsafe(18)
    hashed = make_password(password)  # hashed once: PBKDF2 takes most of a second
    unusable = make_password(None)
    groups = {group.name: group for group in Group.objects.all()}
    plan = [
        ("requester", "bench.requester", [roles.REQUESTERS], False),
        ("approver", "bench.approver", [roles.APPROVERS], False),
        ("approver2", "bench.approver2", [roles.APPROVERS], False),
        ("auditor", "bench.auditor", [roles.AUDITORS], False),
        ("admin", "bench.admin", [], True),
    ]
    people = [(f"dev.{g}.{f}", [roles.REQUESTERS]) for f in FAMILY_NAMES for g in FIRST_NAMES[:8]]
    people += [
        (f"dba.{g}.{f}", [roles.APPROVERS]) for f in FAMILY_NAMES[:4] for g in FIRST_NAMES[8:11]
    ]
    people += [
        (f"sec.{g}.{f}", [roles.AUDITORS]) for f in FAMILY_NAMES[4:5] for g in FIRST_NAMES[11:14]
    ]
    users = [
        User(
            username=username,
            password=hashed,
            email=f"{username}@example.com",
            is_staff=superuser,
            is_superuser=superuser,
        )
        for _, username, _, superuser in plan
    ]
    users += [
        User(username=username, password=unusable, email=f"{username}@example.com")
        for username, _ in people
    ]
    User.objects.bulk_create(users)
    by_name = {user.username: user for user in User.objects.filter(username__contains=".")}
    memberships = [
        (by_name[username], names) for username, names in [(u, n) for _, u, n, _ in plan] + people
    ]
    Membership = User.groups.through
    Membership.objects.bulk_create(
        [Membership(user=user, group=groups[name]) for user, names in memberships for name in names]
    )
    actors = Actors(password=password)
    actors.bench = {role: by_name[username] for role, username, _, _ in plan}
    actors.requesters = [by_name[u] for u, names in people if roles.REQUESTERS in names]
    actors.approvers = [by_name[u] for u, names in people if roles.APPROVERS in names]
    actors.approvers += [actors.bench["approver"], actors.bench["approver2"]]
    return actors


def seed_instances(total: int, rng: random.Random, execution_instances: list[str]) -> None:
    """The simulator's instances as a sync would write them, then synthetic ones up to total.

    Not through sync_instances(): it would record an audit event "now" before
    seed_audit spreads a year of events (which start after the newest event), and a
    later sync would mark the synthetic instances of the synced regions as gone.
    """
    from django.conf import settings
    from django.utils import timezone

    from accounts_app.alibaba.client import get_client
    from accounts_app.models import Instance
    from accounts_app.services.inventory import fetch_details

    now = timezone.now()
    client = get_client()
    rows = []
    for region_id in settings.KVSTORE_REGIONS:
        for summary in client.describe_instances(region_id=region_id):
            details = fetch_details(summary.instance_id, summary.region_id, client)
            rows.append(
                Instance(instance_id=summary.instance_id, synced_at=now, **details.field_values())
            )
    assert set(execution_instances) <= {row.instance_id for row in rows}
    seen = {row.instance_id for row in rows}
    engines = ["7.0", "6.0", "5.0", "4.0", "2.8"]
    while len(rows) < total:
        region_id, code = rng.choice(list(REGIONS.items()))
        instance_id = f"r-{code}" + "".join(rng.choice(ALNUM) for _ in range(15))
        if instance_id in seen:
            continue
        seen.add(instance_id)
        engine = rng.choices(engines, weights=[30, 35, 25, 8, 2])[0]
        architecture = rng.choices(["standard", "cluster", "rwsplit"], weights=[60, 30, 10])[0]
        enterprise = rng.random() < 0.15
        rows.append(
            Instance(
                instance_id=instance_id,
                name=f"{rng.choice(NAME_PARTS)}-{rng.choice(['cache', 'store', 'queue'])}"
                f"-{len(rows)}",
                region_id=region_id,
                engine_version=engine,
                architecture_type=architecture,
                edition_type="Enterprise" if enterprise else "Community",
                instance_type="Tair" if enterprise else "Redis",
                status=rng.choices(["Normal", "Changing", "Flushing"], weights=[95, 4, 1])[0],
                instance_class="redis.master.small.default",
                connection_domain=f"{instance_id}.redis.rds.aliyuncs.com",
                port=6379,
                vpc_auth_mode="Open" if rng.random() < 0.1 else "Close",
                account_count=0 if engine == "2.8" else rng.randint(1, 18),
                is_gone=rng.random() < 0.02,
                synced_at=now - timedelta(minutes=rng.random() * 15),
            )
        )
    Instance.objects.bulk_create(rows, batch_size=1_000)


# Status weights by age of the request: only recent requests can still be open.
RECENT_STATUSES = {
    "pending": 35,
    "approved": 15,
    "created": 35,
    "rejected": 6,
    "cancelled": 4,
    "failed": 3,
    "needs_reconciliation": 2,
}
WEEKS_OLD_STATUSES = {
    "pending": 15,
    "created": 60,
    "rejected": 10,
    "cancelled": 6,
    "failed": 4,
    "expired": 5,
}
OLD_STATUSES = {"created": 70, "rejected": 10, "cancelled": 6, "expired": 10, "failed": 4}
APPROVED_ONCE = {"approved", "created", "failed", "needs_reconciliation"}


def seed_requests(total: int, rng: random.Random, actors: Actors) -> None:
    """A year of requests with their decisions, bulk-inserted, oldest first."""
    from django.utils import timezone

    from accounts_app.models import AccountRequest, Decision, Instance

    instances = list(
        Instance.objects.filter(is_gone=False, status="Normal")
        .exclude(engine_version="2.8")
        .values_list("pk", "engine_version", "architecture_type")
    )
    names = sorted(
        {
            f"{rng.choice(NAME_PARTS)}_{rng.choice(NAME_PARTS)}_{rng.randrange(1, 99)}"[:16]
            for _ in range(4_000)
        }
    )
    now = timezone.now()
    start = now - timedelta(days=365)
    step = (now - timedelta(hours=1) - start) / max(total, 1)
    open_pairs: set[tuple[int, str]] = set()
    # auto_now_add would stamp every seeded row with the time of the insert.
    stamped = [AccountRequest._meta.get_field("created_at"), Decision._meta.get_field("created_at")]
    for created_at_field in stamped:
        created_at_field.auto_now_add = False
    try:
        for first in range(0, total, 2_000):
            batch, decisions = [], []
            for number in range(first, min(total, first + 2_000)):
                created_at = start + step * (number + rng.random() * 0.9)
                batch.append(
                    _seeded_request(rng, actors, instances, names, open_pairs, created_at, now)
                )
            AccountRequest.objects.bulk_create(batch)
            for account_request in batch:
                decisions += _seeded_decisions(rng, actors, account_request, now)
            Decision.objects.bulk_create(decisions)
    finally:
        for created_at_field in stamped:
            created_at_field.auto_now_add = True


def _seeded_request(rng, actors, instances, names, open_pairs, created_at, now):
    from accounts_app.models import AccountRequest

    age = now - created_at
    weights = (
        RECENT_STATUSES
        if age < timedelta(days=2)
        else WEEKS_OLD_STATUSES
        if age < timedelta(days=13)
        else OLD_STATUSES
    )
    status = rng.choices(list(weights), weights=list(weights.values()))[0]
    instance_pk, engine, architecture = rng.choice(instances)
    name = rng.choice(names)
    while status in OPEN_STATUSES and (instance_pk, name) in open_pairs:
        name = rng.choice(names)
    if status in OPEN_STATUSES:
        open_pairs.add((instance_pk, name))
    repl_allowed = engine == "4.0" and architecture == "standard"
    privilege = rng.choices(
        ["RoleReadOnly", "RoleReadWrite", "RoleRepl"], weights=[55, 40, 5 if repl_allowed else 0]
    )[0]
    # One request in 200 is the bench requester's, so that their dashboard has a list.
    requester = actors.bench["requester"] if rng.random() < 0.005 else rng.choice(actors.requesters)
    later = min(now - timedelta(minutes=1), created_at + timedelta(hours=rng.uniform(0.2, 20)))
    approved_at = later if status in APPROVED_ONCE else None
    finished_at = None
    if status in ("created", "failed"):
        finished_at = min(now, later + timedelta(minutes=rng.uniform(1, 300)))
    elif status in ("rejected", "cancelled"):
        finished_at = later
    elif status == "expired":
        finished_at = min(now, created_at + timedelta(days=14))
    failed = status == "failed"
    return AccountRequest(
        requester=requester,
        instance_id=instance_pk,
        account_name=name,
        account_privilege=privilege,
        account_description=rng.choice(DESCRIPTIONS),
        account_type="Normal",
        justification=rng.choice(JUSTIFICATIONS),
        status=status,
        approvals_required=2 if privilege == "RoleRepl" else 1,
        created_at=created_at,
        approved_at=approved_at,
        finished_at=finished_at,
        executed_by=requester if status in ("created", "failed", "needs_reconciliation") else None,
        executing_since=later if status == "needs_reconciliation" else None,
        alibaba_request_id=str(uuid.UUID(int=rng.getrandbits(128))).upper()
        if status == "created"
        else "",
        error_code=rng.choice(ERROR_CODES) if failed else "",
        error_message="The API refused the call." if failed else "",
    )


def _seeded_decisions(rng, actors, account_request, now) -> list:
    from accounts_app.models import Decision

    status = account_request.status
    if status in APPROVED_ONCE:
        approvals, verdict = account_request.approvals_required, "approve"
    elif status == "rejected":
        approvals, verdict = 1, "reject"
    elif status == "pending" and account_request.approvals_required == 2:
        approvals, verdict = rng.randint(0, 1), "approve"
    else:
        return []
    deciders = rng.sample(
        [a for a in actors.approvers if a.pk != account_request.requester_id], approvals
    )
    decided_at = account_request.approved_at or account_request.finished_at or now
    return [
        Decision(
            request=account_request,
            approver=approver,
            requester_id=account_request.requester_id,
            verdict=verdict,
            comment="" if verdict == "approve" else "Use the shared reader instead.",
            created_at=decided_at,
        )
        for approver in deciders
    ]


# How the hourly sweep finds the seeded accounts: most as the dashboard made them, a few
# changed or deleted in the console, and some made there (the drift page's rows).
DRIFT_WEIGHTS = {"": 94, "privilege": 2, "description": 1, "gone": 2, "undeleted": 1}
UNMANAGED_SHARE = 0.05


def seed_known_accounts(rng: random.Random) -> None:
    """What a sweep of every instance would have written: an account per created
    request (the newest on each name), and on some instances one made in the console."""
    from django.utils import timezone

    from accounts_app.models import AccountRequest, Instance, KnownAccount

    now = timezone.now()
    made = (
        AccountRequest.objects.filter(status="created", kind="create", fleet_size=0)
        .order_by("instance_id", "account_name", "-pk")
        .values_list("pk", "instance_id", "account_name", "account_privilege")
    )
    rows, seen = [], set()
    for pk, instance_pk, name, privilege in made:
        if (instance_pk, name) in seen:
            continue
        seen.add((instance_pk, name))
        drift = rng.choices(list(DRIFT_WEIGHTS), weights=list(DRIFT_WEIGHTS.values()))[0]
        rows.append(
            KnownAccount(
                instance_id=instance_pk,
                account_name=name,
                account_type="Normal",
                privilege="RoleReadWrite" if drift == "privilege" else privilege,
                status="Available",
                description="changed in the console" if drift == "description" else "",
                is_gone=drift == "gone",
                created_by_id=pk,
                drift=drift,
                first_seen_at=now - timedelta(days=rng.randrange(1, 300)),
                swept_at=now - timedelta(minutes=rng.random() * 60),
            )
        )
    for instance_pk in Instance.objects.filter(is_gone=False).values_list("pk", flat=True):
        if rng.random() < UNMANAGED_SHARE:
            rows.append(
                KnownAccount(
                    instance_id=instance_pk,
                    account_name=f"console_{rng.choice(NAME_PARTS)}_{rng.randrange(1, 99)}",
                    account_type="Normal",
                    privilege=rng.choice(["RoleReadOnly", "RoleReadWrite"]),
                    status="Available",
                    drift="unmanaged",
                    first_seen_at=now - timedelta(days=rng.randrange(1, 300)),
                    swept_at=now - timedelta(minutes=rng.random() * 60),
                )
            )
    KnownAccount.objects.bulk_create(rows, batch_size=2_000)


def analyze(vendor: str) -> None:
    """On PostgreSQL, what autovacuum would do soon anyway, before it runs mid-benchmark."""
    if vendor != "postgresql":
        return
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("accounts_app_instance", "accounts_app_accountrequest"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        cursor.execute("VACUUM (ANALYZE) accounts_app_decision")
        cursor.execute("VACUUM (ANALYZE) accounts_app_knownaccount")
        cursor.execute("VACUUM (ANALYZE) auth_user")
