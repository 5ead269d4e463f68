"""Every account known: the sweep reads DescribeAccounts on every instance, keeps what it
saw (KnownAccount), and compares it with what the dashboard did.

Drift is an account the dashboard never created (unmanaged), one it created that is gone
or whose privilege or description changed outside it, and one it deleted that is still
there. Built-in (``Super``) accounts are recorded and never drift. An account still
``Unavailable`` is settling after a change: it is judged at the next sweep. Each new
drift is written to the audit log once, and the approvers are told.

The sweep keeps within the API's rate: one DescribeAccounts per instance, paced
(``pause`` between calls), throttling answered by the client's backoff; an instance that
fails is left as it was and tried again at the next sweep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts_app import notifications
from accounts_app.alibaba.client import Account
from accounts_app.alibaba.errors import AlibabaApiError
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import message as audit_message
from accounts_app.models import AccountRequest, AuditEvent, Instance, KnownAccount
from accounts_app.services.breaker import get_guarded_client

logger = logging.getLogger(__name__)

Drift = KnownAccount.Drift
Kind = AccountRequest.Kind
BUILT_IN = "Super"
# DescribeAccounts' quota is not published; ten calls a second keeps a sweep of 5,000
# instances under ten minutes and far from the account-wide limits of other operations.
DEFAULT_PAUSE = 0.1


@dataclass
class Expected:
    """What the dashboard's finished requests leave an account as."""

    present: bool
    privilege: str = ""
    description: str = ""
    created_by: AccountRequest | None = None


@dataclass
class SweepReport:
    instances: int = 0
    failures: int = 0
    new_drift: int = 0


def expected_accounts(instance: Instance) -> dict[str, Expected]:
    """Each account the dashboard acted on, replaying its done requests in order."""
    expected: dict[str, Expected] = {}
    done = AccountRequest.objects.filter(instance=instance, status=AccountRequest.Status.CREATED)
    for request in done.order_by("finished_at", "pk"):
        name = request.account_name
        if request.kind in (Kind.CREATE, Kind.ADOPT):
            expected[name] = Expected(
                True, request.account_privilege, request.account_description, request
            )
        elif name in expected and request.kind == Kind.DELETE:
            expected[name].present = False
        elif name in expected and request.kind == Kind.PRIVILEGE:
            expected[name].privilege = request.account_privilege
        elif name in expected and request.kind == Kind.DESCRIPTION:
            expected[name].description = request.account_description
    return expected


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


def sweep_instance(*, instance: Instance, client, origin: Origin) -> int:
    """Read the instance's accounts, keep them, record new drift; returns how much."""
    seen = {a.account_name: a for a in client.describe_accounts(**_where(instance))}
    expected = expected_accounts(instance)
    known = {k.account_name: k for k in KnownAccount.objects.filter(instance=instance)}
    now = timezone.now()
    found = 0
    with transaction.atomic():
        for name in sorted(set(seen) | set(known) | set(expected)):
            account, wanted = seen.get(name), expected.get(name)
            row = known.get(name) or KnownAccount(
                instance=instance, account_name=name, first_seen_at=now
            )
            before = row.drift if row.pk else ""
            _update(row, account, wanted, now)
            row.save()
            if row.drift and row.drift != before:
                found += 1
                _record_drift(row, origin)
    if found:
        notifications.drift_found(instance_id=instance.instance_id, count=found)
    return found


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


def _record_drift(row: KnownAccount, origin: Origin) -> None:
    record_event(
        action=AuditEvent.Action.DRIFT_FOUND,
        outcome=AuditEvent.Outcome.SUCCESS,
        origin=origin,
        instance_id=row.instance.instance_id,
        region_id=row.instance.region_id,
        account_name=row.account_name,
        account_privilege=row.privilege,
        message=audit_message(f"drift.{row.drift}"),
    )


def sweep_accounts(
    *,
    origin: Origin | None = None,
    client=None,
    instances: Iterable[Instance] | None = None,
    pause: float = DEFAULT_PAUSE,
    sleep: Callable[[float], None] = time.sleep,
) -> SweepReport:
    """Sweep every instance that has accounts (the `sweep_accounts` command and task)."""
    origin = origin or Origin.system("sweep_accounts")
    client = client or get_guarded_client()
    report = SweepReport()
    rows = instances if instances is not None else sweepable_instances()
    for index, instance in enumerate(rows):
        if index and pause:
            sleep(pause)
        report.instances += 1
        try:
            report.new_drift += sweep_instance(instance=instance, client=client, origin=origin)
        except AlibabaApiError as error:
            report.failures += 1
            logger.warning("sweep of %s failed: %s", instance.instance_id, error.code)
    return report


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
