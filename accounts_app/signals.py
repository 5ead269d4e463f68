"""Sign-in, sign-out and failed sign-in go to the audit log; so do changes to users,
roles and approval policies, however they are made (accounts_app.services.admin_changes)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from accounts_app import notifications, reauth
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import message
from accounts_app.models import ApprovalPolicy, AuditEvent
from accounts_app.services import admin_changes, preferences
from accounts_app.sso.adapters import IDENTITY_ATTRIBUTE


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    reauth.mark_signed_in(request)
    preferences.preference_load(user=user, session=request.session)
    identity = getattr(request, IDENTITY_ATTRIBUTE, None)
    if identity is not None:
        reauth.mark_signed_in_through_idp(request, identity)
        said = message("login.idp", issuer=identity.issuer, subject=identity.subject)
        if identity.asserted_second_factor:
            said = message(
                "login.idp_mfa",
                issuer=identity.issuer,
                subject=identity.subject,
                amr=",".join(identity.amr),
            )
    else:
        said = message("login.local" if settings.LOCAL_LOGIN else "login.break_glass")
    event = record_event(
        action=AuditEvent.Action.LOGIN,
        outcome=AuditEvent.Outcome.SUCCESS,
        origin=Origin.from_request(request, user=user),
        message=said,
    )
    if identity is None and not settings.LOCAL_LOGIN:
        notifications.break_glass_sign_in(user=user, event=event)


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
        message=message(
            "login.failed" if settings.LOCAL_LOGIN else "login.failed_local_off",
            username=str(credentials.get("username", ""))[:150],
        ),
    )


# --- Changes to users, roles and policies (the admin, the commands) ---------------------
# Model signals, because Django's admin and the commands (createsuperuser, a shell) go
# through save() and the many-to-many managers, not through a service of ours.

User = get_user_model()


@receiver(pre_save, sender=User)
def remember_user(sender, instance, raw=False, **kwargs):
    if raw:
        return
    previous = User.objects.filter(pk=instance.pk).first() if instance.pk else None
    instance._audit_before = admin_changes.user_snapshot(previous) if previous else None
    instance._audit_password_changed = previous is not None and (
        previous.password != instance.password
    )


@receiver(post_save, sender=User)
def audit_user(sender, instance, created, raw=False, update_fields=None, **kwargs):
    if raw or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # signing in is audited as a sign-in
    admin_changes.user_saved(
        user=instance,
        before=None if created else getattr(instance, "_audit_before", None),
        password_changed=getattr(instance, "_audit_password_changed", False),
    )


@receiver(post_delete, sender=User)
def audit_user_deleted(sender, instance, **kwargs):
    admin_changes.user_deleted(user=instance)


def _m2m(action: str, instance, reverse: bool, pk_set) -> tuple[set[int], set[int], bool] | None:
    """(ids on the user side, ids on the other side, added) of a many-to-many change."""
    if action not in ("post_add", "post_remove") or not pk_set:
        return None
    added = action == "post_add"
    if reverse:
        return set(pk_set), {instance.pk}, added
    return {instance.pk}, set(pk_set), added


@receiver(m2m_changed, sender=User.groups.through)
def audit_memberships(sender, instance, action, reverse, pk_set, **kwargs):
    if action == "pre_clear":
        groups = {instance.pk} if reverse else set(instance.groups.values_list("pk", flat=True))
        users = set(instance.user_set.values_list("pk", flat=True)) if reverse else {instance.pk}
        if users and groups:
            admin_changes.memberships_changed(user_ids=users, group_ids=groups, added=False)
        return
    change = _m2m(action, instance, reverse, pk_set)
    if change:
        users, groups, added = change
        admin_changes.memberships_changed(user_ids=users, group_ids=groups, added=added)


@receiver(m2m_changed, sender=User.user_permissions.through)
def audit_user_permissions(sender, instance, action, reverse, pk_set, **kwargs):
    change = _m2m(action, instance, reverse, pk_set)
    if change:
        users, permissions, added = change
        admin_changes.user_permissions_changed(
            user_ids=users, permission_ids=permissions, added=added
        )


@receiver(m2m_changed, sender=Group.permissions.through)
def audit_group_permissions(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove") or not pk_set:
        return
    added = action == "post_add"
    groups = Group.objects.filter(pk__in=pk_set) if reverse else [instance]
    for group in groups:
        permissions = {instance.pk} if reverse else set(pk_set)
        admin_changes.group_permissions_changed(
            group=group, permission_ids=permissions, added=added
        )


@receiver(pre_save, sender=Group)
def remember_group(sender, instance, raw=False, **kwargs):
    previous = Group.objects.filter(pk=instance.pk).first() if instance.pk and not raw else None
    instance._audit_before_name = previous.name if previous else None


@receiver(post_save, sender=Group)
def audit_group(sender, instance, created, raw=False, **kwargs):
    if not raw:
        admin_changes.group_saved(
            group=instance, before_name=None if created else instance._audit_before_name
        )


@receiver(post_delete, sender=Group)
def audit_group_deleted(sender, instance, **kwargs):
    admin_changes.group_deleted(group=instance)


@receiver(pre_save, sender=ApprovalPolicy)
def remember_policy(sender, instance, raw=False, **kwargs):
    previous = ApprovalPolicy.objects.filter(pk=instance.pk).first() if instance.pk else None
    instance._audit_before = previous.approvals_required if previous else None
    instance._audit_lifetime_before = (
        (previous.max_lifetime_days, previous.allow_no_expiry) if previous else None
    )


@receiver(post_save, sender=ApprovalPolicy)
def audit_policy(sender, instance, raw=False, **kwargs):
    if not raw:
        admin_changes.policy_saved(policy=instance, before=instance._audit_before)
        admin_changes.policy_lifetime_saved(policy=instance, before=instance._audit_lifetime_before)


@receiver(post_delete, sender=ApprovalPolicy)
def audit_policy_deleted(sender, instance, **kwargs):
    admin_changes.policy_deleted(policy=instance)
