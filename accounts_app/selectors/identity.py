"""Where an account comes from, its groups and its second factor: for the preferences
page and the admin."""

from __future__ import annotations

from dataclasses import dataclass

from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, JSONField, OuterRef, QuerySet, Subquery
from django.urls import reverse

from accounts_app.services.identity import identity_from_claims
from accounts_app.services.mfa import second_factors


@dataclass(frozen=True)
class AccountSource:
    issuer: str  # "" for a local account
    subject: str
    idp_groups: tuple[str, ...]
    mfa_enrolled: bool


def with_account_source(users: QuerySet) -> QuerySet:
    """`users`, each with what account_source_of() reads: the claims of their newest
    sign-in through the identity provider, and whether they have a second factor (two
    subqueries: no query per user)."""
    newest_sign_in = SocialAccount.objects.filter(user_id=OuterRef("pk")).order_by("-last_login")
    return users.annotate(
        newest_claims=Subquery(newest_sign_in.values("extra_data")[:1], output_field=JSONField()),
        has_second_factor=Exists(second_factors(OuterRef("pk"))),
    )


def account_source_of(user) -> AccountSource:
    """Where a user read through with_account_source() comes from."""
    claims = user.newest_claims
    if not claims or "id_token" not in claims:
        return AccountSource("", "", (), user.has_second_factor)
    identity = identity_from_claims(claims["id_token"], claims.get("userinfo"))
    return AccountSource(identity.issuer, identity.subject, identity.groups, user.has_second_factor)


def account_source(user) -> AccountSource:
    """Where this user comes from, in one query."""
    users = with_account_source(get_user_model().objects.filter(pk=user.pk))
    return account_source_of(users.get())


def sign_in_options() -> dict:
    """What the sign-in page offers: the IdP when configured, the password form when on."""
    return {
        "sso_name": settings.OIDC_PROVIDER_NAME if settings.OIDC_ISSUER else "",
        "sso_login_url": reverse("openid_connect_login", kwargs={"provider_id": "idp"}),
        "local_login": settings.LOCAL_LOGIN,
    }
