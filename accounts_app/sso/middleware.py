"""A user whose IdP groups map to no role sees one page, saying so."""

from __future__ import annotations

from django.shortcuts import redirect
from django.urls import reverse

NO_ROLE_KEY = "sso_no_role"
# What such a user may still reach: that page, sign-out, and the language switch.
ALLOWED = ("no_role", "logout", "set_language")


class NoRoleMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.user.is_authenticated and request.session.get(NO_ROLE_KEY):
            if request.resolver_match.url_name not in ALLOWED:
                return redirect(reverse("no_role"))
        return None
