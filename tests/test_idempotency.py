"""The API's Idempotency-Key rows (services/idempotency.py), one service at a time.

tests/test_api.py drives them through /api/v1/; these pin what a retry depends on:
whose key it is, which body it came with, and what a refused call leaves behind.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pytest
from django.conf import settings

from accounts_app.models import ApiIdempotencyKey
from accounts_app.services.idempotency import (
    body_digest,
    idempotency_claim,
    idempotency_release,
    idempotency_store,
)
from tests.builders import instance_row, request_row
from tests.demo_instances import HEALTHY

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(requester):
    instance = instance_row(HEALTHY)
    return [request_row(requester, instance, f"reader_{n}") for n in range(2)]


def test_the_body_digest_is_pinned_so_keys_stored_before_an_upgrade_still_match():
    # The digest is stored with each key: a change to how it is computed would answer
    # every retry after a deploy with "IdempotencyKeyReused". The body's keys sorted,
    # the request's id beside the body, json.dumps' default separators.
    message = b'{"body": {"a": "x", "b": 2}, "request": 7}'
    expected = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()

    assert body_digest(7, {"b": 2, "a": "x"}) == expected


def test_the_body_digest_leaves_the_password_out_and_keeps_every_other_field():
    with_one = body_digest(1, {"account_password": "Str0ng-Passw0rd", "note": "a"})

    assert with_one == body_digest(1, {"account_password": "0ther-Passw0rd", "note": "a"})
    assert with_one == body_digest(1, {"note": "a"})
    assert with_one != body_digest(1, {"account_password": "Str0ng-Passw0rd", "note": "b"})
    assert with_one != body_digest(2, {"note": "a"})


def test_a_value_json_cannot_encode_is_digested_as_its_text():
    assert body_digest(1, {"on": date(2026, 11, 30)}) == body_digest(1, {"on": "2026-11-30"})


def test_a_repeated_key_finds_its_own_users_row_among_others_with_the_same_key(
    rows, requester, approver
):
    first = idempotency_claim(user=requester, key="k", account_request=rows[0], body={})
    idempotency_claim(user=approver, key="k", account_request=rows[1], body={})

    again = idempotency_claim(user=requester, key="k", account_request=rows[0], body={})

    assert first.first is True
    assert again.first is False
    assert (again.record.pk, again.same_body) == (first.record.pk, True)


def test_a_repeated_key_finds_its_own_row_among_the_users_other_keys(rows, requester):
    idempotency_claim(user=requester, key="k1", account_request=rows[0], body={})
    second = idempotency_claim(user=requester, key="k2", account_request=rows[1], body={})

    again = idempotency_claim(user=requester, key="k2", account_request=rows[1], body={})

    assert (again.first, again.record.pk, again.same_body) == (False, second.record.pk, True)
    other_body = idempotency_claim(
        user=requester, key="k2", account_request=rows[1], body={"note": "other"}
    )
    assert other_body.same_body is False


def test_releasing_a_refused_call_forgets_its_key_and_only_its_key(rows, requester):
    refused = idempotency_claim(user=requester, key="refused", account_request=rows[0], body={})
    running = idempotency_claim(user=requester, key="running", account_request=rows[1], body={})

    idempotency_release(record=refused.record)

    assert list(ApiIdempotencyKey.objects.values_list("key", flat=True)) == ["running"]
    retried = idempotency_claim(user=requester, key="refused", account_request=rows[0], body={})
    assert retried.first is True
    assert running.record.pk in ApiIdempotencyKey.objects.values_list("pk", flat=True)


def test_a_key_whose_answer_is_stored_is_never_released(rows, requester):
    done = idempotency_claim(user=requester, key="done", account_request=rows[0], body={})
    idempotency_store(record=done.record, status_code=200, response={"created": True})

    idempotency_release(record=done.record)

    stored = ApiIdempotencyKey.objects.get(key="done")
    assert (stored.status_code, stored.response) == (200, {"created": True})
