"""A per-user budget of live Alibaba calls made by page views (instance details,
pre-flight), so that one user cannot spend the API's rate limit, and open the shared
circuit breaker, for everyone. Counted per minute in the database
(services/call_budgets.py), so that several web servers share one budget. The execute
step itself is never throttled here.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts_app.services import call_budgets

THROTTLED_MESSAGE = _(
    "You have asked Alibaba Cloud for live details many times in the last minute. To keep "
    "the API's rate limit for everyone, this page shows the last synced data; live "
    "checks resume within a minute."
)


def live_call_allowed(*, user) -> bool:
    """Count one live check for the user now; False when the minute's budget is spent."""
    if user is None or not user.is_authenticated:
        return True
    budget = call_budgets.spend(
        f"live:{user.pk}", limit=settings.LIVE_CALLS_PER_MINUTE, window_seconds=60
    )
    return budget == 0
