"""Who may do what: one function per question.

Views gate their routes with these, selectors filter with them, the workflow
services guard their transitions with them, and templates get their answers
(request_actions) instead of working them out again: a button cannot disagree
with the rule it stands for. The roles themselves (groups and permissions) are
in accounts_app.roles; the state rules (open, stale, cancellable) on the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Case, Exists, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts_app import roles
from accounts_app.models import AccountRequest, ApprovalPolicy, Decision, RoleGrant

# --- Roles --------------------------------------------------------------------


def may_request(user) -> bool:
    return user.has_perm(roles.REQUEST_ACCOUNT)


def may_approve(user) -> bool:
    """Holds the Approver role (whether a given request may be decided: may_decide)."""
    return user.has_perm(roles.APPROVE_REQUEST)


def may_view_everything(user) -> bool:
    return user.has_perm(roles.VIEW_EVERYTHING)


def may_sync_inventory(user) -> bool:
    """Staff, not a role: a sync calls DescribeInstances over every region and
    rewrites the whole inventory, an administrator's task outside the request
    workflow (and a new permission would need a data migration)."""
    return user.is_staff


def may_refresh_accounts(user) -> bool:
    """Read an instance's accounts again now (its page): staff, and Approvers, who act on
    what the sweep finds."""
    return user.is_staff or may_approve(user)


# --- Signing in ---------------------------------------------------------------


def may_sign_in_locally(user) -> bool:
    """With a password: anyone while LOCAL_LOGIN is on; then only the named
    break-glass superusers."""
    if settings.LOCAL_LOGIN:
        return True
    return user.is_superuser and user.get_username() in settings.BREAK_GLASS_USERS


def needs_second_factor(user, step: str) -> bool:
    """With MFA_REQUIRED: executing ("execute"), and an approver's decisions ("approve")."""
    if not settings.MFA_REQUIRED:
        return False
    return step == "execute" or (step == "approve" and may_approve(user))


# --- One request --------------------------------------------------------------


def owns(user, account_request: AccountRequest) -> bool:
    return account_request.requester_id == user.pk


def may_see_request(user, account_request: AccountRequest) -> bool:
    """You see your own requests, unless you may read every request."""
    return owns(user, account_request) or may_view_everything(user)


def may_decide_on(user, account_request: AccountRequest) -> bool:
    """Four eyes: an Approver, not the requester, and not made an approver by the
    requester or too recently (approver_conflict)."""
    return (
        may_approve(user)
        and not owns(user, account_request)
        and not _approver_conflict_for(user, account_request)
    )


def _approver_conflict_for(user, account_request: AccountRequest) -> str:
    """approver_conflict, read from the request's columns when its query added them for
    this very user (selectors.requests.visible_request); else asked."""
    if getattr(account_request, "conflict_columns_for", None) == user.pk:
        return approver_conflict_of(account_request)
    return approver_conflict(user, account_request.requester_id)


def deciders_emails(account_request: AccountRequest) -> list[str]:
    """The addresses of everyone who may decide on this request: the mail about a
    pending request goes to them, and only them."""
    deciders = approvers_who_may_decide(account_request).exclude(email="")
    return sorted(set(deciders.values_list("email", flat=True)))


# --- Four eyes that survive an administrator ----------------------------------


def approver_wait_start() -> datetime:
    """A grant given after this time still holds its approver back (APPROVER_WAIT_HOURS)."""
    return timezone.now() - timedelta(hours=settings.APPROVER_WAIT_HOURS)


def _granted_recently(since: datetime | None = None) -> Q:
    """A RoleGrant given within the last APPROVER_WAIT_HOURS (none when that is 0);
    ``since``: approver_wait_start(), when the caller already has it."""
    if settings.APPROVER_WAIT_HOURS <= 0:
        return Q(pk__in=[])
    return Q(granted_at__gte=since or approver_wait_start())


