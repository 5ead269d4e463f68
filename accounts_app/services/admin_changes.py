"""Changes to who may do what, made outside the workflow: through Django's admin or a
management command (users, staff and superuser flags, groups, group membership,
permissions, approval policies). Each is an audit event in the chain (who, what,
before -> after; never a password hash), is mailed to the auditors, and what grants a
role is kept as a RoleGrant so that policy can ask who made an approver an approver.

accounts_app.signals calls these from model signals: the admin and the commands call
save() and the many-to-many managers, and the signals are what they all go through.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from accounts_app import notifications
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import AuditMessage, message
from accounts_app.models import AuditEvent, RoleGrant

Action = AuditEvent.Action
# The user fields an audit event shows before -> after. Never the password: only that
# it changed.
USER_FIELDS = ("username", "email", "is_active", "is_staff", "is_superuser")
# Flags that grant power when they turn on.
GRANTING_FLAGS = ("is_staff", "is_superuser")

# Set while a change is audited by its caller as one event of its own (the identity
# provider's roles at sign-in): the signals it fires still keep their RoleGrants, but
# do not audit each membership a second time.
_audited_by_caller: ContextVar[bool] = ContextVar("audited_by_caller", default=False)


@contextmanager
def audited_by_caller() -> Iterator[None]:
    token = _audited_by_caller.set(True)
    try:
        yield
    finally:
        _audited_by_caller.reset(token)


def _record(action: str, said: AuditMessage, *, origin: Origin | None = None) -> None:
    if _audited_by_caller.get():
        return
    origin = origin or Origin.current()
    event = record_event(
        action=action, outcome=AuditEvent.Outcome.SUCCESS, origin=origin, message=said
    )
    notifications.admin_change(event)


def _grant(user_ids: Iterable[int], what: str, origin: Origin) -> None:
    granted_by = origin.actor if getattr(origin.actor, "pk", None) else None
    RoleGrant.objects.bulk_create(
        RoleGrant(user_id=user_id, granted_by=granted_by, what=what) for user_id in user_ids
    )


def user_snapshot(user) -> dict[str, object]:
    return {name: getattr(user, name) for name in USER_FIELDS}


def user_saved(*, user, before: dict[str, object] | None, password_changed: bool) -> None:
    origin = Origin.current()
    after = user_snapshot(user)
    if before is None:
        flags = ", ".join(f"{k}={v}" for k, v in after.items() if k != "username")
        said = message("admin.user_created", user=user.username, flags=flags)
        _record(Action.USER_CHANGED, said, origin=origin)
        _grant([user.pk], "account", origin)
        for flag in GRANTING_FLAGS:
            if after[flag]:
                _grant([user.pk], flag, origin)
        return
    changes = [f"{k}: {before[k]} -> {after[k]}" for k in USER_FIELDS if before[k] != after[k]]
    if not changes and not password_changed:
        return
    said = message(
        "admin.user_changed_password" if password_changed else "admin.user_changed",
        user=user.username,
        changes="; ".join(changes) or "-",
    )
    _record(Action.USER_CHANGED, said, origin=origin)
    for flag in GRANTING_FLAGS:
        if after[flag] and not before[flag]:
            _grant([user.pk], flag, origin)


def user_deleted(*, user) -> None:
    _record(Action.USER_CHANGED, message("admin.user_deleted", user=user.username))


def memberships_changed(*, user_ids: set[int], group_ids: set[int], added: bool) -> None:
    """Users added to (or removed from) groups, from either side of the relation."""
    origin = Origin.current()
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    groups = sorted(Group.objects.filter(pk__in=group_ids).values_list("name", flat=True))
    sign = "+" if added else "-"
    for user_id in sorted(user_ids):
        change = ", ".join(f"{sign}{name}" for name in groups)
        said = message("admin.user_groups", user=str(names.get(user_id)), change=change)
        _record(Action.ROLE_CHANGED, said, origin=origin)
        if added:
            for name in groups:
                _grant([user_id], f"group {name}", origin)


def user_permissions_changed(*, user_ids: set[int], permission_ids: set[int], added: bool) -> None:
    origin = Origin.current()
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    codenames = _codenames(permission_ids)
    sign = "+" if added else "-"
    for user_id in sorted(user_ids):
        change = ", ".join(f"{sign}{codename}" for codename in codenames)
        said = message("admin.user_permissions", user=str(names.get(user_id)), change=change)
        _record(Action.ROLE_CHANGED, said, origin=origin)
        if added:
            for codename in codenames:
                _grant([user_id], f"permission {codename}", origin)


def group_permissions_changed(*, group, permission_ids: set[int], added: bool) -> None:
    """A group's permissions: a grant to every member."""
    origin = Origin.current()
    codenames = _codenames(permission_ids)
    sign = "+" if added else "-"
    change = ", ".join(f"{sign}{codename}" for codename in codenames)
    said = message("admin.group_permissions", group=group.name, change=change)
    _record(Action.GROUP_CHANGED, said, origin=origin)
    if added:
        members = list(group.user_set.values_list("pk", flat=True))
        for codename in codenames:
            _grant(members, f"permission {codename} through group {group.name}", origin)


def group_saved(*, group, before_name: str | None) -> None:
    if before_name is None:
        _record(Action.GROUP_CHANGED, message("admin.group_created", group=group.name))
    elif before_name != group.name:
        said = message("admin.group_renamed", before=before_name, group=group.name)
        _record(Action.GROUP_CHANGED, said)


def group_deleted(*, group) -> None:
    _record(Action.GROUP_CHANGED, message("admin.group_deleted", group=group.name))


def policy_saved(*, policy, before: int | None) -> None:
    if before == policy.approvals_required:
        return
    said = message(
        "admin.policy_changed",
        privilege=policy.account_privilege,
        was="-" if before is None else before,
        now=policy.approvals_required,
    )
    _record(Action.POLICY_CHANGED, said)


def policy_lifetime_saved(*, policy, before: tuple | None) -> None:
    """The time-boxing rules of a row changed (before: (max days, no expiry allowed))."""
    now = (policy.max_lifetime_days, policy.allow_no_expiry)
    if before == now or (before is None and now == (None, True)):
        return
    was = before or (None, True)
    said = message(
        "admin.policy_lifetime_changed",
        privilege=policy.account_privilege,
        was="-" if was[0] is None else was[0],
        now="-" if now[0] is None else now[0],
        was_open="yes" if was[1] else "no",
        now_open="yes" if now[1] else "no",
    )
    _record(Action.POLICY_CHANGED, said)


def policy_deleted(*, policy) -> None:
    said = message(
        "admin.policy_deleted", privilege=policy.account_privilege, was=policy.approvals_required
    )
    _record(Action.POLICY_CHANGED, said)


def _codenames(permission_ids: set[int]) -> list[str]:
    return sorted(
        f"{app}.{codename}"
        for app, codename in Permission.objects.filter(pk__in=permission_ids).values_list(
            "content_type__app_label", "codename"
        )
    )
