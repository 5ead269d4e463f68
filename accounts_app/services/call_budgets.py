"""Budgets of calls per fixed window of time, shared by every web server: a user's live
Alibaba checks from page views (live_calls.py) and an API token's calls (tokens.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts_app.models import CallWindow

# Windows older than this many of their own length are forgotten when a new one opens.
KEPT_WINDOWS = 5


def spend(key: str, *, limit: int, window_seconds: int) -> int:
    """Count one call against ``key``: 0 when it is within ``limit`` calls in the current
    window, else the seconds until the window ends (the call is then not counted)."""
    now = int(timezone.now().timestamp())
    start = now - now % window_seconds
    opened = datetime.fromtimestamp(start, tz=UTC)
    window = CallWindow.objects.filter(key=key, window_start=opened)
    # Usually one UPDATE; the window's first call creates its row, and a call that loses
    # the race to create it counts in the row the winner made.
    if (
        _counted(window, limit)
        or (limit > 0 and _opened(key, opened, window_seconds))
        or _counted(window, limit)
    ):
        return 0
    return max(1, start + window_seconds - now)


def _counted(window: QuerySet, limit: int) -> bool:
    # The row count decides, so concurrent calls on several servers share one budget.
    return bool(window.filter(calls__lt=limit).update(calls=F("calls") + 1))


def _opened(key: str, opened: datetime, window_seconds: int) -> bool:
    try:
        with transaction.atomic():
            CallWindow.objects.create(key=key, window_start=opened, calls=1)
    except IntegrityError:
        return False
    forgotten = opened - timedelta(seconds=window_seconds * KEPT_WINDOWS)
    CallWindow.objects.filter(key=key, window_start__lt=forgotten).delete()
    return True