def approver_conflict(approver, requester_id: int) -> str:
    """Why this approver may not decide this requester's requests; empty when they may.
    One query for both reasons: the grant that stands in the way, by the requester first."""
    by_requester = Q(granted_by_id=requester_id)
    grants = RoleGrant.objects.filter(user=approver).filter(by_requester | _granted_recently())
    # (pk, granter) of the grant in the way, one by the requester first; None when none is.
    conflict = (
        grants.order_by(Case(When(by_requester, then=0), default=1))
        .values_list("pk", "granted_by_id")
        .first()
    )
    if conflict is None:
        return ""
    return approver_conflict_said(by_requester=conflict[1] == requester_id)


def approver_conflict_columns(approver, *, since: datetime | None = None) -> dict:
    """approver_conflict as two columns of a query of requests (each row's requester),
    for a caller that reads the request anyway: approver_conflict_of() says it.
    ``since``: approver_wait_start(), when the caller already has it."""
    grants = RoleGrant.objects.filter(user=approver)
    return {
        "conflict_by_requester": Exists(grants.filter(granted_by_id=OuterRef("requester_id"))),
        "conflict_recent": (
            Exists(grants.filter(_granted_recently(since)))
            if settings.APPROVER_WAIT_HOURS > 0
            else Value(False)
        ),
    }


def approver_conflict_of(account_request: AccountRequest) -> str:
    """approver_conflict, from the columns approver_conflict_columns() added."""
    if account_request.conflict_by_requester:
        return approver_conflict_said(by_requester=True)
    return approver_conflict_said(by_requester=False) if account_request.conflict_recent else ""


def approver_conflict_said(*, by_requester: bool) -> str:
    """The reason of approver_conflict: the requester gave the grant, or it is too new."""
    if by_requester:
        return str(
            _(
                "You were given your role or your account by the requester: someone else "
                "must decide on their requests."
            )
        )
    return str(
        _(
            "Your role or your account is less than %(hours)s hours old: you may "
            "approve requests once that time has passed."
        )
        % {"hours": settings.APPROVER_WAIT_HOURS}
    )


def may_decide(user, account_request: AccountRequest) -> bool:
    """Approve or reject now: pending, four eyes, and not decided by this user yet.
    Reads prefetched decisions when the caller loaded them."""
    return (
        account_request.is_pending
        and may_decide_on(user, account_request)
        and all(d.approver_id != user.pk for d in account_request.decisions.all())
    )


def may_decide_from_chat(account_request: AccountRequest) -> bool:
    """Chat buttons carry no second factor or re-authentication: only the privileges of
    CHAT_APPROVABLE_PRIVILEGES may be decided there; the others, on the page."""
    return account_request.account_privilege in settings.CHAT_APPROVABLE_PRIVILEGES


def may_cancel(user, account_request: AccountRequest) -> bool:
    return owns(user, account_request) and account_request.is_cancellable


def may_execute(user, account_request: AccountRequest) -> bool:
    """Only the requester creates the account, once approved (a fleet: may_execute_fleet)."""
    return (
        owns(user, account_request) and account_request.is_approved and not account_request.is_fleet
    )


def may_reconcile_on(user, account_request: AccountRequest) -> bool:
    return owns(user, account_request) or may_approve(user)


def may_reconcile(user, account_request: AccountRequest) -> bool:
    return account_request.needs_reconciliation and may_reconcile_on(user, account_request)


def may_copy(user, account_request: AccountRequest) -> bool:
    return owns(user, account_request) and may_request(user)


@dataclass(frozen=True)
class RequestActions:
    """The answers a request's page shows as buttons."""

    decide: bool
    cancel: bool
    execute: bool
    reconcile: bool
    copy: bool
    is_requester: bool
    execute_fleet: bool = False
    extend: bool = False


def request_actions(user, account_request: AccountRequest) -> RequestActions:
    return RequestActions(
        decide=may_decide(user, account_request),
        cancel=may_cancel(user, account_request),
        execute=may_execute(user, account_request),
        reconcile=may_reconcile(user, account_request),
        copy=may_copy(user, account_request),
        is_requester=owns(user, account_request),
        execute_fleet=may_execute_fleet(user, account_request),
        extend=may_extend(user, account_request),
    )


