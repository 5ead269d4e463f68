"""Time-boxed accounts: the deletion at expiry, and the reminders before it.

An account's expiry is kept on the request that made it (a creation or an adoption; an
approved extension moves it). When it comes, the dashboard deletes the account through
the lifecycle's own delete path: it opens a deletion request about that account, already
approved by the policy that allowed the expiry, and executes it like any other
(lifecycle.request_execute). So the deletion has the same exactly-once care as every
execution: the open-request constraint lets one deletion per account exist at a time,
the claim (approved -> executing) is a compare-and-set, and an unknown outcome is
reconciled with DescribeAccounts. Two workers running this at once make one
DeleteAccount call per account.

A deletion that fails leaves the account overdue (shown on its pages) and the next run
tries again; one that Alibaba refuses for good ends that deletion request (failed) and
the next run opens a new one. Reminders go to the requester EXPIRY_REMINDER_DAYS before,
each once (a NotificationDelivery row per reminder and recipient decides).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts_app import notifications
from accounts_app.alibaba.errors import AlibabaApiError
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import message
from accounts_app.background.models import NotificationDelivery
from accounts_app.models import AccountRequest, AuditEvent, Instance
from accounts_app.selectors import expiry as selectors
from accounts_app.services import lifecycle
from accounts_app.services.breaker import get_guarded_client
from accounts_app.services.lifecycle import moment
from accounts_app.services.workflow import TransitionError

logger = logging.getLogger(__name__)

Kind = AccountRequest.Kind
Status = AccountRequest.Status
Action = AuditEvent.Action
Outcome = AuditEvent.Outcome

# How one account on one instance stands after a run.
DELETED = "deleted"  # deleted now, earlier, or found gone: the expiry is carried out
OVERDUE = "overdue"  # not deleted yet: failed, busy, blocked or being deleted elsewhere


@dataclass
class ExpiryReport:
    deleted: int = 0
    overdue: int = 0
    reminders: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)  # "request:instance" -> outcome


def expire_accounts(
    *, origin: Origin | None = None, client=None, now: datetime | None = None
) -> ExpiryReport:
    """Delete every account whose expiry has come, then send the reminders due (the
    `expire_accounts` command and the scheduler's job)."""
    origin = origin or Origin.system("expire_accounts")
    now = now or timezone.now()
    report = ExpiryReport()
    for maker in selectors.due(now):
        if maker.is_fleet and maker.status == Status.APPROVED:
            _end_fleet_approval(maker, origin)
        outcomes = [
            _expire_one(maker, instance, origin=origin, client=client)
            for instance in selectors.instances_of(maker)
        ]
        for instance, outcome in zip(selectors.instances_of(maker), outcomes, strict=True):
            report.outcomes[f"{maker.pk}:{instance.instance_id}"] = outcome
        if all(outcome == DELETED for outcome in outcomes):
            report.deleted += 1
            _carried_out(maker, origin)
        else:
            report.overdue += 1
    report.reminders = send_reminders(now=now)
    return report


def _end_fleet_approval(maker: AccountRequest, origin: Origin) -> None:
    """A fleet still approved (an instance failed and may run again) when its expiry
    comes: the approval ends, so that no instance gets the account after its expiry and
    the request no longer holds its first instance's account open."""
    said = message("expiry.fleet_approval_ended", expires=moment(maker.expires_at))
    _close_approved(maker, Action.REQUEST_EXPIRED, said, Status.EXPIRED, origin)


def _expire_one(maker: AccountRequest, instance: Instance, *, origin: Origin, client) -> str:
    """Delete the maker's account on one instance, unless it is deleted already.

    DescribeAccounts first: an account already gone (deleted by another run a moment ago,
    or outside the dashboard) is never deleted again, and one still settling waits."""
    if _deleted_since(maker, instance):
        return DELETED
    current = _open_on(maker, instance)
    if current is not None and not _ours(current, maker):
        return OVERDUE  # another request on the account is open (said on its pages)
    if current is not None and current.status == Status.NEEDS_RECONCILIATION:
        lifecycle.reconcile_change(account_request=current, origin=origin, client=client)
        return DELETED if _deleted_since(maker, instance) else OVERDUE
    if current is not None and current.status != Status.APPROVED:
        return OVERDUE  # being deleted by another run right now
    client = client or get_guarded_client()
    try:
        accounts = client.describe_accounts(
            region_id=instance.region_id,
            instance_id=instance.instance_id,
            account_name=maker.account_name,
        )
    except AlibabaApiError as error:
        logger.warning("expiry of request %s: no account list (%s)", maker.pk, error.code)
        return OVERDUE
    account = next((a for a in accounts if a.account_name == maker.account_name), None)
    if account is None and _deleted_since(maker, instance):
        return DELETED  # another run deleted it since the first look
    if account is not None and account.account_status != "Available":
        return OVERDUE  # settling after a change: the next run
    deletion = current or _open_deletion(maker, instance, origin)
    if deletion is None:
        return DELETED if _deleted_since(maker, instance) else OVERDUE
    if deletion.status != Status.APPROVED:
        return OVERDUE
    if account is None:
        _found_gone(deletion, maker, origin)
        return DELETED
    try:
        result = lifecycle.request_execute(
            request_id=deletion.pk, user=maker.requester, origin=origin, client=client
        )
    except TransitionError as error:
        # Claimed by another run, the instance busy, the API's breaker open: next run.
        logger.info("expiry of request %s not carried out now: %s", maker.pk, error.message)
        return OVERDUE
    return DELETED if result.created else OVERDUE


def _open_on(maker: AccountRequest, instance: Instance) -> AccountRequest | None:
    """The open request on the account (one at most: the constraint), if any."""
    existing = AccountRequest.objects.open().filter(
        instance=instance, account_name=maker.account_name
    )
    return existing.select_related("instance").first()


def _ours(request: AccountRequest, maker: AccountRequest) -> bool:
    return request.kind == Kind.DELETE and request.about_id == maker.pk


def _deleted_since(maker: AccountRequest, instance: Instance) -> bool:
    """A deletion of the account (at its expiry or asked by someone) finished after the
    account was made."""
    return AccountRequest.objects.filter(
        kind=Kind.DELETE,
        status=Status.CREATED,
        instance=instance,
        account_name=maker.account_name,
        finished_at__gte=maker.finished_at,
    ).exists()


def _open_deletion(
    maker: AccountRequest, instance: Instance, origin: Origin
) -> AccountRequest | None:
    """A new deletion request for this expiry, or the one another run opened at the same
    moment; None when someone else's request holds the account."""
    try:
        return _new_deletion(maker, instance, origin)
    except _DeletedMeanwhile:
        return None
    except IntegrityError:
        current = _open_on(maker, instance)  # the one-open-request constraint: read it
        return current if current is not None and _ours(current, maker) else None


def _new_deletion(maker: AccountRequest, instance: Instance, origin: Origin) -> AccountRequest:
    now = timezone.now()
    with transaction.atomic():
        deletion = AccountRequest.objects.create(
            kind=Kind.DELETE,
            about=maker,
            requester=maker.requester,
            instance=instance,
            account_name=maker.account_name,
            account_privilege=maker.account_privilege,
            current_privilege=maker.account_privilege,
            account_type=maker.account_type,
            justification="",  # the audit event says why, in the reader's language
            # Approved when the expiry was: no approver is asked again.
            status=Status.APPROVED,
            approvals_required=0,
            approved_at=now,
        )
        # Another run's deletion may have finished between our look and this insert (it
        # was open until then, so the insert would have failed before): seen from here.
        if _deleted_since(maker, instance):
            raise _DeletedMeanwhile
        record_event(
            action=Action.REQUEST_SUBMITTED,
            outcome=Outcome.SUCCESS,
            origin=origin,
            request=deletion,
            message=message("expiry.due", expires=moment(maker.expires_at), maker=maker.pk),
        )
    return deletion


class _DeletedMeanwhile(Exception):
    """Rolls back a deletion request opened after another run's deletion finished."""


def _found_gone(deletion: AccountRequest, maker: AccountRequest, origin: Origin) -> None:
    """The account is not there any more: the deletion is done without a call."""
    said = message("expiry.gone", expires=moment(maker.expires_at))
    _close_approved(deletion, Action.ACCOUNT_DELETED, said, Status.CREATED, origin)


def _close_approved(
    account_request: AccountRequest, action: str, said, status: str, origin: Origin
) -> None:
    """Finish an approved request with its audit event, unless another run (or a run of
    the request itself) moved it on meanwhile: then the next run sees where it stands."""
    try:
        with transaction.atomic():
            lifecycle.workflow._transition(
                account_request,
                Status.APPROVED,
                action,
                origin,
                said=said,
                status=status,
                finished_at=timezone.now(),
            )
    except TransitionError:
        pass


def _carried_out(maker: AccountRequest, origin: Origin) -> None:
    """Mark the expiry done once (compare-and-set), with its audit event."""
    with transaction.atomic():
        done = AccountRequest.objects.filter(pk=maker.pk, expiry_done_at__isnull=True).update(
            expiry_done_at=timezone.now()
        )
        if done:
            record_event(
                action=Action.ACCOUNT_EXPIRED,
                outcome=Outcome.SUCCESS,
                origin=origin,
                request=maker,
                message=message("expiry.deleted", expires=moment(maker.expires_at)),
            )


# --- Reminders ---------------------------------------------------------------------------


def reminder_key(maker: AccountRequest, days: int) -> str:
    """One reminder per account, number of days and expiry: an extension gets new ones."""
    return f"expiry_reminder:{maker.pk}:{days}:{int(maker.expires_at.timestamp())}"


def send_reminders(*, now: datetime | None = None) -> int:
    """Remind the requester of each account expiring within a reminder's days, once per
    reminder (the most urgent one only, when several are due at once); the number queued."""
    now = now or timezone.now()
    days_list = settings.EXPIRY_REMINDER_DAYS
    queued = 0
    for maker in selectors.reminders_due(now, days_list):
        left = maker.expires_at - now
        reaching = [days for days in days_list if left <= timedelta(days=days)]
        if not reaching or not maker.requester.email:
            continue
        days = min(reaching)
        key = reminder_key(maker, days)
        if NotificationDelivery.objects.filter(event_key=key).exists():
            continue
        notifications.expiry_reminder(maker, days=days, event_key=key)
        queued += 1
    return queued
