"""Fleet requests: one account on many instances, approved once, run per instance.

A fleet creates the account on each instance, or changes the account of that name on
each (delete, privilege, description, password reset: the lifecycle service's own
check and call per instance, services/lifecycle.py).

The request names its instances at submission (FleetTarget rows, frozen); approvers
decide on the whole list through the ordinary workflow. The run happens inside the
one HTTP request that received the password: the request is claimed (approved ->
executing), then each runnable target is claimed (waiting or failed -> creating,
compare-and-set), checked again, and its operation is called on it with no
transaction or lock held; its outcome is written to its row and to the audit log
before the next target, so another tab can watch. At the end the request goes back to
approved (failed targets may run again while the approval lasts), to
needs-reconciliation (an outcome is unknown), or to created (every target is done).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from accounts_app import notifications, policy, rules
from accounts_app.alibaba import errors
from accounts_app.alibaba.errors import AlibabaApiError, OutcomeUnknown
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import AuditMessage, message
from accounts_app.models import AccountRequest, AuditEvent, FleetTarget, Instance, RequestKind
from accounts_app.selectors.fleet import MAX_FLEET_SIZE
from accounts_app.services import call_budgets, lifecycle, live_calls, workflow
from accounts_app.services.breaker import api_breaker, get_guarded_client, unavailable_message
from accounts_app.services.preflight import BLOCKED, OK, WARNING, PreflightResult, run_preflight
from accounts_app.services.workflow import TransitionError

Status = AccountRequest.Status
Kind = RequestKind
Target = FleetTarget.Status
Action = AuditEvent.Action
Outcome = AuditEvent.Outcome

# CreateAccount calls per second over every fleet run on every server (a shared
# CallWindow row): Alibaba throttles an account's calls per API with Throttling.User,
# and the single-instance executions, the syncs and the pre-flights share that quota.
CREATES_PER_SECOND = 10
CREATE_BUDGET_KEY = "fleet:CreateAccount"
# The end of each second when no call is counted (seconds): the call would land in
# the next second at Alibaba (the bench measured 11 in one second without it).
LANDING_MARGIN = 0.1
# A fleet change calls its kind's operation per instance, under the same per-second
# budget (one budget per operation: Alibaba throttles per API).
OPERATIONS = {
    Kind.CREATE: "CreateAccount",
    Kind.DELETE: "DeleteAccount",
    Kind.PRIVILEGE: "GrantAccountPrivilege",
    Kind.RESET_PASSWORD: "ResetAccountPassword",
    Kind.DESCRIPTION: "ModifyAccountDescription",
}
# What a fleet may do: every kind but adopting (one unmanaged account at a time).
FLEET_KINDS = tuple(OPERATIONS)

# A fleet run that claimed no target for this long lost its server mid-call.
STUCK_TARGET_AFTER = timedelta(minutes=5)

RUNNABLE = [Target.WAITING, Target.FAILED]


# --- Submit -------------------------------------------------------------------


@dataclass(frozen=True)
class TargetCheck:
    """One instance's pre-flight, as the fleet form's table shows it."""

    instance: Instance
    preflight: PreflightResult
    # The account a change names, as DescribeAccounts showed it (changes only).
    account: object | None = None
    # Not checked live: the requester's budget of live calls was spent (live_calls).
    throttled: bool = False

    @property
    def status(self) -> str:
        if self.preflight.blockers:
            return BLOCKED
        return WARNING if self.preflight.warnings else OK

    @property
    def reason(self) -> str:
        found = self.preflight.blockers or self.preflight.warnings
        return found[0].message if found else ""


class FleetRefused(TransitionError):
    """A fleet that cannot be submitted as it is; ``checks``: the table to show."""

    def __init__(self, message, *, checks: list[TargetCheck] | None = None):
        super().__init__(message)
        self.checks = checks or []


def fleet_preflight(
    *,
    instances: list[Instance],
    account_name: str,
    privilege: str,
    viewer,
    kind: str = Kind.CREATE,
    description: str = "",
    client=None,
) -> list[TargetCheck]:
    """Each instance's pre-flight, live while the viewer's budget of live calls lasts
    (each instance counts one, as a page's live check does); the others are checked
    against the last sync and say so."""
    client = client or get_guarded_client()
    checks = []
    for instance in instances:
        live = live_calls.live_call_allowed(user=viewer)
        account = None
        if kind == Kind.CREATE:
            result = run_preflight(
                instance=instance,
                account_name=account_name,
                privilege=privilege,
                client=client,
                viewer=viewer,
                live=live,
            )
        else:
            result, account = lifecycle.change_preflight(
                instance=instance,
                kind=kind,
                account_name=account_name,
                account_privilege=privilege,
                account_description=description,
                viewer=viewer,
                live=live,
                client=client,
            )
        checks.append(TargetCheck(instance, result, account=account, throttled=not live))
    return checks


def throttled_message(checks: list[TargetCheck]) -> str:
    """What to tell a requester whose budget of live calls did not cover every instance."""
    throttled = sum(check.throttled for check in checks)
    if not throttled:
        return ""
    return str(
        _(
            "%(count)s of %(total)s instances were checked against the last sync, not live: "
            "your budget of live checks for this minute is spent. Check again in a minute "
            "to check them live; each instance is checked live again when it runs."
        )
        % {"count": throttled, "total": len(checks)}
    )


def fleet_size_refusal(privilege: str, size: int) -> str:
    if size < 1:
        return str(_("Choose at least one instance."))
    if size > MAX_FLEET_SIZE:
        return str(_("One request may name at most %(max)s instances.") % {"max": MAX_FLEET_SIZE})
    return policy.fleet_size_refusal(privilege, size)


def fleet_submit(
    *,
    requester,
    instances: list[Instance],
    account_name: str,
    account_privilege: str,
    account_description: str,
    account_type: str,
    justification: str,
    origin: Origin,
    kind: str = Kind.CREATE,
    client=None,
    expires_at=None,
) -> AccountRequest:
    """Submit one request for the account on every instance, each checked first: a
    creation, or a change (delete, privilege, description, password reset) of the
    account of that name on each. A creation's expiry (``expires_at``) applies to the
    account on every instance."""
    if kind not in FLEET_KINDS:
        raise FleetRefused(_("A request on several instances cannot do this."))
    refusal = fleet_size_refusal(account_privilege, len(instances))
    if refusal:
        raise FleetRefused(refusal)
    try:
        workflow.check_expiry(account_privilege, expires_at)
    except TransitionError as error:
        raise FleetRefused(error.message) from error
    checks = fleet_preflight(
        instances=instances,
        account_name=account_name,
        privilege=account_privilege,
        viewer=requester,
        kind=kind,
        description=account_description,
        client=client,
    )
    blocked = sum(check.status == BLOCKED for check in checks)
    if blocked:
        raise FleetRefused(
            _("%(count)s instances are blocked: remove them from the list, then submit.")
            % {"count": blocked},
            checks=checks,
        )
    privilege, fields = account_privilege, {}
    if kind != Kind.CREATE:
        privilege, fields = _change_fields(kind, checks, account_privilege, account_description)
    required = lifecycle.approvals_required(kind, privilege) + policy.fleet_extra_approvals(
        privilege, len(instances)
    )

    def add_targets(account_request: AccountRequest) -> None:
        FleetTarget.objects.bulk_create(
            FleetTarget(request=account_request, instance=instance, position=position)
            for position, instance in enumerate(instances)
        )

    try:
        return workflow.open_request(
            origin=origin,
            comment=justification,
            said=message("fleet.submitted", count=len(instances)),
            add_rows=add_targets,
            kind=kind,
            requester=requester,
            instance=instances[0],
            account_name=account_name,
            account_privilege=privilege,
            account_type=account_type,
            justification=justification,
            approvals_required=required,
            fleet_size=len(instances),
            expires_at=expires_at,
            **{"account_description": account_description, **fields},
        )
    except TransitionError as error:  # an open request for the name on one instance
        raise FleetRefused(error.message) from error


def _change_fields(kind, checks, privilege, description) -> tuple[str, dict]:
    """A fleet change's privilege, whose approval policy applies: the one granted, else
    the strictest among the account's privileges on the instances (an instance not
    checked live may hold any: then the strictest of all); and what the request keeps."""
    ranked = [value for value, _label in rules.PRIVILEGE_CHOICES]
    held = {check.account.privilege for check in checks if check.account is not None}

    def strictness(value: str) -> tuple[int, int]:
        rank = ranked.index(value) if value in ranked else -1
        return (lifecycle.approvals_required(kind, value), rank)

    current = max(held, key=strictness, default="")
    fields = {"current_privilege": current}
    if kind == Kind.PRIVILEGE:
        return privilege, fields
    if kind != Kind.DESCRIPTION:
        fields["account_description"] = ""  # each instance's own: not one to show
    if any(check.account is None for check in checks):
        held |= set(ranked)
    return max(held, key=strictness, default=privilege), fields


# --- Execute ------------------------------------------------------------------


@dataclass(frozen=True)
class TargetRun:
    """What one target's turn in a run did. ``password`` is set only for a password
    generated for this instance, to be shown once in the answer of this run."""

    target: FleetTarget
    status: str
    password: str = ""


def generate_password(length: int = 20) -> str:
    """A password the rules accept: letters, digits and the allowed special characters."""
    alphabet = rules.PASSWORD_ALPHABET
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if not rules.validate("AccountPassword", password):
            return password


@sensitive_variables()
def fleet_execute(
    *,
    request_id: int,
    user,
    password_for: Callable[[FleetTarget], str],
    origin: Origin,
    client=None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[TargetRun]:
    """Run every waiting or failed target once. ``password_for`` gives each target's
    password (the same for all, or one per instance, generated in the browser; "" for a
    change that takes none; None leaves the target for a later run); it lives only here."""
    client = client or get_guarded_client()
    if workflow.expire_if_stale(request_id=request_id, origin=origin):
        raise TransitionError(_("The approval has expired: submit a new request."))
    account_request = AccountRequest.objects.select_related("instance").get(pk=request_id)
    _check_runnable(account_request, user)
    if api_breaker().is_open():
        raise TransitionError(unavailable_message())
    with transaction.atomic():
        workflow._transition(
            account_request,
            Status.APPROVED,
            Action.EXECUTION_STARTED,
            origin,
            said=message("fleet.run", count=account_request.fleet_size),
            status=Status.EXECUTING,
            executed_by=user,
            executing_since=timezone.now(),
        )
    runs = []
    try:
        for target in account_request.targets.select_related("instance").filter(
            status__in=RUNNABLE
        ):
            password = password_for(target)
            if password is None:
                continue
            status = _run_target(account_request, target, password, origin, client, user, sleep)
            runs.append(TargetRun(target, status, password if status == Target.DONE else ""))
    finally:
        _settle_request(account_request, Status.EXECUTING)
    return runs


def _check_runnable(account_request: AccountRequest, user) -> None:
    if not account_request.is_fleet:
        raise TransitionError(_("This request is for one instance: create it from its page."))
    if not policy.owns(user, account_request):
        raise TransitionError(_("Only the requester creates the account once it is approved."))
    if account_request.status == Status.EXECUTING:
        raise TransitionError(
            _("This request is being created right now (in another tab or by another click).")
        )
    if not account_request.is_approved:
        raise workflow._refusal(
            account_request, _("This request is %(status)s: there is nothing to create.")
        )


def _run_target(account_request, target, password, origin, client, user, sleep) -> str:
    """Claim, check again, call the kind's operation, record: one target's turn."""
    claimed = FleetTarget.objects.filter(pk=target.pk, status__in=RUNNABLE).update(
        status=Target.CREATING, attempts=F("attempts") + 1, claimed_at=timezone.now()
    )
    if claimed != 1:
        return target.status  # another run took it
    target.status = Target.CREATING
    # The run's heartbeat: a request executing with no claim for STUCK_TARGET_AFTER lost
    # its server (fleet_reconcile_stuck).
    AccountRequest.objects.filter(pk=account_request.pk, status=Status.EXECUTING).update(
        executing_since=timezone.now()
    )
    blocker = _blocker_at_execute(account_request, target, client, user)
    if blocker:
        return _fail_target(account_request, target, origin, "PreflightBlocked", blocker)
    _wait_for_budget(sleep, OPERATIONS[account_request.kind])
    try:
        result = _call(account_request, target.instance, password, client)
    except AlibabaApiError as error:
        workflow._keep_only_what_fits(error)
        return _settle_target_error(account_request, target, error, origin, client)
    _record_target(
        account_request,
        target,
        origin,
        Target.DONE,
        _done_action(account_request),
        request_id=getattr(result, "request_id", ""),
    )
    return Target.DONE


def _blocker_at_execute(account_request, target, client, user) -> str:
    """Why this instance cannot run now ("" when it can): a creation's pre-flight, or for
    a change the lifecycle's own check (the account exists, is a user's, and every
    account of the instance has settled)."""
    if account_request.is_change:
        try:
            lifecycle.check_settled(target.instance, account_request.account_name, client)
        except TransitionError as error:
            return str(error.message)
        return ""
    preflight = run_preflight(
        instance=target.instance,
        account_name=account_request.account_name,
        privilege=account_request.account_privilege,
        exclude_request_id=account_request.pk,
        client=client,
        at_execute=True,
        viewer=user,
    )
    return "" if preflight.can_proceed else preflight.blockers[0].message


@sensitive_variables()
def _call(account_request, instance, password, client):
    if account_request.is_change:
        return lifecycle.change_call(client, account_request, password, instance=instance)
    return client.create_account(
        region_id=instance.region_id,
        instance_id=instance.instance_id,
        account_name=account_request.account_name,
        account_password=password,
        account_privilege=account_request.account_privilege,
        account_description=account_request.account_description,
        account_type=account_request.account_type,
    )


def _done_action(account_request) -> str:
    if account_request.is_change:
        return lifecycle.DONE_ACTIONS[account_request.kind]
    return Action.ACCOUNT_CREATED


def _wait_for_budget(sleep: Callable[[float], None], operation: str = "CreateAccount") -> None:
    """Take one call of the operation from the shared per-second budget, waiting for it.
    None in the last LANDING_MARGIN of a second: a call counted there would reach
    Alibaba in the next second, one more than that second's budget."""
    key = CREATE_BUDGET_KEY if operation == "CreateAccount" else f"fleet:{operation}"
    while True:
        into_second = timezone.now().timestamp() % 1
        if into_second >= 1 - LANDING_MARGIN:
            sleep(1 - into_second)
            continue
        if not call_budgets.spend(key, limit=CREATES_PER_SECOND, window_seconds=1):
            return
        sleep(1 - timezone.now().timestamp() % 1)  # this second's budget is spent


