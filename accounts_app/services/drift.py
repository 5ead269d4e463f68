"""Every account known: the sweep reads DescribeAccounts on every instance, keeps what it
saw (KnownAccount), and compares it with what the dashboard did.

Drift is an account the dashboard never created (unmanaged), one it created that is gone
or whose privilege or description changed outside it, and one it deleted that is still
there. Built-in (``Super``) accounts are recorded and never drift. An account still
``Unavailable`` is settling after a change: it is judged at the next sweep. Each new
drift is written to the audit log once; each sweep tells approvers and auditors once, in one
summary (mail and chat), whatever it found on however many instances.

The sweep keeps within the API's rate: one DescribeAccounts per instance, paced
(``pause`` between calls), throttling answered by the client's backoff; an instance that
fails is left as it was and tried again at the next sweep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts_app import notifications
from accounts_app.alibaba.client import Account
from accounts_app.alibaba.errors import AlibabaApiError
from accounts_app.audit import Origin, messages, record_event
from accounts_app.models import AccountRequest, AuditEvent, FleetTarget, Instance, KnownAccount
from accounts_app.services.breaker import get_guarded_client

logger = logging.getLogger(__name__)

Drift = KnownAccount.Drift
Kind = AccountRequest.Kind
BUILT_IN = "Super"
# DescribeAccounts' quota is not published; ten calls a second keeps a sweep of 5,000
# instances under ten minutes and far from the account-wide limits of other operations.
DEFAULT_PAUSE = 0.1
# How many drifted accounts a sweep's summary names; the drift page lists them all.
SUMMARY_ITEMS = 20


@dataclass
class Expected:
    """What the dashboard's finished requests leave an account as."""

    present: bool
    privilege: str = ""
    description: str = ""
    created_by: AccountRequest | None = None


@dataclass(frozen=True)
class Found:
    """One new drift, as the sweep's summary lists it."""

    instance_id: str
    region_id: str
    account_name: str
    drift: str


@dataclass
class SweepReport:
    instances: int = 0
    failures: int = 0
    found: list[Found] = field(default_factory=list)

    @property
    def new_drift(self) -> int:
        return len(self.found)


def expected_accounts(instance: Instance) -> dict[str, Expected]:
    """Each account the dashboard acted on, replaying its done requests in order."""
    expected: dict[str, Expected] = {}
    # A time-boxed account a run of expire_accounts should have deleted by now is overdue:
    # it should not be there ("should have been deleted") until its deletion succeeds.
    overdue_before = timezone.now() - timedelta(seconds=settings.SCHEDULE_ACCOUNT_EXPIRY_SECONDS)
    for request in _done_on(instance):
        name = request.account_name
        if request.kind in (Kind.CREATE, Kind.ADOPT):
            expected[name] = Expected(
                True, request.account_privilege, request.account_description, request
            )
            if request.is_overdue(overdue_before):
                expected[name].present = False
        elif name in expected and request.kind == Kind.DELETE:
            expected[name].present = False
        elif name in expected and request.kind == Kind.PRIVILEGE:
            expected[name].privilege = request.account_privilege
        elif name in expected and request.kind == Kind.DESCRIPTION:
            expected[name].description = request.account_description
    return expected


def _done_on(instance: Instance) -> list[AccountRequest]:
    """What the dashboard did on the instance, oldest first: its own requests done there,
    and each fleet request whose run on this instance is done (a fleet's row names only
    its first instance; whether the fleet as a whole ended does not matter here)."""
    singles = AccountRequest.objects.filter(
        instance=instance, fleet_size=0, status=AccountRequest.Status.CREATED
    )
    done = [(request.finished_at, request.pk, request) for request in singles]
    targets = FleetTarget.objects.filter(instance=instance, status=FleetTarget.Status.DONE)
    done += [
        (target.finished_at, target.request_id, target.request)
        for target in targets.select_related("request")
    ]
    return [request for _finished, _pk, request in sorted(done, key=lambda row: row[:2])]


