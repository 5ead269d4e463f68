"""Chat: linking a chat account (preferences page), a channel (admin)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts_app.chat.models import ChatChannel, ChatEvent, ChatPlatform
from accounts_app.services.chat import validate_webhook_url


class ChatLinkForm(forms.Form):
    code = forms.CharField(label=_("One-time code from the chat"), max_length=500, required=False)
    unlink = forms.ChoiceField(choices=ChatPlatform.choices, required=False)


class ChatChannelForm(forms.ModelForm):
    """The admin's form: the URL and secret are typed in, never shown back."""

    webhook_url = forms.CharField(
        label=_("Webhook URL"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("A credential: kept encrypted, shown masked. Leave empty to keep it."),
    )
    signing_secret = forms.CharField(
        label=_("Signing secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("DingTalk and Feishu/Lark, when the bot signs. Leave empty to keep it."),
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=ChatEvent.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every event."),
    )
    regions = forms.CharField(
        label=_("Regions"),
        required=False,
        help_text=_("Comma-separated region IDs; empty: every region."),
    )

    class Meta:
        model = ChatChannel
        fields = ["name", "kind", "language", "events", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["regions"] = ", ".join(self.instance.regions or [])

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data["webhook_url"].strip()
        if not url and not self.instance.url_encrypted:
            raise ValidationError(_("A new channel needs its webhook URL."))
        if url:
            validate_webhook_url(url)
        return url

    def clean_regions(self) -> list[str]:
        return [
            region.strip() for region in self.cleaned_data["regions"].split(",") if region.strip()
        ]

    def save(self, commit: bool = True) -> ChatChannel:
        channel = super().save(commit=False)
        channel.regions = self.cleaned_data["regions"]
        if self.cleaned_data["webhook_url"]:
            channel.url = self.cleaned_data["webhook_url"]
        if self.cleaned_data["signing_secret"]:
            channel.secret = self.cleaned_data["signing_secret"]
        if commit:
            channel.save()
        return channel