def _settle_target_error(account_request, target, error, origin, client) -> str:
    # As for one instance (workflow._settle_error): a duplicate after an unknown outcome
    # is most likely our own earlier call; DescribeAccounts settles it.
    retried_duplicate = (
        not account_request.is_change
        and error.code == errors.DUPLICATE_NAME
        and _had_unknown_outcome(account_request, target)
    )
    if isinstance(error, OutcomeUnknown) or retried_duplicate:
        _mark_unknown(
            account_request,
            target,
            origin,
            code=error.code or "OutcomeUnknown",
            text=str(error.human_message),
            said=workflow._api_error_message(error),
        )
        return _reconcile_target(account_request, target, origin, client)
    return _fail_target(
        account_request,
        target,
        origin,
        error.code or "",
        str(error.human_message),
        request_id=error.request_id or "",
        said=workflow._api_error_message(error),
    )


def _fail_target(account_request, target, origin, code, text, *, request_id="", said=None) -> str:
    """The target failed (nothing was done there): it may run again while approved."""
    _record_target(
        account_request,
        target,
        origin,
        Target.FAILED,
        Action.EXECUTION_FAILED,
        outcome=Outcome.FAILURE,
        code=code,
        message=text,
        request_id=request_id,
        said=said,
    )
    return Target.FAILED


