from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts_app.chat.models import ChatChannel, ChatIdentity
from accounts_app.forms.chat import ChatChannelForm
from accounts_app.models import (
    AccountRequest,
    ApiToken,
    ApprovalPolicy,
    AuditEvent,
    Decision,
    Instance,
)
from accounts_app.selectors.identity import account_source_of, with_account_source
from accounts_app.services.identity import ROLE_GROUPS


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "kind",
        "account_privilege",
        "approvals_required",
        "max_lifetime_days",
        "allow_no_expiry",
    ]

    def get_readonly_fields(self, request, obj=None):
        # A row's kind is chosen when it is added; changing it would silently move the rule.
        return ["kind"] if obj else []


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown for reading; every change goes through the services and their audit events."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Instance)
class InstanceAdmin(ReadOnlyAdmin):
    list_display = ["instance_id", "name", "region_id", "engine_version", "status", "account_count"]
    list_filter = ["region_id", "status", "engine_version", "architecture_type"]
    search_fields = ["instance_id", "name"]


@admin.register(AccountRequest)
class AccountRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "account_name", "instance", "account_privilege", "requester", "status"]
    list_filter = ["status", "account_privilege"]
    search_fields = ["account_name", "instance__instance_id"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["request", "approver", "verdict", "created_at"]
    # A request is shown with its instance: without it, a query per row.
    list_select_related = ["request__instance", "approver"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "seq",
        "created_at",
        "actor_name",
        "action",
        "instance_id",
        "account_name",
        "outcome",
    ]
    list_filter = ["action", "outcome"]
    search_fields = ["account_name", "instance_id", "actor_name"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Staff revoke anyone's token; the token itself is not kept, only its digest."""

    list_display = ["name", "user", "prefix", "scopes", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    exclude = ["digest"]
    actions = ["revoke"]

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        queryset.filter(revoked_at=None).update(revoked_at=timezone.now())


@admin.register(ChatChannel)
class ChatChannelAdmin(admin.ModelAdmin):
    """Staff add and edit channels here; the URL and secret are only ever shown masked."""

    form = ChatChannelForm
    list_display = ["name", "kind", "masked_url", "masked_secret", "language", "is_active"]
    list_filter = ["kind", "language", "is_active"]
    readonly_fields = ["masked_url", "masked_secret"]
    fields = [
        "name",
        "kind",
        "masked_url",
        "webhook_url",
        "masked_secret",
        "signing_secret",
        "language",
        "events",
        "regions",
        "is_active",
    ]

    @admin.display(description=_("webhook URL"))
    def masked_url(self, channel: ChatChannel) -> str:
        return channel.masked_url if channel.url_encrypted else "-"

    @admin.display(description=_("signing secret"))
    def masked_secret(self, channel: ChatChannel) -> str:
        return channel.masked_secret or "-"


@admin.register(ChatIdentity)
class ChatIdentityAdmin(ReadOnlyAdmin):
    """Linked chat users; deleting one unlinks it (the user links again from the chat)."""

    list_display = ["user", "platform", "external_id", "linked_at"]
    list_filter = ["platform"]
    search_fields = ["user__username", "external_id"]

    def has_delete_permission(self, request, obj=None):
        return request.user.is_staff


# Background work: tasks, failures, syncs, deliveries, workers.
import accounts_app.background.admin  # noqa: E402, F401

# --- Users: where each account comes from, its groups, its second factor --------------

User = get_user_model()


class IdentityUserAdmin(UserAdmin):
    list_display = [*UserAdmin.list_display, "comes_from", "role_groups", "second_factor"]
    readonly_fields = ["comes_from", "idp_groups", "role_groups", "second_factor"]
    fieldsets = [*UserAdmin.fieldsets, (_("Identity"), {"fields": readonly_fields})]

    def get_queryset(self, request):
        # Read with the users, not per user: the list asked three queries of each row.
        users = with_account_source(super().get_queryset(request))
        role_groups = Group.objects.filter(name__in=ROLE_GROUPS).order_by("name")
        return users.prefetch_related(Prefetch("groups", role_groups, to_attr="role_groups_held"))

    @admin.display(description=_("comes from"))
    def comes_from(self, user):
        return account_source_of(user).issuer or _("local account")

    @admin.display(description=_("groups at the identity provider"))
    def idp_groups(self, user):
        return ", ".join(account_source_of(user).idp_groups) or "-"

    @admin.display(description=_("roles"))
    def role_groups(self, user):
        return ", ".join(group.name for group in user.role_groups_held) or "-"

    @admin.display(description=_("two-factor authentication"), boolean=True)
    def second_factor(self, user):
        return account_source_of(user).mfa_enrolled


admin.site.unregister(User)
admin.site.register(User, IdentityUserAdmin)
