"""Sign-in throttling with django-axes: whose address counts, and the lockout answer.

Axes locks a (username, client IP) pair out after AXES_FAILURE_LIMIT failures for
AXES_COOLOFF_TIME (config/settings.py). Both hooks here are named in settings
(AXES_CLIENT_IP_CALLABLE, AXES_LOCKOUT_CALLABLE).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import message
from accounts_app.audit.origin import trusted_client_ip
from accounts_app.models import AuditEvent

LOCKOUT_TEMPLATE = "registration/locked_out.html"


def client_ip(request: HttpRequest) -> str | None:
    """The address a lockout is keyed on: the same one the audit log records."""
    return trusted_client_ip(request)


def locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """The answer to a sign-in attempt while locked out: audited, then a clear page."""
    username = str((credentials or {}).get("username") or request.POST.get("username") or "")
    record_event(
        action=AuditEvent.Action.LOGIN_FAILED,
        outcome=AuditEvent.Outcome.FAILURE,
        origin=Origin.from_request(request),
        message=message(
            "login.locked_out", limit=settings.AXES_FAILURE_LIMIT, username=username[:150]
        ),
    )
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        LOCKOUT_TEMPLATE,
        {"failure_limit": settings.AXES_FAILURE_LIMIT, "cooloff_minutes": minutes},
        status=429,
    )