def _mark_unknown(account_request, target, origin, *, code, text, said) -> None:
    _record_target(
        account_request,
        target,
        origin,
        Target.UNKNOWN,
        Action.OUTCOME_UNKNOWN,
        outcome=Outcome.UNKNOWN,
        code=code,
        message=text,
        said=said,
    )


def _had_unknown_outcome(account_request, target) -> bool:
    return AuditEvent.objects.filter(
        request_id=account_request.pk,
        instance_id=target.instance.instance_id,
        action=Action.OUTCOME_UNKNOWN,
    ).exists()


def _record_target(
    account_request: AccountRequest,
    target: FleetTarget,
    origin: Origin,
    status: str,
    action: str,
    *,
    outcome: str = Outcome.SUCCESS,
    code: str = "",
    message: str = "",
    request_id: str = "",
    comment: str = "",
    said: AuditMessage | None = None,
) -> None:
    """Move the target on from its current status and write its audit event, together
    (``said``: the system's sentence, from the audit catalogue)."""
    request_id = workflow.answers.request_id(request_id)
    instance = target.instance
    finished = status in (Target.DONE, Target.FAILED)
    with transaction.atomic():
        changed = FleetTarget.objects.filter(pk=target.pk, status=target.status).update(
            status=status,
            error_code=code,
            error_message=message,
            alibaba_request_id=request_id,
            finished_at=timezone.now() if finished else None,
        )
        if changed != 1:
            raise TransitionError(
                _("Someone else changed this request at the same moment; reload it.")
            )
        record_event(
            action=action,
            outcome=outcome,
            origin=origin,
            request=account_request,
            instance_id=instance.instance_id,
            region_id=instance.region_id,
            alibaba_request_id=request_id,
            error_code=code,
            comment=(comment or message)[:500],
            message=said,
        )
        if status == Target.DONE:
            _count_accounts(account_request.kind, instance)
    target.status = status


