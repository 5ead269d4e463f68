from __future__ import annotations

from accounts_app import policy, roles
from accounts_app.selectors import requests as selectors

# The navigation's badge counts at most this many waiting requests.
BADGE_CAP = 100


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_roles": roles.role_names(user),
        "nav_can_request": policy.may_request(user),
        "nav_can_approve": policy.may_approve(user),
        "nav_can_view_everything": policy.may_view_everything(user),
        # Lazy: evaluated only where the header shows it. Capped: counting thousands of
        # waiting requests on every page would cost more than the page; "99+" says enough.
        "nav_waiting_count": lambda: selectors.waiting_count(user, BADGE_CAP),
    }
