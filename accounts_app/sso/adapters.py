"""allauth's adapters: no local sign-up, no matching by e-mail, roles from the IdP."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter

from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import message
from accounts_app.models import AuditEvent
from accounts_app.services.identity import identity_apply_roles, identity_from_claims

# Set on the HttpRequest while an OIDC sign-in completes; read by the sign-in receiver.
IDENTITY_ATTRIBUTE = "sso_identity"
ROLE_BACKEND = "accounts_app.backends.RoleBackend"


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        # Local accounts are made by an administrator, never by a visitor.
        return False

    def get_login_stages(self) -> list[str]:
        # The second factor is asked where it matters (approving, executing: reauth.py),
        # and for IdP users the IdP's own assertion counts; not as a sign-in stage.
        return [stage for stage in super().get_login_stages() if ".mfa." not in stage]

    def login(self, request, user) -> None:
        # Our backend loads the permissions in one query (allauth would pick the first
        # backend with get_user, which is django-axes's).
        user.backend = ROLE_BACKEND
        super().login(request, user)

    def send_notification_mail(self, *args, **kwargs) -> None:
        """Our notifications go through accounts_app.notifications, as tasks."""


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin) -> bool:
        # A first sign-in through the company's IdP creates the dashboard user.
        return True

    def is_auto_signup_allowed(self, request, sociallogin) -> bool:
        return True

    def pre_social_login(self, request, sociallogin) -> None:
        identity = _identity(sociallogin)
        setattr(request, IDENTITY_ATTRIBUTE, identity)
        if sociallogin.is_existing:
            identity_apply_roles(
                user=sociallogin.user,
                identity=identity,
                origin=Origin.from_request(request, user=sociallogin.user),
            )

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form)
        identity_apply_roles(
            user=user,
            identity=_identity(sociallogin),
            origin=Origin.from_request(request, user=user),
        )
        return user

    def on_authentication_error(
        self, request, provider, error=None, exception=None, extra_context=None
    ) -> None:
        # The reason, never the code, token or secret of the attempt.
        reason = f"{type(exception).__name__}: {str(exception)[:160]}" if exception else ""
        record_event(
            action=AuditEvent.Action.LOGIN_FAILED,
            outcome=AuditEvent.Outcome.FAILURE,
            origin=Origin.from_request(request),
            message=message(
                "login.idp_refused", provider=provider.name, error=error or "error", reason=reason
            ),
        )


def _identity(sociallogin):
    data = sociallogin.account.extra_data
    return identity_from_claims(data["id_token"], data.get("userinfo"))
