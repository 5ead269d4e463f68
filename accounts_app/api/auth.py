"""Who calls: a personal token (Authorization: Bearer) or the browser's session (with CSRF).

A caller's scopes bound what the API lets it try; accounts_app.policy then decides,
for the token's user, exactly as on the pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja.security import HttpBearer, SessionAuth

from accounts_app import reauth
from accounts_app.api.errors import ApiError
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import message as audit_message
from accounts_app.models import ApiToken, AuditEvent
from accounts_app.services import tokens


@dataclass(frozen=True)
class Caller:
    user: object
    token: ApiToken | None  # None: the browser's session, with every scope

    @property
    def rate_key(self) -> str:
        # The prefix, not the id: ids are reused after a rollback, prefixes are random.
        return f"token:{self.token.prefix}" if self.token else f"user:{self.user.pk}"

    def has_scope(self, scope: str) -> bool:
        return self.token is None or scope in self.token.scope_list


class TokenAuth(HttpBearer):
    def authenticate(self, request, token: str):
        found = tokens.token_authenticate(token)
        if found is None:
            return None
        request.user = found.user
        return _admitted(request, Caller(user=found.user, token=found))


class SessionCsrfAuth(SessionAuth):
    """The signed-in browser; ninja checks CSRF on unsafe methods for cookie auth."""

    def authenticate(self, request, key):
        user = super().authenticate(request, key)
        return _admitted(request, Caller(user=user, token=None)) if user else None


def _admitted(request, caller: Caller) -> Caller:
    wait = tokens.rate_limit_wait(caller.rate_key)
    if wait:
        raise ApiError(
            429,
            "Throttling",
            _("Too many requests: try again in %(seconds)s seconds.") % {"seconds": wait},
            headers={"Retry-After": str(wait)},
        )
    return caller


AUTH = [TokenAuth(), SessionCsrfAuth()]


def require_scope(request, *scopes: str) -> Caller:
    """The caller, if it holds one of `scopes`; else an audited 403 naming the scope."""
    caller: Caller = request.auth
    if not any(caller.has_scope(scope) for scope in scopes):
        raise deny(
            request,
            f"scope {' or '.join(scopes)}",
            _("This token lacks the scope this call needs: %(scope)s.")
            % {"scope": " or ".join(scopes)},
            code="Forbidden.Scope",
        )
    return caller


def origin_of(request) -> Origin:
    """The audit origin; a token's id and name ride in the user agent column, never the token."""
    origin = Origin.from_request(request)
    token = request.auth.token
    if token is None:
        return origin
    via = f"api token #{token.pk} {token.name}; "
    return Origin(
        actor=origin.actor,
        actor_name=origin.actor_name,
        source_ip=origin.source_ip,
        user_agent=(via + origin.user_agent)[:512],
    )


def recent_enough_to_execute(request) -> bool:
    """The API's re-authentication policy for execute (settings.API_EXECUTE_TOKEN_MAX_AGE_HOURS)."""
    token = request.auth.token
    if token is None:
        return reauth.signed_in_recently(request)
    hours = settings.API_EXECUTE_TOKEN_MAX_AGE_HOURS
    return hours > 0 and timezone.now() - token.created_at <= timedelta(hours=hours)


def deny(request, needs: str, message=None, *, code: str = "Forbidden") -> ApiError:
    """Audited like a refused page; the answer says what is missing, nothing about the data."""
    record_event(
        action=AuditEvent.Action.PERMISSION_DENIED,
        outcome=AuditEvent.Outcome.DENIED,
        origin=origin_of(request),
        message=audit_message(
            "denied.needs", method=request.method, path=request.path[:200], needs=needs
        ),
    )
    return ApiError(403, code, message or _("You may not do this."))