def drift_of(account: Account | None, expected: Expected | None) -> str:
    """The drift of one account ('' for none), from what was seen and what was done."""
    if account is not None and account.account_type == BUILT_IN:
        return ""
    if account is not None and account.account_status != "Available":
        return ""  # settling after a change: judged at the next sweep
    if account is None:
        return Drift.GONE if expected is not None and expected.present else ""
    if expected is None:
        return Drift.UNMANAGED
    if not expected.present:
        return Drift.UNDELETED
    if account.privilege != expected.privilege:
        return Drift.PRIVILEGE
    if expected.description and account.account_description != expected.description:
        return Drift.DESCRIPTION
    return ""


def sweep_instance(*, instance: Instance, client, origin: Origin) -> list[Found]:
    """Read the instance's accounts, keep them, record new drift; returns what is new."""
    return record_accounts(
        instance=instance, accounts=client.describe_accounts(**_where(instance)), origin=origin
    )


def record_accounts(*, instance: Instance, accounts: list[Account], origin: Origin) -> list[Found]:
    """Keep what DescribeAccounts listed of the instance (every account), and write each
    new drift to the audit log; returns the new drift. A fixed number of statements per
    instance, plus one event per new drift."""
    seen = {a.account_name: a for a in accounts}
    expected = expected_accounts(instance)
    now = timezone.now()
    found: list[Found] = []
    with transaction.atomic():
        # One sweep of an instance at a time (the hourly sweep, a refresh by hand, a
        # change followed to its end): the rows read here are the rows written.
        list(Instance.objects.select_for_update().filter(pk=instance.pk).values_list("pk"))
        known = {k.account_name: k for k in KnownAccount.objects.filter(instance=instance)}
        new_rows, changed_rows, seen_again, gone_again = [], [], [], []
        for name in sorted(set(seen) | set(known) | set(expected)):
            account, wanted = seen.get(name), expected.get(name)
            row = known.get(name) or KnownAccount(
                instance=instance, account_name=name, first_seen_at=now
            )
            before = row.drift if row.pk else ""
            was = _compared(row)
            _update(row, account, wanted, now)
            if not row.pk:
                new_rows.append(row)
            elif _compared(row) != was:
                changed_rows.append(row)
            else:
                (seen_again if account is not None else gone_again).append(row.pk)
            if row.drift and row.drift != before:
                found.append(Found(instance.instance_id, instance.region_id, name, row.drift))
                _record_drift(instance, row, origin)
        # Most rows are as they were: one UPDATE of their times, not one per row (Django's
        # bulk_update builds a CASE per field and row, slow in Python for 5,000 instances).
        KnownAccount.objects.bulk_create(new_rows)
        if changed_rows:
            KnownAccount.objects.bulk_update(changed_rows, UPDATED_FIELDS)
        if seen_again:
            KnownAccount.objects.filter(pk__in=seen_again).update(swept_at=now, last_seen_at=now)
        if gone_again:
            KnownAccount.objects.filter(pk__in=gone_again).update(swept_at=now)
        Instance.objects.filter(pk=instance.pk).update(accounts_swept_at=now)
        _settle(instance, seen)
    instance.accounts_swept_at = now
    return found


def _settle(instance: Instance, seen: dict[str, Account]) -> None:
    """The instance's changes still settling (background/follow.py) whose account is now
    Available again, or gone, are settled."""
    settling = AccountRequest.objects.filter(instance=instance, settling_since__isnull=False)
    settled = [
        pk
        for pk, name in settling.values_list("pk", "account_name")
        if name not in seen or seen[name].account_status == "Available"
    ]
    if settled:
        AccountRequest.objects.filter(pk__in=settled).update(settling_since=None)


UPDATED_FIELDS = [
    "drift",
    "swept_at",
    "created_by",
    "is_gone",
    "status",
    "account_type",
    "privilege",
    "description",
    "last_seen_at",
]


def _compared(row: KnownAccount) -> tuple:
    """What a sweep may change of a row, its times aside."""
    return tuple(getattr(row, f) for f in COMPARED_FIELDS)