def may_extend(user, account_request: AccountRequest) -> bool:
    """Ask for a later expiry: the requester of the request that made a time-boxed
    account, while the account lives (an extension is approved like any request)."""
    return (
        owns(user, account_request)
        and may_request(user)
        and account_request.account_expires_at is not None
    )


# --- The approval policy (ApprovalPolicy rows, and the defaults without one) -------

# Used where the admin-editable ApprovalPolicy has no row for a privilege.
DEFAULT_APPROVALS = {"RoleReadOnly": 1, "RoleReadWrite": 1, "RoleRepl": 2}
CREATE = AccountRequest.Kind.CREATE


def policy_row(kind: str, privilege: str) -> ApprovalPolicy | None:
    """The policy's row for this kind of request and privilege; a kind without a row of
    its own asks what creating an account of that privilege asks (so an upgrade to
    read/write asks what creating a read/write account asks). One query."""
    rows = ApprovalPolicy.objects.filter(kind__in={kind, CREATE}, account_privilege=privilege)
    by_kind = {row.kind: row for row in rows}
    return by_kind.get(kind) or by_kind.get(CREATE)


def approvals_required(kind: str, privilege: str) -> int:
    """How many distinct approvers a request of this kind and privilege needs: every
    kind, one instance or a fleet (whose size may add one: fleet_extra_approvals)."""
    row = policy_row(kind, privilege)
    return _with_floor(privilege, row.approvals_required if row else None)


def approvals_required_by_privilege() -> dict[str, int]:
    """approvals_required for creating each privilege, in one query (the form shows them)."""
    return creation_policy_by_privilege()[0]


def creation_policy_by_privilege() -> tuple[dict[str, int], dict[str, Lifetime]]:
    """For creating each privilege: the approvals it needs and its lifetime rules, in one
    query (the request form says both, and checks the second in the browser)."""
    rows = {row.account_privilege: row for row in ApprovalPolicy.objects.filter(kind=CREATE)}
    approvals = {
        p: _with_floor(p, rows[p].approvals_required if p in rows else None)
        for p in DEFAULT_APPROVALS
    }
    return approvals, {p: _lifetime(rows.get(p)) for p in DEFAULT_APPROVALS}


def creation_rules(privilege: str) -> tuple[int, Lifetime]:
    """What creating an account of this privilege needs and may live, in one query."""
    row = policy_row(CREATE, privilege)
    return _with_floor(privilege, row.approvals_required if row else None), _lifetime(row)


def _with_floor(privilege: str, from_policy: int | None) -> int:
    """The one place MIN_APPROVALS is applied: a row written before the floor was
    raised does not lower it."""
    required = DEFAULT_APPROVALS.get(privilege, 1) if from_policy is None else from_policy
    return max(required, settings.MIN_APPROVALS)


# --- Time-boxed accounts -------------------------------------------------------


@dataclass(frozen=True)
class Lifetime:
    """What the policy allows an account of one privilege to live."""

    max_days: int | None  # None: no maximum
    allow_no_expiry: bool


def lifetime_for(privilege: str) -> Lifetime:
    """The creation row of the privilege says, for every kind (an extension, an adoption)."""
    return _lifetime(
        ApprovalPolicy.objects.filter(kind=CREATE, account_privilege=privilege).first()
    )


def _lifetime(row: ApprovalPolicy | None) -> Lifetime:
    if row is None:
        return Lifetime(None, True)
    return Lifetime(row.max_lifetime_days, row.allow_no_expiry)


def expiry_refusal(lifetime: Lifetime, expires_at, now) -> str:
    """Why this expiry (None: none) may not be asked for under ``lifetime``; empty when
    it may. The maximum counts from ``now`` (the request, or the extension)."""
    if expires_at is None:
        if lifetime.allow_no_expiry:
            return ""
        if lifetime.max_days:
            return str(
                _("This privilege needs an expiry, at most %(days)s days from today.")
                % {"days": lifetime.max_days}
            )
        return str(_("This privilege needs an expiry."))
    if expires_at <= now:
        return str(_("The expiry must be in the future."))
    if lifetime.max_days is not None and expires_at > now + timedelta(days=lifetime.max_days):
        return str(
            _("The approval policy allows at most %(days)s days for this privilege.")
            % {"days": lifetime.max_days}
        )
    return ""


