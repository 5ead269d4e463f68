"""Who signed in through the IdP, and the roles their groups give them.

Roles follow the IdP at every sign-in: the role groups (Requesters, Approvers,
Auditors) and staff status are set from the groups claim through OIDC_ROLE_MAP, and
every change is an audit event. Other Django groups are left alone, and the IdP never
makes a superuser.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

from accounts_app import notifications, roles
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import message
from accounts_app.models import AuditEvent
from accounts_app.services.admin_changes import audited_by_caller

STAFF = "staff"
ROLE_GROUPS = (roles.REQUESTERS, roles.APPROVERS, roles.AUDITORS)


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    groups: tuple[str, ...]
    amr: tuple[str, ...] = ()
    acr: str = ""

    @property
    def asserted_second_factor(self) -> bool:
        """The IdP says the sign-in used a second factor (amr, RFC 8176; or acr)."""
        return bool(set(self.amr) & set(settings.OIDC_MFA_AMR)) or (
            bool(self.acr) and self.acr in settings.OIDC_MFA_ACR
        )

    @property
    def roles(self) -> set[str]:
        return {settings.OIDC_ROLE_MAP[g] for g in self.groups if g in settings.OIDC_ROLE_MAP}


def identity_from_claims(id_token: dict, userinfo: dict | None = None) -> Identity:
    """From the verified ID token (and userinfo for the groups, if the IdP puts them there)."""
    claim = settings.OIDC_GROUPS_CLAIM
    groups = id_token.get(claim)
    if groups is None and userinfo:
        groups = userinfo.get(claim)
    if isinstance(groups, str):
        groups = [groups]
    amr = id_token.get("amr") or []
    return Identity(
        issuer=str(id_token["iss"]),
        subject=str(id_token["sub"]),
        groups=tuple(sorted(str(g) for g in groups or [])),
        amr=tuple(str(a) for a in amr) if isinstance(amr, list) else (),
        acr=str(id_token.get("acr") or ""),
    )


def identity_uid(issuer: str, subject: str) -> str:
    """The key a user is found by: issuer and subject, never an e-mail address."""
    return f"{issuer.rstrip('/')}#{subject}"


@transaction.atomic
def identity_apply_roles(*, user, identity: Identity, origin: Origin) -> set[str]:
    """Set the user's roles from the IdP's groups; audit what changed. The roles held."""
    wanted = identity.roles
    held = set(user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True))
    added = sorted((wanted & set(ROLE_GROUPS)) - held)
    removed = sorted(held - wanted)
    staff = STAFF in wanted
    with audited_by_caller():  # below, as one event
        if added:
            user.groups.add(*Group.objects.filter(name__in=added))
        if removed:
            user.groups.remove(*Group.objects.filter(name__in=removed))
        if user.is_staff != staff:
            (added if staff else removed).append(STAFF)
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
    if added or removed:
        event = record_event(
            action=AuditEvent.Action.ROLES_CHANGED,
            outcome=AuditEvent.Outcome.SUCCESS,
            origin=origin,
            message=message(
                "roles.from_idp",
                issuer=identity.issuer,
                subject=identity.subject,
                added=", ".join(added) or "-",
                removed=", ".join(removed) or "-",
                groups=", ".join(identity.groups) or "-",
            ),
        )
        notifications.admin_change(event)
    return (wanted & set(ROLE_GROUPS)) | ({STAFF} if staff else set())
