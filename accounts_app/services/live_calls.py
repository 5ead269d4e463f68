"""A per-user budget of live Alibaba calls made by page views (instance details,
pre-flight), so that one user cannot spend the API's rate limit, and open the shared
circuit breaker, for everyone. Counted per minute in the database: Django's default
cache (no CACHES setting) is per process, so several web servers would each allow the
full rate. The execute step itself is never throttled here.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts_app.models import LiveCallCount

THROTTLED_MESSAGE = _(
    "You have asked Alibaba Cloud for live details many times in the last minute. To keep "
    "the API's rate limit for everyone, this page shows the last synced data; live "
    "checks resume within a minute."
)


def live_call_allowed(*, user) -> bool:
    """Count one live check for the user now; False when the minute's budget is spent."""
    if user is None or not user.is_authenticated:
        return True
    minute = timezone.now().replace(second=0, microsecond=0)
    try:
        with transaction.atomic():
            LiveCallCount.objects.get_or_create(user=user, minute=minute)
    except IntegrityError:
        pass  # created by a concurrent request meanwhile
    # The row count decides, so concurrent requests on several servers share one budget.
    counted = LiveCallCount.objects.filter(
        user=user, minute=minute, calls__lt=settings.LIVE_CALLS_PER_MINUTE
    ).update(calls=F("calls") + 1)
    LiveCallCount.objects.filter(user=user, minute__lt=minute - timedelta(minutes=5)).delete()
    return counted == 1
