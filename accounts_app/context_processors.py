from __future__ import annotations

from accounts_app import policy, roles
from accounts_app.selectors import requests as selectors


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_roles": roles.role_names(user),
        "nav_can_request": policy.may_request(user),
        "nav_can_approve": policy.may_approve(user),
        "nav_can_view_everything": policy.may_view_everything(user),
        # Lazy: evaluated only where the template shows it.
        "nav_waiting_count": lambda: (
            selectors.waiting_for_approval(user).count() if policy.may_approve(user) else 0
        ),
    }
