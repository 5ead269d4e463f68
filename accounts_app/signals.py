"""Sign-in, sign-out and failed sign-in go to the audit log."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts_app import notifications, reauth
from accounts_app.audit import Origin, record_event
from accounts_app.models import AuditEvent
from accounts_app.services import preferences
from accounts_app.sso.adapters import IDENTITY_ATTRIBUTE


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    reauth.mark_signed_in(request)
    preferences.preference_load(user=user, session=request.session)
    identity = getattr(request, IDENTITY_ATTRIBUTE, None)
    if identity is not None:
        reauth.mark_signed_in_through_idp(request, identity)
        comment = f"through the IdP: issuer {identity.issuer}, subject {identity.subject}"
        if identity.asserted_second_factor:
            comment += f"; second factor asserted (amr {','.join(identity.amr)})"
    else:
        comment = "local password" if settings.LOCAL_LOGIN else "break-glass local password"
    event = record_event(
        action=AuditEvent.Action.LOGIN,
        outcome=AuditEvent.Outcome.SUCCESS,
        origin=Origin.from_request(request, user=user),
        comment=comment,
    )
    if identity is None and not settings.LOCAL_LOGIN:
        notifications.break_glass_sign_in(user=user, event=event)


@receiver(user_logged_out)
def audit_logout(sender, request, user, **kwargs):
    if user is None:
        return
    record_event(
        action=AuditEvent.Action.LOGOUT,
        outcome=AuditEvent.Outcome.SUCCESS,
        origin=Origin.from_request(request, user=user),
    )


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs):
    # credentials never include the password: Django replaces it with asterisks
    # before sending this signal; only the username is kept.
    origin = Origin.from_request(request) if request is not None else Origin()
    off = "" if settings.LOCAL_LOGIN else " (local sign-in is off but for break-glass users)"
    record_event(
        action=AuditEvent.Action.LOGIN_FAILED,
        outcome=AuditEvent.Outcome.FAILURE,
        origin=origin,
        comment=f"username: {str(credentials.get('username', ''))[:150]}{off}",
    )
