"""Personal API tokens: created (shown once), found by their digest, revoked, rate-limited.

A token is "rdk_" and 43 characters of secrets.token_urlsafe(32). Only its SHA-256
digest is stored, with its first 12 characters as a visible prefix.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts_app.models import ApiToken
from accounts_app.services import call_budgets

TOKEN_PREFIX = "rdk_"  # noqa: S105 (a marker, not a secret)
VISIBLE_PREFIX_LENGTH = 12
SCOPES = ApiToken.SCOPES
# last_used_at is written at most this often per token: one UPDATE per call would
# make every read a write.
LAST_USED_GRANULARITY = timedelta(minutes=1)


class InvalidScopes(ValueError):
    pass


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(scopes: str | list[str]) -> list[str]:
    names = scopes.replace(",", " ").split() if isinstance(scopes, str) else list(scopes)
    unknown = sorted(set(names) - set(SCOPES))
    if unknown or not names:
        raise InvalidScopes(", ".join(unknown) or "none given")
    return [scope for scope in SCOPES if scope in names]


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # shown once, to its owner, and kept nowhere


def token_create(*, user, name: str, scopes: str | list[str], expires_in_days: int) -> CreatedToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=secret[:VISIBLE_PREFIX_LENGTH],
        digest=digest_of(secret),
        scopes=" ".join(parse_scopes(scopes)),
        expires_at=timezone.now() + timedelta(days=expires_in_days),
    )
    return CreatedToken(token=token, secret=secret)


def token_revoke(*, token_id: int, by) -> bool:
    """The owner revokes their own token; staff revoke anyone's. False: no such token of theirs."""
    tokens = ApiToken.objects.filter(pk=token_id, revoked_at=None)
    if not by.is_staff:
        tokens = tokens.filter(user=by)
    return tokens.update(revoked_at=timezone.now()) == 1


def token_authenticate(secret: str) -> ApiToken | None:
    """The active token of an active user that `secret` is, noting its use; else None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=digest_of(secret)).first()
    now = timezone.now()
    if token is None or not token.is_active(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def rate_limit_wait(key: str) -> int:
    """Count one call against `key` (a token or a user); 0 if allowed, else seconds to wait.
    API_RATE_LIMIT calls per API_RATE_LIMIT_WINDOW seconds, in the database
    (services/call_budgets.py), so that every web server shares one budget."""
    return call_budgets.spend(
        f"api:{key}", limit=settings.API_RATE_LIMIT, window_seconds=settings.API_RATE_LIMIT_WINDOW
    )
