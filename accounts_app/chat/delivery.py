"""Chat messages, sent from a worker by the mail's machinery: once per (event, channel)
(background/delivery.py), retried with backoff and dead-lettered after the last try
(background/retry.py). A failure is a failed task in the admin; it never blocks or
undoes the transition that caused the message."""

from __future__ import annotations

import logging

from django.conf import settings
from django.tasks import TaskContext, task

from accounts_app.background import retry
from accounts_app.background.delivery import NOTIFICATION_PRIORITY, deliver_once
from accounts_app.chat import messages, platforms
from accounts_app.chat.models import ChatChannel
from accounts_app.models import AccountRequest

logger = logging.getLogger(__name__)


def recipient(channel_id: int) -> str:
    return f"chat:{channel_id}"


def send_to_channel(*, channel: ChatChannel, event: str, request_id: int) -> None:
    account_request = AccountRequest.objects.select_related("instance", "requester").get(
        pk=request_id
    )
    message = messages.compose(event, account_request, channel.language, channel_id=channel.pk)
    platforms.post(
        channel.kind,
        channel.url,
        channel.secret,
        messages.payload(channel.kind, message),
        timeout=settings.CHAT_TIMEOUT,
    )


@task(takes_context=True, priority=NOTIFICATION_PRIORITY)
def send_chat_message(
    context: TaskContext,
    *,
    event_key: str,
    event: str,
    request_id: int,
    channel_id: int,
    attempt: int = 1,
) -> dict:
    arguments = {
        "event_key": event_key,
        "event": event,
        "request_id": request_id,
        "channel_id": channel_id,
        "attempt": attempt,
    }
    channel = ChatChannel.objects.filter(pk=channel_id, is_active=True).first()
    if channel is None:
        return {"sent": False}  # removed or switched off since the event
    try:
        sent = deliver_once(
            event_key=event_key,
            recipient=recipient(channel_id),
            send=lambda: send_to_channel(channel=channel, event=event, request_id=request_id),
        )
    except Exception as error:
        retry.retry_or_dead_letter(context, error, arguments)
        raise
    return {"sent": sent}


@task(takes_context=True, priority=NOTIFICATION_PRIORITY)
def send_drift_message(
    context: TaskContext, *, event_key: str, channel_id: int, summary: dict, attempt: int = 1
) -> dict:
    """A sweep's drift summary (notifications.drift_summary) to one channel."""
    arguments = {
        "event_key": event_key,
        "channel_id": channel_id,
        "summary": summary,
        "attempt": attempt,
    }
    channel = ChatChannel.objects.filter(pk=channel_id, is_active=True).first()
    if channel is None:
        return {"sent": False}

    def send() -> None:
        message = messages.compose_drift(summary, channel.language)
        platforms.post(
            channel.kind,
            channel.url,
            channel.secret,
            messages.payload(channel.kind, message),
            timeout=settings.CHAT_TIMEOUT,
        )

    try:
        sent = deliver_once(event_key=event_key, recipient=recipient(channel_id), send=send)
    except Exception as error:
        retry.retry_or_dead_letter(context, error, arguments)
        raise
    return {"sent": sent}
