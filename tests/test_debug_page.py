"""The debug page cannot show the password (issue 23, finding 6): an unhandled exception
in the middle of an execute, with DEBUG on, answers Django's technical 500 page, and
that page holds the password in no frame's variables and no POST parameter."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts_app.alibaba import signing
from tests.builders import approved_request
from tests.security_support import secret_byte_forms

pytestmark = pytest.mark.django_db

CANARY = "Debug-Canary&9+Zq"


@pytest.mark.parametrize("where", ["form_encode", "canonical_query_string", "sha256_hex"])
def test_a_500_during_execute_with_debug_on_shows_no_password(
    settings, estate, requester, approver, monkeypatch, where
):
    settings.DEBUG = True
    account_request = approved_request(requester, approver)
    original = getattr(signing, where)

    def broken(*args, **kwargs):
        original(*args, **kwargs)
        raise RuntimeError("a defect deep in the call")

    monkeypatch.setattr(signing, where, broken)
    client = Client(raise_request_exception=False)
    client.force_login(requester)

    response = client.post(
        reverse("request_execute", args=[account_request.pk]),
        {"account_password": CANARY, "account_password_confirm": CANARY},
        headers={"accept": "text/html"},
    )

    assert response.status_code == 500
    page = response.content
    assert b"a defect deep in the call" in page, "the debug page, not our 500 page"
    for form in secret_byte_forms(CANARY):
        assert form not in page, form
    assert b"account_password" in page  # the parameter is listed, its value starred out
