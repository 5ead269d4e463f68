"""E-mail and chat notifications. Enqueued as tasks with the transition that causes them, sent
by a worker (accounts_app/background/delivery.py), so a slow mail server never holds
a page; a failure to send is retried, never undoes or blocks a transition. No mail
carries a password: none of these functions is ever given one."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max, Q
from django.tasks import TaskContext, task
from django_tasks_db.backend import DatabaseBackend

from accounts_app.background import retry
from accounts_app.background.delivery import NOTIFICATION_PRIORITY, send_notification
from accounts_app.chat.delivery import send_chat_message, send_drift_message
from accounts_app.chat.models import ChatChannel, ChatEvent
from accounts_app.models import AccountRequest, AuditEvent

logger = logging.getLogger(__name__)

# accounts_app.roles.AUDITORS, named again: roles is a layer above this module.
AUDITORS_GROUP = "Auditors"


def approvers_emails() -> list[str]:
    User = get_user_model()
    users = (
        User.objects.filter(is_active=True)
        .filter(
            Q(
                groups__permissions__codename="approve_request",
                groups__permissions__content_type__app_label="accounts_app",
            )
            | Q(is_superuser=True)
        )
        .exclude(email="")
        .distinct()
    )
    return list(users.values_list("email", flat=True))


def _send(kind: str, account_request: AccountRequest, recipients: list[str], **extra):
    """The mails and chat messages of a request's transition. The event is the request's
    latest audit event: every transition writes exactly one, so a task that runs twice
    sends once. One task, whatever the number of recipients and channels: the worker
    turns it into one task per mail and per chat channel (send_transition_notifications)."""
    last_seq = account_request.last_event_seq  # written by this process's record_event
    if last_seq is None:
        events = AuditEvent.objects.filter(request=account_request)
        last_seq = events.aggregate(Max("seq"))["seq__max"]
    approver = extra.pop("approver", None)
    if approver is not None:
        extra["approver_id"] = approver.pk
    arguments = {
        "kind": kind,
        "event_key": f"{kind}:{account_request.pk}:{last_seq or 0}",
        "request_id": account_request.pk,
        "recipients": recipients,
        "extra": extra,
        "chat_event": str(_chat_event(kind, account_request, extra.get("verdict"))),
        "region": account_request.instance.region_id,
    }
    _enqueue_with_transition(lambda: send_transition_notifications.enqueue(**arguments))


@task(takes_context=True, priority=NOTIFICATION_PRIORITY)
def send_transition_notifications(
    context: TaskContext,
    *,
    kind: str,
    event_key: str,
    request_id: int,
    recipients: list[str],
    extra: dict,
    chat_event: str,
    region: str,
    attempt: int = 1,
) -> dict:
    """One task per mail and per chat channel that wants the event in this region, each
    retried on its own. Run again (a retry, a lost acknowledgement), it enqueues them
    again, and each sends once (delivery.deliver_once)."""
    arguments = {
        "kind": kind,
        "event_key": event_key,
        "request_id": request_id,
        "recipients": recipients,
        "extra": extra,
        "chat_event": chat_event,
        "region": region,
        "attempt": attempt,
    }
    try:
        channels = [
            channel.pk
            for channel in ChatChannel.objects.filter(is_active=True)
            if channel.wants(chat_event, region)
        ]
        for recipient in recipients:
            send_notification.enqueue(
                event_key=event_key,
                kind=kind,
                request_id=request_id,
                recipient=recipient,
                extra=extra,
            )
        for channel_id in channels:
            send_chat_message.enqueue(
                event_key=f"chat-{event_key}",
                event=chat_event,
                request_id=request_id,
                channel_id=channel_id,
            )
    except Exception as error:
        retry.retry_or_dead_letter(context, error, arguments)
        raise
    return {"mails": len(recipients), "chats": len(channels)}


def _enqueue(
    kind: str,
    recipients: list[str],
    *,
    event_key: str,
    extra: dict,
    request_id: int | None = None,
    after_commit: bool = True,
) -> None:
    """One mail task per recipient, as part of the caller's transaction.

    On the database queue the tasks are rows written in the same transaction as the
    change: a committed change always has its mails queued, a rolled-back one has none.
    A backend outside the database (ImmediateBackend in tests) gets them once the
    transaction commits, unless there is nothing to wait for (``after_commit=False``).
    """
    if not recipients:
        return

    def enqueue():
        for recipient in recipients:
            send_notification.enqueue(
                event_key=event_key,
                kind=kind,
                request_id=request_id,
                recipient=recipient,
                extra=extra,
            )

    _enqueue_with_transition(enqueue, after_commit=after_commit)


def _enqueue_with_transition(enqueue, *, after_commit: bool = True) -> None:
    if not after_commit or isinstance(send_notification.get_backend(), DatabaseBackend):
        enqueue()
    else:
        transaction.on_commit(enqueue, robust=True)


def _chat_event(kind: str, account_request: AccountRequest, verdict: str | None) -> str:
    if kind == "decided":
        return ChatEvent.APPROVED if verdict == "approve" else ChatEvent.REJECTED
    if kind == "finished":
        return ChatEvent.CREATED if account_request.is_created else ChatEvent.FAILED
    return {"reconciliation": ChatEvent.OUTCOME_UNKNOWN}.get(kind, kind)


def request_submitted(account_request: AccountRequest, *, recipients: list[str]) -> None:
    """``recipients``: who may decide on it (policy.deciders_emails, asked by the caller:
    policy sits above this module)."""
    _send("submitted", account_request, recipients)


def request_decided(account_request: AccountRequest, *, verdict: str, approver) -> None:
    _send(
        "decided",
        account_request,
        [account_request.requester.email] if account_request.requester.email else [],
        verdict=verdict,
        approver=approver,
    )


def request_expired(account_request: AccountRequest) -> None:
    _send(
        "expired",
        account_request,
        [account_request.requester.email] if account_request.requester.email else [],
    )


def request_finished(account_request: AccountRequest) -> None:
    _send(
        "finished",
        account_request,
        [account_request.requester.email] if account_request.requester.email else [],
    )


def expiry_reminder(account_request: AccountRequest, *, days: int, event_key: str) -> None:
    """The account this request made expires in ``days`` days or less: its requester hears.
    Queued at once: a reminder is no transition's to wait for."""
    _enqueue(
        "expiry_reminder",
        [account_request.requester.email] if account_request.requester.email else [],
        event_key=event_key,
        request_id=account_request.pk,
        extra={"days": days},
        after_commit=False,
    )


