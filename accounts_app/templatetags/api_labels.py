"""`{% load api_labels %}`: `{{ instance.status|instance_status }}` and friends."""

from __future__ import annotations

from django import template

from accounts_app import api_labels
from accounts_app.alibaba import vpc_auth

register = template.Library()

register.filter("instance_status", api_labels.instance_status_label)
register.filter("architecture", api_labels.architecture_label)
register.filter("edition", api_labels.edition_label)
register.filter("account_status", api_labels.account_status_label)
register.filter("account_type", api_labels.account_type_label)
register.filter("privilege", api_labels.privilege_label)


@register.simple_tag
def password_free_warning() -> str:
    """The one wording of the VpcAuthMode ``Close`` warning (alibaba/vpc_auth.py)."""
    return str(vpc_auth.PASSWORD_FREE_WARNING)