# --- Fleet requests (one account on many instances) ----------------------------


def _fleet_policy(privilege: str) -> ApprovalPolicy | None:
    # A fleet request creates accounts: the creation row of its privilege says.
    return policy_row(CREATE, privilege)


def fleet_size_refusal(privilege: str, size: int) -> str:
    """Why a fleet of ``size`` instances may not be requested with this privilege's
    policy; empty when it may."""
    row = _fleet_policy(privilege)
    if row is not None and row.max_fleet_size is not None and size > row.max_fleet_size:
        return str(
            _("The approval policy allows at most %(max)s instances in one request.")
            % {"max": row.max_fleet_size}
        )
    return ""


def fleet_extra_approvals(privilege: str, size: int) -> int:
    """Approvals a fleet needs beyond the privilege's own: one above the policy's size."""
    row = _fleet_policy(privilege)
    above = row.extra_approval_above if row is not None else None
    return 1 if above is not None and size > above else 0


def may_execute_fleet(user, account_request: AccountRequest) -> bool:
    """The requester runs (or reruns the failed instances of) an approved fleet."""
    return account_request.is_fleet and owns(user, account_request) and account_request.is_approved


# --- Many requests: the same questions as queries -----------------------------


def visible_requests(user, requests: QuerySet[AccountRequest]) -> QuerySet[AccountRequest]:
    """may_see_request, as a filter."""
    return requests if may_view_everything(user) else requests.filter(requester=user)


def decidable_requests(
    user, requests: QuerySet[AccountRequest], *, wait_start: datetime | None = None
) -> QuerySet[AccountRequest]:
    """may_decide, as a filter. ``wait_start``: approver_wait_start(), when the caller
    has it (a query compiled once and run again: selectors/prepared.py)."""
    if not may_approve(user):
        return requests.none()
    if settings.APPROVER_WAIT_HOURS > 0:
        # Too new an approver, in the same query: a page listing requests asks no more.
        recent = RoleGrant.objects.filter(_granted_recently(wait_start), user=user)
        requests = requests.exclude(Exists(recent))
    return (
        requests.filter(status=AccountRequest.Status.PENDING)
        .exclude(requester=user)
        .exclude(decisions__approver=user)
        .exclude(
            # Not NULL: NOT IN over a NULL would exclude every row.
            requester__in=RoleGrant.objects.filter(user=user, granted_by__isnull=False).values(
                "granted_by"
            )
        )
    )


def approvers_who_may_decide(
    account_request: AccountRequest, *, wait_start: datetime | None = None
) -> QuerySet:
    """may_decide, as a filter over the users: who may still approve or reject this
    request (its page says "waiting for any of"). One query. ``wait_start``:
    approver_wait_start(), when the caller has it (selectors/prepared.py)."""
    users = get_user_model().objects.filter(is_active=True)
    if not account_request.is_pending:
        return users.none()
    app, codename = roles.APPROVE_REQUEST.split(".")
    holds_the_role = (
        Q(is_superuser=True)
        | Q(
            groups__permissions__codename=codename, groups__permissions__content_type__app_label=app
        )
        | Q(user_permissions__codename=codename, user_permissions__content_type__app_label=app)
    )
    conflicts = RoleGrant.objects.filter(granted_by_id=account_request.requester_id)
    if settings.APPROVER_WAIT_HOURS > 0:
        since = wait_start or approver_wait_start()
        conflicts = RoleGrant.objects.filter(
            Q(granted_by_id=account_request.requester_id) | Q(granted_at__gte=since)
        )
    return (
        users.filter(holds_the_role)
        .exclude(pk=account_request.requester_id)
        .exclude(pk__in=Decision.objects.filter(request=account_request).values("approver"))
        .exclude(pk__in=conflicts.values("user"))
        .distinct()
        .order_by("username")
    )
