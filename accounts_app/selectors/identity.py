"""Where an account comes from, its groups and its second factor: for the preferences
page and the admin."""

from __future__ import annotations

from dataclasses import dataclass

from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.urls import reverse

from accounts_app.services.identity import ROLE_GROUPS, identity_from_claims
from accounts_app.services.mfa import mfa_enrolled


@dataclass(frozen=True)
class AccountSource:
    issuer: str  # "" for a local account
    subject: str
    idp_groups: tuple[str, ...]
    roles: tuple[str, ...]
    mfa_enrolled: bool


def account_source(user) -> AccountSource:
    account = SocialAccount.objects.filter(user_id=user.pk).order_by("-last_login").first()
    issuer = subject = ""
    idp_groups: tuple[str, ...] = ()
    if account is not None and "id_token" in account.extra_data:
        identity = identity_from_claims(
            account.extra_data["id_token"], account.extra_data.get("userinfo")
        )
        issuer, subject, idp_groups = identity.issuer, identity.subject, identity.groups
    roles = tuple(user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True))
    return AccountSource(issuer, subject, idp_groups, roles, mfa_enrolled(user))


def sign_in_options() -> dict:
    """What the sign-in page offers: the IdP when configured, the password form when on."""
    return {
        "sso_name": settings.OIDC_PROVIDER_NAME if settings.OIDC_ISSUER else "",
        "sso_login_url": reverse("openid_connect_login", kwargs={"provider_id": "idp"}),
        "local_login": settings.LOCAL_LOGIN,
    }
