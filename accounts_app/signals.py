"""Sign-in, sign-out and failed sign-in go to the audit log."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts_app import reauth
from accounts_app.audit import Origin, record_event
from accounts_app.models import AuditEvent
from accounts_app.services import preferences


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    reauth.mark_signed_in(request)
    preferences.preference_load(user=user, session=request.session)
    record_event(
        action=AuditEvent.Action.LOGIN,
        outcome=AuditEvent.Outcome.SUCCESS,
        origin=Origin.from_request(request, user=user),
    )


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
    record_event(
        action=AuditEvent.Action.LOGIN_FAILED,
        outcome=AuditEvent.Outcome.FAILURE,
        origin=origin,
        comment=f"username: {str(credentials.get('username', ''))[:150]}",
    )