def _count_accounts(kind: str, instance: Instance) -> None:
    """The instance's synced account count follows a creation or a deletion."""
    if kind == Kind.CREATE and instance.account_count is not None:
        Instance.objects.filter(pk=instance.pk).update(account_count=F("account_count") + 1)
    elif kind == Kind.DELETE and instance.account_count:
        Instance.objects.filter(pk=instance.pk, account_count__gt=0).update(
            account_count=F("account_count") - 1
        )


def _settle_request(account_request: AccountRequest, expected: str) -> None:
    """The request's status from its targets' (no event: each target wrote its own)."""
    statuses = set(account_request.targets.values_list("status", flat=True))
    fields: dict = {"status": Status.APPROVED}
    if statuses == {Target.DONE}:
        fields = {"status": Status.CREATED, "finished_at": timezone.now()}
    elif statuses & {Target.UNKNOWN, Target.CREATING}:
        fields = {"status": Status.NEEDS_RECONCILIATION}
    workflow._compare_and_set(account_request, expected, **fields)
    if account_request.status == Status.CREATED:
        notifications.request_finished(account_request)
    elif account_request.status == Status.NEEDS_RECONCILIATION:
        notifications.request_needs_reconciliation(account_request)


# --- Reconcile ----------------------------------------------------------------


