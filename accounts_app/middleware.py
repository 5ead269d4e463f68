"""Per-user time zone, idle session timeout, and no caching of signed-in pages."""

from __future__ import annotations

import time
import zoneinfo

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import BadRequest
from django.utils import timezone

from accounts_app.audit import origin as audit_origin
from accounts_app.services.preferences import session_time_zone

LAST_SEEN_KEY = "last_seen"


class UserTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = session_time_zone(request.session)
        try:
            timezone.activate(zoneinfo.ZoneInfo(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.activate(zoneinfo.ZoneInfo(settings.DEFAULT_USER_TIME_ZONE))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class IdleSessionTimeoutMiddleware:
    """Signs out a session that has been idle longer than SESSION_IDLE_TIMEOUT."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = time.time()
            last_seen = request.session.get(LAST_SEEN_KEY, now)
            if now - last_seen > settings.SESSION_IDLE_TIMEOUT.total_seconds():
                logout(request)
                return redirect_to_login(request.get_full_path())
            # Written at most once a minute, so most requests do not write the session.
            if now - last_seen > 60 or LAST_SEEN_KEY not in request.session:
                request.session[LAST_SEEN_KEY] = now
        return self.get_response(request)


class NoStoreForSignedInMiddleware:
    """Pages for a signed-in user are never kept by a browser or proxy cache."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.user.is_authenticated and "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response


class RejectNulBytesMiddleware:
    """A NUL byte in the path or the query string is a 400.

    No identifier or filter here can contain one, and PostgreSQL refuses NUL in
    text parameters: without this, a lookup with one fails as a 500 on
    PostgreSQL while it is a plain "not found" on SQLite. Form fields refuse
    NUL on their own (Django's ProhibitNullCharactersValidator).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            # Answered by the 400 handler (views.errors.bad_request), like any BadRequest.
            raise BadRequest("NUL byte in the path or the query string")
        return self.get_response(request)


class AuditOriginMiddleware:
    """Who makes the changes of this request, for the audit events that model signals
    write (changes through Django's admin: users, groups, permissions, policies)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = audit_origin.set_current(audit_origin.Origin.from_request(request))
        try:
            return self.get_response(request)
        finally:
            audit_origin.reset_current(token)
