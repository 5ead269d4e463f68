"""The dashboard's own second factor: TOTP, with recovery codes (allauth's authenticators).

A TOTP secret waits in the session until the user proves it with a code; recovery
codes are generated once enrolment succeeds and shown once. Every enrolment, use and
failed code is an audit event (never the code or the secret).
"""

from __future__ import annotations

import base64
from datetime import timedelta

from allauth.mfa.adapter import get_adapter as mfa_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret, validate_totp_code
from django.db import transaction
from django.utils import timezone

from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import AuditMessage, message
from accounts_app.models import AuditEvent

PENDING_TOTP_KEY = "mfa_pending_totp"
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)


def second_factors(user_id):
    """The user's TOTP authenticators (`user_id`: a key, or OuterRef to one in a query)."""
    return Authenticator.objects.filter(user_id=user_id, type=Authenticator.Type.TOTP)


def mfa_enrolled(user) -> bool:
    return second_factors(user.pk).exists()


def mfa_enrolment_secret(*, session) -> str:
    """The secret being enrolled, made on first use and kept until confirmed."""
    if not session.get(PENDING_TOTP_KEY):
        session[PENDING_TOTP_KEY] = generate_totp_secret()
    return session[PENDING_TOTP_KEY]


def mfa_enrolment_qr(*, user, secret: str) -> str:
    """The QR code as a data: URL (our CSP allows data: images, not inline styles)."""
    adapter = mfa_adapter()
    svg = adapter.build_totp_svg(adapter.build_totp_url(user, secret))
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@transaction.atomic
def mfa_enrol(*, user, session, code: str, origin: Origin) -> list[str] | None:
    """Turn TOTP on if `code` proves the pending secret: the recovery codes, else None."""
    secret = session.get(PENDING_TOTP_KEY)
    if not secret or mfa_enrolled(user) or not validate_totp_code(secret, code):
        _audit(AuditEvent.Action.MFA_FAILED, origin, message("mfa.enrolment_refused"))
        return None
    TOTP.activate(user, secret)
    codes = RecoveryCodes.activate(user).get_unused_codes()
    del session[PENDING_TOTP_KEY]
    _audit(AuditEvent.Action.MFA_ENROLLED, origin, message("mfa.enrolled"))
    return codes


def mfa_verify(*, user, code: str, origin: Origin) -> bool:
    """A TOTP code (each used once) or an unused recovery code.

    After MAX_FAILURES refused codes in FAILURE_WINDOW no code is checked until the
    window has passed: six digits do not stand up to unlimited guessing.
    """
    code = code.strip().replace(" ", "")
    if _recent_failures(user) >= MAX_FAILURES:
        _audit(AuditEvent.Action.MFA_FAILED, origin, message("mfa.throttled"))
        return False
    for authenticator in Authenticator.objects.filter(user_id=user.pk):
        wrapped = authenticator.wrap()
        if code and wrapped.validate_code(code):
            authenticator.record_usage()
            _audit(AuditEvent.Action.MFA_USED, origin, message("mfa.used", kind=authenticator.type))
            return True
    _audit(AuditEvent.Action.MFA_FAILED, origin, message("mfa.refused"))
    return False


def _recent_failures(user) -> int:
    since = timezone.now() - FAILURE_WINDOW
    return AuditEvent.objects.filter(
        action=AuditEvent.Action.MFA_FAILED, actor_id=user.pk, created_at__gte=since
    ).count()


def _audit(action: str, origin: Origin, said: AuditMessage) -> None:
    record_event(action=action, outcome=_outcome(action), origin=origin, message=said)


def _outcome(action: str) -> str:
    if action == AuditEvent.Action.MFA_FAILED:
        return AuditEvent.Outcome.FAILURE
    return AuditEvent.Outcome.SUCCESS
