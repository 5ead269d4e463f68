"""Where an account comes from, its groups and its second factor: for the preferences
page and the admin."""

from __future__ import annotations

from dataclasses import dataclass

from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, JSONField, OuterRef, Subquery
from django.urls import reverse

from accounts_app.services.identity import identity_from_claims
from accounts_app.services.mfa import second_factors


@dataclass(frozen=True)
class AccountSource:
    issuer: str  # "" for a local account
    subject: str
    idp_groups: tuple[str, ...]
    mfa_enrolled: bool


def account_source(user) -> AccountSource:
    """In one query: the claims of the user's newest sign-in through the identity
    provider, and whether they have a second factor."""
    newest_sign_in = SocialAccount.objects.filter(user_id=OuterRef("pk")).order_by("-last_login")
    claims, mfa_enrolled = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .values_list(
            Subquery(newest_sign_in.values("extra_data")[:1], output_field=JSONField()),
            Exists(second_factors(OuterRef("pk"))),
        )
        .get()
    )
    if not claims or "id_token" not in claims:
        return AccountSource("", "", (), mfa_enrolled)
    identity = identity_from_claims(claims["id_token"], claims.get("userinfo"))
    return AccountSource(identity.issuer, identity.subject, identity.groups, mfa_enrolled)


def sign_in_options() -> dict:
    """What the sign-in page offers: the IdP when configured, the password form when on."""
    return {
        "sso_name": settings.OIDC_PROVIDER_NAME if settings.OIDC_ISSUER else "",
        "sso_login_url": reverse("openid_connect_login", kwargs={"provider_id": "idp"}),
        "local_login": settings.LOCAL_LOGIN,
    }
