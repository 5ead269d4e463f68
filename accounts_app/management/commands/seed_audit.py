"""Append N realistic, correctly chained audit events: for the benchmark and for
trying the audit page at scale.

The events continue the existing chain (verify_audit_chain still passes) and
are spread evenly over the last year, or since the newest existing event. Their
actors are inactive users named seed.*, who cannot sign in.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from accounts_app.audit.chain import HASHED_FIELDS, chain_signer, event_digest
from accounts_app.audit.writer import _locked_chain_head
from accounts_app.models import AuditChainHead, AuditEvent, Instance

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome

# Rough shares of a busy year: many sign-ins, then the request life cycle.
ACTION_WEIGHTS = {
    Action.LOGIN: 26,
    Action.LOGOUT: 12,
    Action.LOGIN_FAILED: 3,
    Action.REQUEST_SUBMITTED: 12,
    Action.REQUEST_APPROVED: 10,
    Action.REQUEST_REJECTED: 2,
    Action.REQUEST_CANCELLED: 1,
    Action.REQUEST_EXPIRED: 1,
    Action.EXECUTION_STARTED: 9,
    Action.ACCOUNT_CREATED: 8,
    Action.EXECUTION_FAILED: 1,
    Action.OUTCOME_UNKNOWN: 0.3,
    Action.RECONCILED: 0.3,
    Action.PERMISSION_DENIED: 2,
    Action.INSTANCES_SYNCED: 4,
    Action.EXPORT_DOWNLOADED: 0.5,
}
ABOUT_AN_ACCOUNT = {
    Action.REQUEST_SUBMITTED,
    Action.REQUEST_APPROVED,
    Action.REQUEST_REJECTED,
    Action.REQUEST_CANCELLED,
    Action.REQUEST_EXPIRED,
    Action.EXECUTION_STARTED,
    Action.ACCOUNT_CREATED,
    Action.EXECUTION_FAILED,
    Action.OUTCOME_UNKNOWN,
    Action.RECONCILED,
}
WITH_REQUEST_ID = {Action.ACCOUNT_CREATED, Action.EXECUTION_FAILED, Action.RECONCILED}
OUTCOMES = {
    Action.LOGIN_FAILED: Outcome.FAILURE,
    Action.EXECUTION_FAILED: Outcome.FAILURE,
    Action.OUTCOME_UNKNOWN: Outcome.UNKNOWN,
    Action.PERMISSION_DENIED: Outcome.DENIED,
}
# Error codes from the CreateAccount reference:
# https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-createaccount
ERROR_CODES = [
    "InvalidAccountName.Duplicate",
    "InvalidAccountName.Format",
    "IncorrectDBInstanceState",
    "Throttling.User",
    "InvalidAccountPrivilege.Malformed",
]
FIRST_NAMES = "wei min fang jie yang lei jing hui tao qiang na yan ling hao bo xin".split()
FAMILY_NAMES = "li wang zhang liu chen yang zhao huang zhou wu".split()
NAME_PARTS = (
    "app svc etl report cache order pay user search feed cart stock bill risk push msg "
    "geo auth promo sms crm ops log coupon"
).split()
PRIVILEGES = ["RoleReadOnly", "RoleReadWrite", "RoleRepl"]
REGIONS = {"cn-hangzhou": "bp1", "cn-shanghai": "uf6", "cn-beijing": "2ze", "cn-shenzhen": "wz9"}
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
]
COMMENTS = ["", "", "", "for the nightly report", "load test", "rotating credentials", "oncall"]


class Command(BaseCommand):
    help = "Append N realistic, correctly chained audit events (for the benchmark and demos)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--events", type=int, default=10_000, help="How many events to add.")
        parser.add_argument("--batch-size", type=int, default=5_000)
        parser.add_argument("--seed", type=int, default=7, help="Random seed, for repeatable data.")

    def handle(self, *args, events: int, batch_size: int, seed: int, **options) -> None:
        started = time.perf_counter()
        seeder = EventFactory(random.Random(seed), total=events)
        done = 0
        while done < events:
            count = min(batch_size, events - done)
            append_batch(seeder, count)
            done += count
            if options["verbosity"] > 1:
                self.stdout.write(f"{done} events")
        refresh_statistics()
        elapsed = time.perf_counter() - started
        self.stdout.write(f"Added {events} audit events in {elapsed:.1f} s.")


def append_batch(factory: EventFactory, count: int) -> None:
    """Sign and insert one batch, holding the chain lock as record_event() does.

    Plain executemany() rather than bulk_create(): building a million model
    instances and their SQL takes minutes, the tuples take seconds. The values
    go through the same adapters Django uses, so the rows read back exactly as
    record_event()'s would (verify_audit_chain passes).
    """
    ops = connection.ops
    with transaction.atomic():
        # The writer's own lock on the head (and its start of a chain whose row a
        # test's flush took).
        head = _locked_chain_head()
        factory.start_after(head)
        prev_hash, rows = head.hash, []
        for seq in range(head.seq + 1, head.seq + 1 + count):
            values = factory.event(seq)
            event_hash = event_digest(values, prev_hash, signer=factory.signer)
            last_event_at = values["created_at"]
            values["created_at"] = ops.adapt_datetimefield_value(last_event_at)
            rows.append([*(values[name] for name in HASHED_FIELDS), prev_hash, event_hash])
            prev_hash = event_hash
        with connection.cursor() as cursor:
            cursor.executemany(INSERT_SQL, rows)
        AuditChainHead.objects.filter(pk=head.pk).update(
            seq=seq, hash=prev_hash, last_event_at=last_event_at
        )


def _insert_sql() -> str:
    meta = AuditEvent._meta
    columns = [meta.get_field(name).column for name in HASHED_FIELDS] + ["prev_hash", "hash"]
    placeholders = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {meta.db_table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608


INSERT_SQL = _insert_sql()


def refresh_statistics() -> None:
    """Do now what autovacuum would do a little later, on PostgreSQL.

    Without statistics the planner treats a million new rows as an empty table
    (sequential scans and sorts, for what one index range serves), and without
    the visibility map the page's search cannot use index-only scans. Doing it
    here also keeps autovacuum from running in the middle of the benchmark.
    """
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {AuditEvent._meta.db_table}")


class EventFactory:
    """Makes plausible events with increasing times spread over the last year."""

    def __init__(self, rng: random.Random, *, total: int) -> None:
        self.rng = rng
        self.total = total
        self.made = 0
        self.signer = chain_signer()
        self.actors = seed_actors()
        self.instances = instance_pool(rng)
        self.account_names = account_name_pool(rng)
        self.actions = list(ACTION_WEIGHTS)
        self.cum_weights = list(itertools.accumulate(ACTION_WEIGHTS.values()))
        self.start: datetime | None = None
        self.step = timedelta(0)

    def start_after(self, head: AuditChainHead) -> None:
        if self.start is not None:
            return
        now = timezone.now()
        start = now - timedelta(days=365)
        newest = AuditEvent.objects.filter(seq=head.seq).values_list("created_at", flat=True)
        if newest and newest[0] > start:
            start = newest[0]
        self.start = start
        self.step = (now - start) / max(self.total, 1)

    def event(self, seq: int) -> dict:
        """The HASHED_FIELDS values of one event."""
        rng = self.rng
        # Each event falls somewhere in its own slot, so time never goes backwards.
        created_at = self.start + self.step * (self.made + rng.random() * 0.9)
        self.made += 1
        action = rng.choices(self.actions, cum_weights=self.cum_weights)[0]
        actor_id, actor_name = rng.choice(self.actors)
        values = dict.fromkeys(HASHED_FIELDS, "")
        values.update(
            seq=seq,
            created_at=created_at,
            actor_id=actor_id,
            actor_name=actor_name,
            source_ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            user_agent=rng.choice(USER_AGENTS),
            action=action.value,
            request_id=None,
            outcome=OUTCOMES.get(action, Outcome.SUCCESS).value,
            comment=rng.choice(COMMENTS),
        )
        if action == Action.LOGIN_FAILED:
            values.update(actor_id=None, actor_name="", comment=f"username: {actor_name}")
        if action in ABOUT_AN_ACCOUNT:
            values["instance_id"], values["region_id"] = rng.choice(self.instances)
            values["account_name"] = rng.choice(self.account_names)
            values["account_privilege"] = rng.choice(PRIVILEGES)
        if action in WITH_REQUEST_ID:
            values["alibaba_request_id"] = str(uuid.UUID(int=rng.getrandbits(128))).upper()
        if action == Action.EXECUTION_FAILED:
            values["error_code"] = rng.choice(ERROR_CODES)
        return values


def seed_actors() -> list:
    User = get_user_model()
    names = [f"seed.{given}.{family}" for family in FAMILY_NAMES for given in FIRST_NAMES[:4]]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    # Inactive, with an unusable password: nobody can sign in as them.
    User.objects.bulk_create(
        [
            User(username=name, is_active=False, password=make_password(None))
            for name in names
            if name not in existing
        ]
    )
    return list(User.objects.filter(username__in=names).values_list("pk", "username"))


def instance_pool(rng: random.Random, size: int = 300) -> list[tuple[str, str]]:
    known = list(Instance.objects.values_list("instance_id", "region_id")[:size])
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    while len(known) < size:
        region, code = rng.choice(list(REGIONS.items()))
        suffix = "".join(rng.choice(alphabet) for _ in range(15))
        known.append((f"r-{code}{suffix}", region))
    return known


def account_name_pool(rng: random.Random, size: int = 3_000) -> list[str]:
    # Account names: a lowercase letter first, then letters, digits or _ (at most 16).
    names: set[str] = set()
    while len(names) < size:
        name = f"{rng.choice(NAME_PARTS)}_{rng.choice(NAME_PARTS)}"
        if rng.random() < 0.6:
            name += f"_{rng.choice(['ro', 'rw', 'bi', 'job'])}{rng.randrange(1, 99)}"
        names.add(name[:16])
    return sorted(names)
