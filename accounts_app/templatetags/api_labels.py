"""`{% load api_labels %}`: `{{ instance.status|instance_status }}` and friends."""

from __future__ import annotations

from django import template
from django.utils import timezone

from accounts_app import api_labels, vpc_auth, wording
from accounts_app.alibaba.errors import human_message_for
from accounts_app.audit.messages import event_text

register = template.Library()

register.filter("instance_status", api_labels.instance_status_label)
register.filter("architecture", api_labels.architecture_label)
register.filter("edition", api_labels.edition_label)
register.filter("account_status", api_labels.account_status_label)
register.filter("account_type", api_labels.account_type_label)
register.filter("privilege", api_labels.privilege_label)
register.filter("region", api_labels.region_label)
# An audit event's message in the reader's language, then its comment.
register.filter("event_text", event_text)


@register.simple_tag
def password_free_warning() -> str:
    """The one wording of the VpcAuthMode ``Close`` warning (vpc_auth.py)."""
    return str(vpc_auth.PASSWORD_FREE_WARNING)


@register.simple_tag
def instance_gone() -> str:
    return str(wording.INSTANCE_GONE)


@register.filter
def error_explanation(account_request) -> str:
    """The request's error in the reader's language, built from its code when known;
    error_message keeps the words of the moment, in the executor's language."""
    if not account_request.error_code:
        return account_request.error_message
    return str(human_message_for(account_request.error_code, account_request.error_message))


@register.filter
def overdue(account_request) -> bool:
    """The account this request made is past its expiry and not deleted yet."""
    return account_request is not None and account_request.is_overdue(timezone.now())
