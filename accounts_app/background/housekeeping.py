"""Pruning: the queue table and the engine's bookkeeping do not grow without end."""

from __future__ import annotations

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from accounts_app.background.models import NotificationDelivery, PeriodicRun, SyncRun
from accounts_app.chat.models import ChatNonce
from accounts_app.models import CallWindow


def prune(*, days: int) -> dict:
    """Delete what finished more than `days` ago; returns the rows deleted per table.

    A delivery record outlives its task by the same margin, so a task still in the
    queue never finds its delivery forgotten.
    """
    before = timezone.now() - timedelta(days=days)
    call_command("prune_db_task_results", queue_name="*", min_age_days=days, verbosity=0)
    return {
        "deliveries": NotificationDelivery.objects.filter(created_at__lt=before).delete()[0],
        "periodic_runs": PeriodicRun.objects.filter(enqueued_at__lt=before).delete()[0],
        "sync_runs": SyncRun.objects.filter(started_at__lt=before).delete()[0],
        "call_windows": CallWindow.objects.filter(window_start__lt=before).delete()[0],
        # Callbacks older than five minutes and link codes older than fifteen are
        # refused on their own: their nonces need not be kept for long.
        "chat_nonces": ChatNonce.objects.filter(seen_at__lt=before).delete()[0],
    }