def _reconcile_target(account_request, target, origin, client) -> str:
    """DescribeAccounts on this target's instance alone: done, it is done; not done,
    failed (it may run again); no answer, or not settled yet, it stays unknown."""
    instance = target.instance
    try:
        accounts = client.describe_accounts(
            region_id=instance.region_id,
            instance_id=instance.instance_id,
            account_name=account_request.account_name,
        )
    except AlibabaApiError:
        return Target.UNKNOWN
    name = account_request.account_name
    account = next((a for a in accounts if a.account_name == name), None)
    if account_request.is_change:
        made = lifecycle.change_is_visible(account_request, account)
    else:
        made = account is not None
    if made is None:
        return Target.UNKNOWN
    if made:
        _record_target(
            account_request,
            target,
            origin,
            Target.DONE,
            Action.RECONCILED,
            said=message(
                "reconcile.change_made" if account_request.is_change else "reconcile.found"
            ),
        )
        return Target.DONE
    _record_target(
        account_request,
        target,
        origin,
        Target.FAILED,
        Action.RECONCILED,
        outcome=Outcome.FAILURE,
        said=message(
            "reconcile.change_not_made" if account_request.is_change else "reconcile.not_found"
        ),
    )
    return Target.FAILED


def fleet_reconcile(*, request_id: int, origin: Origin, client=None) -> AccountRequest:
    """Settle every target of unknown outcome (and every one whose run died mid-call)."""
    client = client or get_guarded_client()
    account_request = AccountRequest.objects.select_related("instance").get(pk=request_id)
    if account_request.status != Status.NEEDS_RECONCILIATION:
        raise TransitionError(_("This request does not need reconciliation."))
    for target in account_request.targets.select_related("instance").filter(
        status__in=[Target.UNKNOWN, Target.CREATING]
    ):
        if target.status == Target.CREATING:
            _mark_unknown(
                account_request,
                target,
                origin,
                code="OutcomeUnknown",
                text="the run stopped before its outcome",
                said=message("execution.stopped"),
            )
        _reconcile_target(account_request, target, origin, client)
    _settle_request(account_request, Status.NEEDS_RECONCILIATION)
    return account_request


def fleet_reconcile_stuck(*, origin: Origin | None = None, client=None) -> list[AccountRequest]:
    """Fleet runs whose server died (executing for too long): their targets are
    settled one by one (the `reconcile_requests` command)."""
    origin = origin or Origin.system("reconcile_requests")
    stuck_before = timezone.now() - STUCK_TARGET_AFTER
    stuck = AccountRequest.objects.filter(
        status=Status.EXECUTING, fleet_size__gt=0, executing_since__lt=stuck_before
    ).values_list("pk", flat=True)
    for request_id in stuck:
        AccountRequest.objects.filter(pk=request_id, status=Status.EXECUTING).update(
            status=Status.NEEDS_RECONCILIATION
        )
    waiting = AccountRequest.objects.filter(
        status=Status.NEEDS_RECONCILIATION, fleet_size__gt=0
    ).values_list("pk", flat=True)
    return [fleet_reconcile(request_id=pk, origin=origin, client=client) for pk in waiting]
