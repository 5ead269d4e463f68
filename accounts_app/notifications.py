"""E-mail notifications. Sent after the transaction commits; a failure to send
is logged and never undoes or blocks a transition. No mail carries a password:
none of these functions is ever given one."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from accounts_app.models import AccountRequest

logger = logging.getLogger(__name__)

# accounts_app.roles.AUDITORS, named again: roles is a layer above this module.
AUDITORS_GROUP = "Auditors"


def approvers_emails(exclude_user_id: int | None = None) -> list[str]:
    User = get_user_model()
    users = (
        User.objects.filter(is_active=True)
        .filter(
            Q(
                groups__permissions__codename="approve_request",
                groups__permissions__content_type__app_label="accounts_app",
            )
            | Q(is_superuser=True)
        )
        .exclude(email="")
        .distinct()
    )
    if exclude_user_id is not None:
        users = users.exclude(pk=exclude_user_id)
    return list(users.values_list("email", flat=True))


def _send(subject_template: str, account_request: AccountRequest, recipients: list[str], **extra):
    if not recipients:
        return
    context = {
        "request_obj": account_request,
        "url": settings.SITE_URL.rstrip("/") + reverse("request_detail", args=[account_request.pk]),
        **extra,
    }

    def deliver():
        try:
            # Mails go out in the site's default language: recipients may read
            # in a different language from the person whose action sent them.
            with translation.override(settings.LANGUAGE_CODE):
                subject = render_to_string(f"email/{subject_template}_subject.txt", context).strip()
                body = render_to_string(f"email/{subject_template}_body.txt", context)
            send_mail(subject, body, None, recipients)
        except Exception:
            logger.exception("could not send the %s notification", subject_template)

    transaction.on_commit(deliver)


def request_submitted(account_request: AccountRequest) -> None:
    _send(
        "submitted", account_request, approvers_emails(exclude_user_id=account_request.requester_id)
    )


def request_decided(account_request: AccountRequest, *, verdict: str, approver) -> None:
    _send(
        "decided",
        account_request,
        [account_request.requester.email] if account_request.requester.email else [],
        verdict=verdict,
        approver=approver,
    )


def request_expired(account_request: AccountRequest) -> None:
    _send(
        "expired",
        account_request,
        [account_request.requester.email] if account_request.requester.email else [],
    )


def request_finished(account_request: AccountRequest) -> None:
    _send(
        "finished",
        account_request,
        [account_request.requester.email] if account_request.requester.email else [],
    )


def request_needs_reconciliation(account_request: AccountRequest) -> None:
    _send("reconciliation", account_request, approvers_emails())


def auditors_emails() -> list[str]:
    """The Auditors group's members (and superusers): who reads changes to the rules."""
    User = get_user_model()
    users = (
        User.objects.filter(is_active=True)
        .filter(Q(groups__name=AUDITORS_GROUP) | Q(is_superuser=True))
        .exclude(email="")
        .distinct()
    )
    return list(users.values_list("email", flat=True))


def _send_to(template: str, recipients: list[str], context: dict) -> None:
    if not recipients:
        return

    def deliver():
        try:
            with translation.override(settings.LANGUAGE_CODE):
                subject = render_to_string(f"email/{template}_subject.txt", context).strip()
                body = render_to_string(f"email/{template}_body.txt", context)
            send_mail(subject, body, None, recipients)
        except Exception:
            logger.exception("could not send the %s notification", template)

    transaction.on_commit(deliver)


def admin_change(event) -> None:
    """An audited change to users, roles or policies, for the auditors."""
    _send_to(
        "admin_change",
        auditors_emails(),
        {"event": event, "url": settings.SITE_URL.rstrip("/") + reverse("audit")},
    )


def audit_checkpoint(*, seq: int, digest: str, at) -> None:
    """The audit chain's head, published where the database's owner cannot rewrite it.

    Sent at once, not after a commit: publishing writes nothing to wait for."""
    recipients = auditors_emails()
    if not recipients:
        return
    context = {"seq": seq, "hash": digest, "at": at}
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string("email/checkpoint_subject.txt", context).strip()
        body = render_to_string("email/checkpoint_body.txt", context)
    send_mail(subject, body, None, recipients)
