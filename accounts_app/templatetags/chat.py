"""The preferences page's "Chat accounts" section, as one tag: the page's view stays
as it is, and the section brings its own data."""

from __future__ import annotations

from django import template

from accounts_app.chat.models import ChatIdentity

register = template.Library()


@register.inclusion_tag("preferences/_chat_accounts.html", takes_context=True)
def chat_accounts(context):
    user = context["request"].user
    return {
        "identities": list(ChatIdentity.objects.filter(user=user).order_by("platform")),
        "csrf_token": context.get("csrf_token"),
    }
