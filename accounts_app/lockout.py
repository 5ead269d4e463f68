"""Sign-in throttling with django-axes: whose address counts, and the lockout answer.

Axes locks a (username, client IP) pair out after AXES_FAILURE_LIMIT failures for
AXES_COOLOFF_TIME (config/settings.py). Both hooks here are named in settings
(AXES_CLIENT_IP_CALLABLE, AXES_LOCKOUT_CALLABLE).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts_app.audit import Origin, record_event
from accounts_app.models import AuditEvent

LOCKOUT_TEMPLATE = "registration/locked_out.html"


def client_ip(request: HttpRequest) -> str | None:
    """The address a lockout is keyed on.

    REMOTE_ADDR, unless TRUSTED_PROXY_COUNT reverse proxies stand in front of us. Each
    proxy appends the address it received the request from to X-Forwarded-For, so
    with N trusted proxies the client is the N-th entry from the right. Entries left
    of it were written by the client itself and could name anyone: taking the
    left-most would let an attacker pick a fresh "IP" for every attempt.
    """
    remote_addr = request.META.get("REMOTE_ADDR")
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if proxies <= 0:
        return remote_addr
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    forwarded = [hop.strip() for hop in hops if hop.strip()]
    if len(forwarded) < proxies:
        # Fewer hops than proxies: the request did not come through them all.
        return remote_addr
    candidate = forwarded[-proxies]
    try:
        validate_ipv46_address(candidate)
    except ValidationError:
        return remote_addr
    return candidate


def locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """The answer to a sign-in attempt while locked out: audited, then a clear page."""
    username = str((credentials or {}).get("username") or request.POST.get("username") or "")
    with transaction.atomic():
        record_event(
            action=AuditEvent.Action.LOGIN_FAILED,
            outcome=AuditEvent.Outcome.FAILURE,
            origin=Origin.from_request(request),
            comment=f"locked out after {settings.AXES_FAILURE_LIMIT} failed sign-ins: "
            f"username: {username[:150]}",
        )
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        LOCKOUT_TEMPLATE,
        {"failure_limit": settings.AXES_FAILURE_LIMIT, "cooloff_minutes": minutes},
        status=429,
    )
