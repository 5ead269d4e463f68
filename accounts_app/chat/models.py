"""A chat channel: one group of one platform, and the events it is told about."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts_app.chat import secrets


class ChatEvent(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    CREATED = "created", _("Created")
    FAILED = "failed", _("Failed")
    OUTCOME_UNKNOWN = "outcome_unknown", _("Outcome unknown")
    EXPIRED = "expired", _("Expired")
    DRIFT = "drift", _("Drift found by the account sweep")


class ChatChannel(models.Model):
    class Kind(models.TextChoices):
        DINGTALK = "dingtalk", _("DingTalk custom robot")
        FEISHU = "feishu", _("Feishu/Lark custom bot")
        WECOM = "wecom", _("WeCom group robot")
        SLACK = "slack", _("Slack incoming webhook")

    class Language(models.TextChoices):
        ENGLISH = "en", "English"
        CHINESE = "zh-hans", "简体中文"

    name = models.CharField(_("name"), max_length=64, unique=True)
    kind = models.CharField(_("platform"), max_length=16, choices=Kind)
    # Fernet tokens (accounts_app/chat/secrets.py): never the plain URL or secret.
    url_encrypted = models.TextField(_("webhook URL (encrypted)"))
    secret_encrypted = models.TextField(_("signing secret (encrypted)"), blank=True)
    language = models.CharField(_("language"), max_length=8, choices=Language, default="en")
    # ChatEvent values; empty: every event.
    events = models.JSONField(_("events"), default=list, blank=True)
    # Region IDs; empty: every region.
    regions = models.JSONField(_("regions"), default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("chat channel")
        verbose_name_plural = _("chat channels")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def __repr__(self) -> str:
        return f"<ChatChannel {self.pk} {self.name} {self.kind}>"

    @property
    def url(self) -> str:
        return secrets.decrypt(self.url_encrypted)

    @url.setter
    def url(self, value: str) -> None:
        self.url_encrypted = secrets.encrypt(value)

    @property
    def secret(self) -> str:
        return secrets.decrypt(self.secret_encrypted)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = secrets.encrypt(value)

    @property
    def masked_url(self) -> str:
        return secrets.mask_url(self.url)

    @property
    def masked_secret(self) -> str:
        return secrets.mask_secret(self.secret)

    def wants(self, event: str, region_id: str) -> bool:
        return (not self.events or event in self.events) and (
            not self.regions or region_id in self.regions
        )


class ChatPlatform(models.TextChoices):
    """The platforms whose buttons call back: the only ones a chat user links to."""

    SLACK = "slack", "Slack"
    FEISHU = "feishu", _("Feishu/Lark")


class ChatIdentity(models.Model):
    """A dashboard user's account on a chat platform, linked once by a signed one-time
    code (never by display name). A chat decision acts as this user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="chat_identities",
        verbose_name=_("user"),
    )
    platform = models.CharField(_("platform"), max_length=16, choices=ChatPlatform)
    # Slack's user ID (U…), Feishu's open_id (ou_…): stable, unlike a display name.
    external_id = models.CharField(_("chat user ID"), max_length=128)
    linked_at = models.DateTimeField(_("linked at"), auto_now_add=True)

    class Meta:
        verbose_name = _("chat identity")
        verbose_name_plural = _("chat identities")
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "external_id"], name="one_user_per_chat_identity"
            ),
            models.UniqueConstraint(fields=["user", "platform"], name="one_chat_identity_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.platform}"


class ChatNonce(models.Model):
    """Something signed that is accepted once: a callback (replays are refused) or a
    link code. The unique key makes the second use fail, whatever the race."""

    scope = models.CharField(max_length=16)
    key = models.CharField(max_length=64)
    seen_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="one_use_per_chat_nonce")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key[:12]}"
