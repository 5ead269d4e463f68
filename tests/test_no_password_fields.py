"""No model field anywhere in the project could hold a password.

Account passwords live only in the memory of the request that calls
CreateAccount. The one allowed field is auth.User.password: the salted hash of
the dashboard sign-in, not an account password.
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.db import models
from django.test.utils import isolate_apps

SUSPICIOUS = re.compile(r"passw|passwd|pwd|secret", re.IGNORECASE)
ALLOWED = {
    ("auth", "user", "password"),
    # django-allauth's tables for an OAuth client's secret and a provider's tokens. Never
    # written here: the client secret comes from the environment (SOCIALACCOUNT_PROVIDERS
    # in settings) and tokens are not kept (SOCIALACCOUNT_STORE_TOKENS = False);
    # tests/test_sso.py checks both tables stay empty through a sign-in.
    ("socialaccount", "socialapp", "secret"),
    ("socialaccount", "socialtoken", "token_secret"),
    # A chat webhook's signing secret (not a password), as a Fernet token: encrypted
    # with CHAT_ENCRYPTION_KEYS, which lives in the environment, never in the database.
    ("accounts_app", "chatchannel", "secret_encrypted"),
}


def suspicious_fields(model_classes) -> list[str]:
    found = []
    for model in model_classes:
        for field in model._meta.get_fields(include_hidden=True):
            names = {field.name, getattr(field, "attname", ""), getattr(field, "db_column", "")}
            key = (model._meta.app_label, model._meta.model_name, field.name)
            if key not in ALLOWED and any(SUSPICIOUS.search(name or "") for name in names):
                found.append(f"{model._meta.label}.{field.name}")
    return found


def make_model(name: str, **fields):
    meta = type("Meta", (), {"app_label": "accounts_app"})
    return type(name, (models.Model,), {**fields, "Meta": meta, "__module__": __name__})


def test_no_model_has_a_field_that_could_hold_a_password():
    assert suspicious_fields(apps.get_models(include_auto_created=True)) == []


def test_the_check_sees_every_app_including_ours():
    labels = {model._meta.label for model in apps.get_models()}

    assert {"accounts_app.AuditEvent", "accounts_app.AccountRequest", "auth.User"} <= labels


@pytest.mark.parametrize("name", ["account_password", "db_passwd", "pwd_hint", "api_secret"])
def test_the_check_catches_a_password_field(name):
    with isolate_apps("accounts_app"):
        model = make_model("Leaky", **{name: models.CharField(max_length=64)})

        assert suspicious_fields([model]) == [f"accounts_app.Leaky.{name}"]


def test_the_check_catches_a_renamed_column():
    with isolate_apps("accounts_app"):
        model = make_model("Sneaky", note=models.CharField(max_length=64, db_column="password"))

        assert suspicious_fields([model]) == ["accounts_app.Sneaky.note"]
