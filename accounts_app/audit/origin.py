"""Who did it and from where: the actor and the client's address of an audit event."""

from __future__ import annotations

import sys
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.http import HttpRequest
from django.utils.ipv6 import clean_ipv6_address


@dataclass(frozen=True)
class Origin:
    """Who did it and from where, taken from the HTTP request when there is one."""

    actor: object | None = None
    actor_name: str = ""
    source_ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest | None, *, user=None) -> Origin:
        if request is None:
            return cls(actor=user, actor_name=getattr(user, "username", "") or "")
        user = user if user is not None else getattr(request, "user", None)
        if user is not None and not user.is_authenticated:
            user = None
        return cls(
            actor=user,
            actor_name=user.get_username() if user is not None else "",
            source_ip=client_ip(request),
            user_agent=request.headers.get("user-agent", "")[:512],
        )

    @classmethod
    def system(cls, name: str = "system") -> Origin:
        return cls(actor_name=name)

    @classmethod
    def current(cls) -> Origin:
        """Who is making the change in progress: the signed-in user of the HTTP request
        being served (AuditOriginMiddleware), else the management command running."""
        origin = _current.get()
        if origin is not None:
            return origin
        command = sys.argv[1] if len(sys.argv) > 1 and sys.argv[0].endswith("manage.py") else ""
        return cls.system(f"manage.py {command}".strip() if command else "system")


# Set for the length of one HTTP request by accounts_app.middleware.AuditOriginMiddleware:
# changes made through Django's admin reach the audit log through model signals, which
# have no request to ask.
_current: ContextVar[Origin | None] = ContextVar("audit_origin", default=None)


def set_current(origin: Origin | None):
    return _current.set(origin)


def reset_current(token) -> None:
    _current.reset(token)


def client_ip(request: HttpRequest) -> str | None:
    return normalized_ip(trusted_client_ip(request))


def trusted_client_ip(request: HttpRequest) -> str | None:
    """The client's address, for the audit log and the login lockout.

    REMOTE_ADDR, unless TRUSTED_PROXY_COUNT reverse proxies stand in front of us. Each
    proxy appends the address it received the request from to X-Forwarded-For, so
    with N trusted proxies the client is the N-th entry from the right. Entries left
    of it were written by the client itself and could name anyone: taking the
    left-most would let an attacker pick a fresh "IP" for every attempt.
    """
    remote_addr = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
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


def normalized_ip(value: str | None) -> str | None:
    """The address as the database will give it back, so that the HMAC still matches.

    PostgreSQL's inet and Django's GenericIPAddressField both rewrite IPv6 to its
    short form; hashing the long form would make verify_chain() report an edit.
    """
    if not value:
        return None
    try:
        validate_ipv46_address(value)
    except ValidationError:
        return None
    return clean_ipv6_address(value) if ":" in value else value
