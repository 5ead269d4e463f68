"""Linking a chat account on the preferences page."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts_app.chat.models import ChatPlatform


class ChatLinkForm(forms.Form):
    code = forms.CharField(label=_("One-time code from the chat"), max_length=500, required=False)
    unlink = forms.ChoiceField(choices=ChatPlatform.choices, required=False)