COMPARED_FIELDS = [
    "drift",
    "created_by_id",
    "is_gone",
    "status",
    "account_type",
    "privilege",
    "description",
]


def _update(row: KnownAccount, account: Account | None, wanted: Expected | None, now) -> None:
    row.drift = drift_of(account, wanted)
    row.swept_at = now
    if wanted is not None and wanted.created_by is not None:
        row.created_by = wanted.created_by
    if account is None:
        row.is_gone, row.status = True, ""
        return
    row.is_gone = False
    row.account_type = account.account_type
    row.privilege = account.privilege
    row.status = account.account_status
    row.description = account.account_description[:256]
    row.last_seen_at = now


def _record_drift(instance: Instance, row: KnownAccount, origin: Origin) -> None:
    record_event(
        action=AuditEvent.Action.DRIFT_FOUND,
        outcome=AuditEvent.Outcome.SUCCESS,
        origin=origin,
        instance_id=instance.instance_id,
        region_id=instance.region_id,
        account_name=row.account_name,
        account_privilege=row.privilege,
        message=messages.message(f"drift.{row.drift}", **_drift_params(row)),
    )


def _drift_params(row: KnownAccount) -> dict:
    return {"privilege": row.privilege} if row.drift == Drift.PRIVILEGE else {}


def sweep_accounts(
    *,
    origin: Origin | None = None,
    client=None,
    instances: Iterable[Instance] | None = None,
    pause: float = DEFAULT_PAUSE,
    sleep: Callable[[float], None] = time.sleep,
) -> SweepReport:
    """Sweep every instance that has accounts (the `sweep_accounts` command and task);
    what it finds is told once, in one summary, whatever the number of instances."""
    origin = origin or Origin.system("sweep_accounts")
    client = client or get_guarded_client()
    report = SweepReport()
    rows = instances if instances is not None else sweepable_instances()
    for index, instance in enumerate(rows):
        if index and pause:
            sleep(pause)
        report.instances += 1
        try:
            report.found += sweep_instance(instance=instance, client=client, origin=origin)
        except AlibabaApiError as error:
            report.failures += 1
            logger.warning("sweep of %s failed: %s", instance.instance_id, error.code)
    tell(report.found)
    return report


def sweep_one(*, instance: Instance, origin: Origin, client=None) -> list[Found]:
    """Read one instance's accounts now (its page's "Refresh accounts now"), audited;
    an API error propagates, with nothing written."""
    client = client or get_guarded_client()
    accounts = client.describe_accounts(**_where(instance))
    found = record_accounts(instance=instance, accounts=accounts, origin=origin)
    with transaction.atomic():
        record_event(
            action=AuditEvent.Action.ACCOUNTS_SWEPT,
            outcome=AuditEvent.Outcome.SUCCESS,
            origin=origin,
            instance_id=instance.instance_id,
            region_id=instance.region_id,
            message=messages.message(
                "accounts.read_again", accounts=len(accounts), new_drift=len(found)
            ),
        )
    tell(found)
    return found


def tell(found: list[Found]) -> None:
    """One mail and one chat message for all the drift a sweep found."""
    if not found:
        return
    counts: dict[str, int] = {}
    for item in found:
        counts[item.drift] = counts.get(item.drift, 0) + 1
    notifications.drift_summary(
        counts=counts,
        items=[[f.instance_id, f.account_name, f.drift] for f in found[:SUMMARY_ITEMS]],
        regions=sorted({f.region_id for f in found}),
    )


def sweepable_instances():
    # Accounts exist from Redis 4.0 on; older engines answer InvalidEngineVersion.Format.
    return (
        Instance.objects.filter(is_gone=False)
        .exclude(engine_version__in=["2.8", "3.0"])
        .order_by("pk")
        .iterator()
    )


def _where(instance: Instance) -> dict[str, str]:
    return {"region_id": instance.region_id, "instance_id": instance.instance_id}
