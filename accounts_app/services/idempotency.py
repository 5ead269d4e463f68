"""Idempotency-Key for the API's execute call: one CreateAccount per key, whatever the retries.

The first call with a key inserts its row (committed at once, so a concurrent call
with the same key finds it), executes, and stores its answer; a repeat returns that
answer without executing. The body is compared by an HMAC, keyed with SECRET_KEY, of
the request's id and the body's fields other than the password: the password itself
is never hashed into anything stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts_app.models import AccountRequest, ApiIdempotencyKey

PASSWORD_FIELDS = frozenset({"account_password"})


def body_digest(request_id: int, body: dict) -> str:
    kept = {name: value for name, value in body.items() if name not in PASSWORD_FIELDS}
    message = json.dumps({"request": request_id, "body": kept}, sort_keys=True, default=str)
    return hmac.new(settings.SECRET_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Claim:
    """first: this call owns the key and executes. Else `record` is the earlier call's."""

    record: ApiIdempotencyKey
    first: bool
    same_body: bool = True


def idempotency_claim(*, user, key: str, account_request: AccountRequest, body: dict) -> Claim:
    digest = body_digest(account_request.pk, body)
    try:
        with transaction.atomic():
            record = ApiIdempotencyKey.objects.create(
                user=user, key=key, body_digest=digest, request=account_request
            )
        return Claim(record=record, first=True)
    except IntegrityError:
        record = ApiIdempotencyKey.objects.get(user=user, key=key)
        return Claim(
            record=record, first=False, same_body=hmac.compare_digest(record.body_digest, digest)
        )


def idempotency_store(*, record: ApiIdempotencyKey, status_code: int, response: dict) -> None:
    ApiIdempotencyKey.objects.filter(pk=record.pk).update(
        status_code=status_code, response=response
    )


def idempotency_release(*, record: ApiIdempotencyKey) -> None:
    """Forget a key whose call was refused before anything was attempted: it may be retried."""
    ApiIdempotencyKey.objects.filter(pk=record.pk, status_code=None).delete()