def request_needs_reconciliation(account_request: AccountRequest) -> None:
    _send("reconciliation", account_request, approvers_emails())


def auditors_emails() -> list[str]:
    """The Auditors group's members (and superusers): who reads changes to the rules."""
    User = get_user_model()
    users = (
        User.objects.filter(is_active=True)
        .filter(Q(groups__name=AUDITORS_GROUP) | Q(is_superuser=True))
        .exclude(email="")
        .distinct()
    )
    return list(users.values_list("email", flat=True))


def admin_change(event: AuditEvent) -> None:
    """An audited change to users, roles or policies, for the auditors."""
    _enqueue(
        "admin_change",
        auditors_emails(),
        event_key=f"admin_change:{event.seq}",
        extra={"event_id": event.pk},
    )


def drift_summary(*, counts: dict[str, int], items: list[list[str]], regions: list[str]) -> None:
    """What one sweep found, told once: a mail to the approvers and auditors, a message to
    each chat channel that wants drift for one of the regions. ``counts``: drift kind ->
    how many; ``items``: the first few [instance ID, account, drift kind]."""
    seq = AuditEvent.objects.aggregate(Max("seq"))["seq__max"] or 0
    event_key = f"drift:{seq}"
    summary = {"counts": counts, "items": items, "total": sum(counts.values())}
    _enqueue(
        "drift",
        sorted(set(approvers_emails()) | set(auditors_emails())),
        event_key=event_key,
        extra=summary,
    )
    channels = [
        channel.pk
        for channel in ChatChannel.objects.filter(is_active=True)
        if any(channel.wants(ChatEvent.DRIFT, region) for region in regions)
    ]

    def enqueue():
        for channel_id in channels:
            send_drift_message.enqueue(
                event_key=f"chat-{event_key}", channel_id=channel_id, summary=summary
            )

    if channels:
        _enqueue_with_transition(enqueue)


def audit_checkpoint(*, seq: int, digest: str, at) -> None:
    """The audit chain's head, published where the database's owner cannot rewrite it.
    Queued at once, not after a commit: publishing writes nothing to wait for."""
    _enqueue(
        "checkpoint",
        auditors_emails(),
        event_key=f"checkpoint:{seq}:{digest}",
        extra={"seq": seq, "hash": digest, "at": at.isoformat()},
        after_commit=False,
    )


def break_glass_sign_in(*, user, event: AuditEvent) -> None:
    """A break-glass superuser signed in with a password while local sign-in is off:
    every superuser and ADMINS hear of it."""
    User = get_user_model()
    recipients = set(
        User.objects.filter(is_active=True, is_superuser=True)
        .exclude(email="")
        .values_list("email", flat=True)
    ) | {admin[1] if isinstance(admin, tuple | list) else admin for admin in settings.ADMINS}
    extra = {"username": user.get_username(), "ip": event.source_ip or "", "seq": event.seq}
    _enqueue(
        "break_glass",
        sorted(recipients),
        event_key=f"break_glass:{event.seq}",
        extra=extra,
        after_commit=False,
    )
