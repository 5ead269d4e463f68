"""Notifications, sent from a worker: once per (event, recipient), whatever the re-runs.

A delivery is claimed (a compare-and-set on its row) before the mail goes out and
marked sent after. A second run of the same task, or a duplicate task, finds it sent
or claimed and sends nothing. A claim left by a worker that died mid-send lapses after
TASKS_WORKER_TIMEOUT, and the retry then sends: at least once, and once in practice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.tasks import TaskContext, task
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts_app.background import retry
from accounts_app.background.models import NotificationDelivery
from accounts_app.models import AccountDrift, AccountRequest, AuditEvent


class DeliveryInProgress(Exception):
    """Another run holds this delivery's claim; try again after it lapses."""


def deliver(
    *, event_key: str, kind: str, request_id: int | None, recipient: str, extra: dict
) -> bool:
    """Send one notification unless it was sent already; True when sent by this call."""

    def send() -> None:
        subject, body = render(kind, request_id, extra)
        send_mail(subject, body, None, [recipient])

    return deliver_once(event_key=event_key, recipient=recipient, send=send)


def deliver_once(*, event_key: str, recipient: str, send: Callable[[], None]) -> bool:
    """Call send() unless this (event, recipient) was sent already; True when sent now.

    Mail and chat messages alike (a chat channel's recipient is "chat:<channel id>").
    """
    _record(event_key, recipient)
    deliveries = NotificationDelivery.objects.filter(event_key=event_key, recipient=recipient)
    if deliveries.filter(sent_at__isnull=False).exists():
        return False
    lapsed = timezone.now() - timedelta(seconds=settings.TASKS_WORKER_TIMEOUT)
    claimed = deliveries.filter(
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=lapsed), sent_at__isnull=True
    ).update(claimed_at=timezone.now())
    if not claimed:
        if deliveries.filter(sent_at__isnull=False).exists():
            return False
        raise DeliveryInProgress(f"{event_key} to {recipient} is being sent by another run")
    try:
        send()
    except BaseException:
        deliveries.update(claimed_at=None)
        raise
    deliveries.update(sent_at=timezone.now())
    return True


def _record(event_key: str, recipient: str) -> None:
    try:
        with transaction.atomic():
            NotificationDelivery.objects.get_or_create(event_key=event_key, recipient=recipient)
    except IntegrityError:
        pass  # a concurrent run created it


def render(kind: str, request_id: int | None, extra: dict) -> tuple[str, str]:
    """The mail of one notification: about a request (request_id), an audited change
    (extra's event_id), or the dashboard itself (a break-glass sign-in), whose values are
    all in ``extra``. Links go to the request, else to the audit log."""
    context = {key: value for key, value in extra.items() if key not in ("approver_id", "event_id")}
    context["url"] = site_url(reverse("audit"))
    if request_id is not None:
        context["request_obj"] = AccountRequest.objects.select_related("instance", "requester").get(
            pk=request_id
        )
        context["url"] = site_url(reverse("request_detail", args=[request_id]))
    if extra.get("approver_id") is not None:
        context["approver"] = get_user_model().objects.get(pk=extra["approver_id"])
    if extra.get("event_id") is not None:
        context["event"] = AuditEvent.objects.get(pk=extra["event_id"])
    if kind == "drift":
        context.update(_drift_context(extra))
    # Mails go out in the site's default language: recipients may read in a different
    # language from the person whose action sent them.
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string(f"email/{kind}_subject.txt", context).strip()
        body = render_to_string(f"email/{kind}_body.txt", context)
    return subject, body


def _drift_context(extra: dict) -> dict:
    """A sweep's summary (notifications.drift_summary): the kinds' labels for its codes,
    and the drift page's address."""
    labels = dict(AccountDrift.choices)
    return {
        "url": site_url(reverse("drift")),
        "counts": [(labels.get(kind, kind), n) for kind, n in sorted(extra["counts"].items())],
        "items": [
            (instance, account, labels.get(kind, kind))
            for instance, account, kind in extra["items"]
        ],
        "more": extra["total"] - len(extra["items"]),
    }


def site_url(path: str) -> str:
    """An absolute link to the dashboard, for mails and chat messages: SITE_URL, which
    `make run` sets to the address it serves on."""
    return settings.SITE_URL.rstrip("/") + path


# Mail before sweeps: a long sync queue must not hold a notification back.
NOTIFICATION_PRIORITY = 10


@task(takes_context=True, priority=NOTIFICATION_PRIORITY)
def send_notification(
    context: TaskContext,
    *,
    event_key: str,
    kind: str,
    request_id: int | None,
    recipient: str,
    extra: dict,
    attempt: int = 1,
) -> dict:
    arguments = {
        "event_key": event_key,
        "kind": kind,
        "request_id": request_id,
        "recipient": recipient,
        "extra": extra,
        "attempt": attempt,
    }
    try:
        sent = deliver(
            event_key=event_key, kind=kind, request_id=request_id, recipient=recipient, extra=extra
        )
    except Exception as error:
        retry.retry_or_dead_letter(context, error, arguments)
        raise
    return {"sent": sent}
