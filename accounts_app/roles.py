"""The three roles, as Django groups, and the permissions each one grants."""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _

REQUESTERS = "Requesters"
APPROVERS = "Approvers"
AUDITORS = "Auditors"

REQUEST_ACCOUNT = "accounts_app.request_account"
APPROVE_REQUEST = "accounts_app.approve_request"
VIEW_EVERYTHING = "accounts_app.view_everything"

# Group name -> codenames of accounts_app permissions (used by migration 0002).
GROUP_PERMISSIONS = {
    REQUESTERS: ["request_account"],
    APPROVERS: ["approve_request", "request_account", "view_everything"],
    AUDITORS: ["view_everything"],
}


def ensure_groups() -> None:
    """Create the role groups with their permissions (idempotent).

    Migration 0002 does this on a new database; this repairs one whose tables
    were emptied (a test flush, a restore of user data only).
    """
    from django.contrib.auth.models import Group, Permission

    for name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.filter(
                content_type__app_label="accounts_app", codename__in=codenames
            )
        )


ROLE_LABELS = {
    REQUEST_ACCOUNT: _("Requester"),
    APPROVE_REQUEST: _("Approver"),
    VIEW_EVERYTHING: _("Auditor or Approver"),
}


def role_names(user) -> list[str]:
    """The user's roles, for the navigation. Read from the permissions already
    loaded for the page (RoleBackend), so showing them costs no query."""
    if not user.is_authenticated:
        return []
    if user.is_superuser:
        return [str(_("Superuser"))]
    names = []
    if user.has_perm(APPROVE_REQUEST):
        names.append(str(_("Approver")))
    elif user.has_perm(REQUEST_ACCOUNT):
        names.append(str(_("Requester")))
    if user.has_perm(VIEW_EVERYTHING) and not user.has_perm(APPROVE_REQUEST):
        names.append(str(_("Auditor")))
    return names


def deny(request, perm: str, *, message=None, reason: str = ""):
    """Audit the refusal, then raise the 403 that names the role needed (or `message`).

    `perm` is what the refused action needs: a permission, or "staff status".
    """
    from accounts_app.audit import Origin, record_event
    from accounts_app.audit.messages import message as audit_message
    from accounts_app.models import AuditEvent

    record_event(
        action=AuditEvent.Action.PERMISSION_DENIED,
        outcome=AuditEvent.Outcome.DENIED,
        origin=Origin.from_request(request),
        message=audit_message(
            "denied.needs_because" if reason else "denied.needs",
            method=request.method,
            path=request.path[:200],
            needs=perm,
            **({"reason": reason} if reason else {}),
        ),
    )
    raise PermissionDenied(
        message
        or _("This page needs the %(role)s role. Ask an administrator to add you to it.")
        % {"role": ROLE_LABELS.get(perm, perm)}
    )


def role_required(perm: str):
    """Like permission_required(raise_exception=True), but audited and explained."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.has_perm(perm):
                deny(request, perm)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
