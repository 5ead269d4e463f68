"""The approval workflow: submit, approve, reject, cancel, execute, reconcile, expire.

Every transition is compare-and-set on the request's status and writes its audit
event in the same transaction. The execute step claims the request (approved ->
executing), calls CreateAccount with no transaction or lock held, then records
the outcome: concurrent clicks, tabs and app servers give exactly one call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from accounts_app import notifications, policy, rules
from accounts_app.alibaba import errors
from accounts_app.alibaba.errors import AlibabaApiError, ApiUnreachable, OutcomeUnknown
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import AuditMessage, message
from accounts_app.models import AccountRequest, AuditEvent, Decision, Instance
from accounts_app.services import answers, live_calls
from accounts_app.services.breaker import (
    BREAKER_OPEN,
    api_breaker,
    get_guarded_client,
    unavailable_message,
)
from accounts_app.services.preflight import (
    UNREAD,
    PreflightResult,
    run_preflight,
    with_name_not_checked,
)

logger = logging.getLogger(__name__)

# An execution still claimed after this long lost its server mid-call.
STUCK_EXECUTION_AFTER = timedelta(minutes=5)

Status = AccountRequest.Status
Action = AuditEvent.Action
Outcome = AuditEvent.Outcome


class TransitionError(Exception):
    """A transition that is not allowed now; the message is shown to the user."""

    def __init__(self, message, *, preflight: PreflightResult | None = None):
        super().__init__(message)
        self.message = message
        self.preflight = preflight


class DecisionRefused(TransitionError):
    """Four eyes: this approver may not decide on this request (a page answers 403)."""


@dataclass(frozen=True)
class ExecutionResult:
    request: AccountRequest
    created: bool
    error: AlibabaApiError | None = None

    @property
    def instance_busy(self) -> bool:
        """Refused because the instance was busy: nothing created, the approval stands."""
        return self.error is not None and errors.is_instance_busy(self.error.code)


# The approval policy is policy.py's (one lookup, one floor); these names stay for callers.
DEFAULT_APPROVALS = policy.DEFAULT_APPROVALS
approvals_required_by_privilege = policy.approvals_required_by_privilege


def approvals_required_for(privilege: str) -> int:
    """What creating an account of this privilege needs (policy.approvals_required)."""
    return policy.approvals_required(AccountRequest.Kind.CREATE, privilege)


# --- Request ------------------------------------------------------------------


def request_submit(
    *,
    requester,
    instance: Instance,
    account_name: str,
    account_privilege: str,
    account_description: str,
    account_type: str,
    justification: str,
    origin: Origin,
    copied_from: AccountRequest | None = None,
    client=None,
    expires_at=None,
    creation_rules: tuple[int, policy.Lifetime] | None = None,
) -> AccountRequest:
    """``creation_rules``: the policy of creating this privilege (approvals, lifetime),
    when the caller has just read it (policy.creation_rules); else read here."""
    approvals_required, lifetime = creation_rules or policy.creation_rules(account_privilege)
    _refuse_expiry(lifetime, expires_at)
    preflight = run_preflight(
        instance=instance,
        account_name=account_name,
        privilege=account_privilege,
        client=client,
        viewer=requester,
    )
    if not preflight.can_proceed:
        raise TransitionError(
            _("This account cannot be created on this instance; see the pre-flight checks."),
            preflight=preflight,
        )
    return open_request(
        origin=origin,
        comment=justification,
        requester=requester,
        instance=instance,
        account_name=account_name,
        account_privilege=account_privilege,
        account_description=account_description,
        account_type=account_type,
        justification=justification,
        approvals_required=approvals_required,
        copied_from=copied_from,
        expires_at=expires_at,
    )


def check_expiry(privilege: str, expires_at) -> None:
    """Refuse an expiry (None: none) the policy of the privilege does not allow: the
    forms say it next to the field; this holds for every caller."""
    _refuse_expiry(policy.lifetime_for(privilege), expires_at)


def _refuse_expiry(lifetime: policy.Lifetime, expires_at) -> None:
    refusal = policy.expiry_refusal(lifetime, expires_at, timezone.now())
    if refusal:
        raise TransitionError(refusal)


def open_request(
    *, origin: Origin, comment: str, add_rows=None, said: AuditMessage | None = None, **fields
) -> AccountRequest:
    """Store a submitted request (``fields``) and its audit event in one transaction,
    then tell the approvers who may decide it: every kind of request, one instance or a
    fleet, is opened here. ``add_rows(request)`` writes rows of its own inside the same
    transaction (a fleet's targets)."""
    try:
        with transaction.atomic():
            account_request = AccountRequest.objects.create(**fields)
            if add_rows:
                add_rows(account_request)
            record_event(
                action=Action.REQUEST_SUBMITTED,
                outcome=Outcome.SUCCESS,
                origin=origin,
                request=account_request,
                comment=comment[:500],
                message=said,
            )
    except IntegrityError as error:
        # The partial unique index: someone opened the same name on the same
        # instance between our pre-flight and this insert.
        raise TransitionError(
            _("There is already an open request for this account name on this instance.")
        ) from error
    notifications.request_submitted(
        account_request, recipients=policy.deciders_emails(account_request)
    )
    return account_request


def preflight_for(
    account_request: AccountRequest,
    *,
    client=None,
    at_execute: bool = False,
    viewer=None,
    page_view: bool = False,
) -> PreflightResult:
    """What the API says now about creating this request's account. For a page view,
    live only while the viewer's budget of live calls lasts (services.live_calls)."""
    return run_preflight(
        instance=account_request.instance,
        account_name=account_request.account_name,
        privilege=account_request.account_privilege,
        exclude_request_id=account_request.pk,
        client=client,
        at_execute=at_execute,
        viewer=viewer,
        live=live_calls.live_call_allowed(user=viewer) if page_view else True,
        # Read with the request for its page (selectors.visible_request); else asked here.
        open_rival=getattr(account_request, "open_rival", UNREAD),
    )


def preflight_for_form(*, instance_id: str, account_name: str, privilege: str, viewer=None):
    """The request form's live pre-flight: None until an existing instance is chosen.
    An account name the rules refuse is left out (the form says why)."""
    instance = Instance.objects.filter(instance_id=instance_id, is_gone=False).first()
    if instance is None:
        return None
    name_refused = bool(account_name) and bool(rules.validate("AccountName", account_name))
    result = run_preflight(
        instance=instance,
        account_name="" if name_refused else account_name,
        privilege=privilege,
        viewer=viewer,
        live=live_calls.live_call_allowed(user=viewer),
    )
    # Said, not left out: only green ticks would read as "the name is free".
    return with_name_not_checked(result) if name_refused else result


# --- Decide -------------------------------------------------------------------


def request_approve(*, request_id: int, approver, comment: str, origin: Origin) -> AccountRequest:
    return _decide(request_id, approver, Decision.Verdict.APPROVE, comment, origin)


def request_reject(*, request_id: int, approver, comment: str, origin: Origin) -> AccountRequest:
    return _decide(request_id, approver, Decision.Verdict.REJECT, comment, origin)


def _decide(request_id, approver, verdict, comment, origin) -> AccountRequest:
    with transaction.atomic():
        # The row lock makes concurrent decisions on one request take turns, so
        # the approval count is never read stale (SQLite: the IMMEDIATE write lock).
        # The requester comes along for the notification (not locked: only what was).
        account_request = (
            AccountRequest.objects.select_for_update(of=("self", "instance"))
            .select_related("instance", "requester")
            .annotate(**policy.approver_conflict_columns(approver))
            .get(pk=request_id)
        )
        if policy.owns(approver, account_request):  # four eyes, whatever the status
            raise DecisionRefused(_("Nobody may approve or reject their own request."))
        conflict = policy.approver_conflict_of(account_request)  # read with the row
        if conflict:
            raise DecisionRefused(conflict)
        if verdict == Decision.Verdict.REJECT and not comment.strip():
            raise TransitionError(_("Say why you reject the request: the requester will read it."))
        # Its time is up: expired for good (this transaction commits it), then refused.
        expired = account_request.is_stale(timezone.now()) and _expire(account_request, origin)
        if not expired:
            _record_decision(account_request, approver, verdict, comment, origin)
    if expired:
        raise _refusal(
            account_request,
            _("This request is %(status)s: it can no longer be approved or rejected."),
        )
    notifications.request_decided(account_request, verdict=verdict, approver=approver)
    return account_request


def _record_decision(account_request, approver, verdict, comment, origin) -> None:
    """The decision and the transition it makes, under the request's row lock."""
    if not account_request.is_pending:
        raise _refusal(
            account_request,
            _("This request is %(status)s: it can no longer be approved or rejected."),
        )
    # No savepoint: a second decision by the same approver breaks the unique
    # constraint, and the refusal then rolls the whole transaction back.
    try:
        Decision.objects.create(
            request=account_request,
            approver=approver,
            requester_id=account_request.requester_id,
            verdict=verdict,
            comment=comment,
        )
    except IntegrityError as error:
        raise TransitionError(_("You have already decided on this request.")) from error

    now = timezone.now()
    if verdict == Decision.Verdict.REJECT:
        _transition(
            account_request,
            Status.PENDING,
            Action.REQUEST_REJECTED,
            origin,
            comment=comment,
            status=Status.REJECTED,
            finished_at=now,
        )
    else:
        # Read after the row lock, not with it: on PostgreSQL a subquery of the locking
        # SELECT sees the decisions as they were before it waited for the lock.
        approvals = account_request.approval_count
        required = account_request.approvals_required
        fields = {"status": Status.PENDING}
        if approvals >= required:
            fields = {"status": Status.APPROVED, "approved_at": now}
        _transition(
            account_request,
            Status.PENDING,
            Action.REQUEST_APPROVED,
            origin,
            comment=f"[{approvals}/{required}] {comment}".strip(),
            **fields,
        )


def _refusal(account_request: AccountRequest, message) -> TransitionError:
    """The action is refused in the request's status, which ``message`` names."""
    return TransitionError(message % {"status": account_request.get_status_display()})


def _compare_and_set(account_request: AccountRequest, expected: str, **fields) -> None:
    """Move the request on only if it is still in `expected`; the row count decides."""
    changed = AccountRequest.objects.filter(pk=account_request.pk, status=expected).update(**fields)
    if changed != 1:
        raise TransitionError(_("Someone else changed this request at the same moment; reload it."))
    for name, value in fields.items():
        setattr(account_request, name, value)


def _transition(
    account_request: AccountRequest,
    expected: str,
    action: str,
    origin: Origin,
    *,
    outcome: str = Outcome.SUCCESS,
    comment: str = "",
    said: AuditMessage | None = None,
    event: dict[str, str] | None = None,
    **fields,
) -> None:
    """Compare-and-set, then the audit event of that change (``said``: the system's
    message, ``event``: its other fields), in the caller's transaction."""
    _compare_and_set(account_request, expected, **fields)
    record_event(
        action=action,
        outcome=outcome,
        origin=origin,
        request=account_request,
        comment=comment,
        message=said,
        **(event or {}),
    )


# --- Cancel -------------------------------------------------------------------


def request_cancel(*, request_id: int, user, origin: Origin) -> AccountRequest:
    with transaction.atomic():
        account_request = AccountRequest.objects.select_related("instance").get(pk=request_id)
        if not policy.owns(user, account_request):
            raise TransitionError(_("Only the requester can cancel a request."))
        if not account_request.is_cancellable:
            raise _refusal(
                account_request, _("This request is %(status)s: it can no longer be cancelled.")
            )
        _transition(
            account_request,
            account_request.status,
            Action.REQUEST_CANCELLED,
            origin,
            status=Status.CANCELLED,
            finished_at=timezone.now(),
        )
    return account_request


# --- Expire -------------------------------------------------------------------


def expire_if_stale(*, request_id: int, origin: Origin) -> bool:
    """Expire the request if its time is up. Runs in its own transaction, so the
    expiry sticks even when the caller then refuses the action."""
    return unexpired_request(request_id=request_id, origin=origin) is None


def unexpired_request(
    *, request_id: int, origin: Origin, current: AccountRequest | None = None
) -> AccountRequest | None:
    """The request (with its instance and requester), or None once it has just been
    expired because its time was up (expire_if_stale): one read serves both.
    ``current``: the request as the caller has just read it (a page's own read)."""
    # Read outside the transaction (nearly every request is not stale: one statement);
    # the compare-and-set below decides if it moved on since.
    account_request = current or AccountRequest.objects.select_related("instance", "requester").get(
        pk=request_id
    )
    if not account_request.is_stale(timezone.now()):
        return account_request
    if _expire(account_request, origin):
        return None
    # It moved on meanwhile: what it is now.
    return AccountRequest.objects.select_related("instance", "requester").get(pk=request_id)


def _expire(account_request: AccountRequest, origin: Origin) -> bool:
    """Expire the request, its time being up; False when it moved on meanwhile."""
    was = account_request.status
    with transaction.atomic():
        try:
            _transition(
                account_request,
                was,
                Action.REQUEST_EXPIRED,
                origin,
                said=message(f"request.expired_{was}"),
                status=Status.EXPIRED,
                finished_at=timezone.now(),
            )
        except TransitionError:
            return False
    notifications.request_expired(account_request)
    return True


def expire_requests(*, origin: Origin | None = None) -> int:
    """Expire every request whose time is up (the `expire_requests` command)."""
    origin = origin or Origin.system("expire_requests")
    stale = AccountRequest.objects.stale(timezone.now())
    return sum(
        expire_if_stale(request_id=request_id, origin=origin)
        for request_id in stale.values_list("pk", flat=True)
    )


# --- Execute ------------------------------------------------------------------


def check_executable(account_request: AccountRequest, user) -> None:
    if account_request.is_fleet:  # its run is services/fleet.py's, target by target
        raise TransitionError(_("This request names many instances: run it from its page."))
    if not policy.owns(user, account_request):
        raise TransitionError(_("Only the requester creates the account once it is approved."))
    if not account_request.is_approved:
        raise _refusal(
            account_request, _("This request is %(status)s: there is nothing to create.")
        )


@sensitive_variables()
def request_execute(
    *,
    request_id: int,
    user,
    account_password: str,
    origin: Origin,
    client=None,
    current: AccountRequest | None = None,
) -> ExecutionResult:
    """Create the account. The password lives only in this call's frame. ``current``:
    unexpired_request()'s answer, when the caller has just asked it."""
    client = client or get_guarded_client()
    account_request = current or unexpired_request(request_id=request_id, origin=origin)
    if account_request is None:
        raise TransitionError(_("The approval has expired: submit a new request."))
    check_executable(account_request, user)
    preflight = preflight_for(account_request, client=client, at_execute=True, viewer=user)
    if not preflight.can_proceed:
        raise TransitionError(
            _("The account cannot be created right now; see the pre-flight checks."),
            preflight=preflight,
        )
    # Refused before the claim: the request stays approved and no call is made. A live
    # pre-flight has just passed the breaker (an open one refuses its calls): the
    # guarded client asks it again before CreateAccount.
    if not preflight.live and api_breaker().is_open():
        raise TransitionError(unavailable_message(), preflight=preflight)

    with transaction.atomic():
        _transition(
            account_request,
            Status.APPROVED,
            Action.EXECUTION_STARTED,
            origin,
            status=Status.EXECUTING,
            executed_by=user,
            executing_since=timezone.now(),
        )

    try:
        result = client.create_account(
            **_where(account_request),
            account_name=account_request.account_name,
            account_password=account_password,
            account_privilege=account_request.account_privilege,
            account_description=account_request.account_description,
            account_type=account_request.account_type,
        )
    except AlibabaApiError as error:
        _keep_only_what_fits(error)
        return _settle_error(account_request, error, origin, client)

    _record_created(
        account_request,
        origin,
        action=Action.ACCOUNT_CREATED,
        expected=Status.EXECUTING,
        # Recorded whatever the answer looked like: the account exists.
        alibaba_request_id=answers.request_id(getattr(result, "request_id", "")),
    )
    return ExecutionResult(account_request, True)


def _keep_only_what_fits(error: AlibabaApiError) -> None:
    """What a failed CreateAccount keeps: the code and our own sentence for it, never
    the API's free text (it may echo the password in an encoding no scrub knows), and
    identifiers cut to the documented shape and their columns."""
    error.message = ""
    error.recommend = None
    error.code = answers.error_code(error.code) or errors.MALFORMED_RESPONSE
    error.request_id = answers.request_id(error.request_id) or None


def _settle_error(account_request, error: AlibabaApiError, origin, client) -> ExecutionResult:
    # An earlier send of this request may have created the account after all when the
    # name is now a duplicate (docs/alibaba-api.md, "Retries"): ask DescribeAccounts.
    retried_duplicate = error.code == errors.DUPLICATE_NAME and _had_unknown_outcome(
        account_request
    )
    if isinstance(error, OutcomeUnknown) or retried_duplicate:
        _record_outcome_unknown(account_request, error, origin)
        reconciled = reconcile(account_request=account_request, origin=origin, client=client)
        return ExecutionResult(reconciled, reconciled.status == Status.CREATED, error)
    _record_failure(account_request, error, origin)
    return ExecutionResult(account_request, False, error)


def _record_created(
    account_request, origin, *, action, expected, alibaba_request_id: str = "", said=None
) -> None:
    with transaction.atomic():
        _transition(
            account_request,
            expected,
            action,
            origin,
            said=said,
            event={"alibaba_request_id": alibaba_request_id},
            status=Status.CREATED,
            finished_at=timezone.now(),
            alibaba_request_id=alibaba_request_id,
            error_code="",
            error_message="",
        )
        instance = account_request.instance
        if instance.account_count is not None:
            Instance.objects.filter(pk=instance.pk).update(account_count=instance.account_count + 1)
    notifications.request_finished(account_request)


def _where(account_request: AccountRequest) -> dict[str, str]:
    """The region and instance arguments of a call about this request's account."""
    instance = account_request.instance
    return {"region_id": instance.region_id, "instance_id": instance.instance_id}


def _had_unknown_outcome(account_request: AccountRequest) -> bool:
    return AuditEvent.objects.filter(
        request_id=account_request.pk, action=Action.OUTCOME_UNKNOWN
    ).exists()


def _record_failure(account_request, error: AlibabaApiError, origin) -> None:
    # Nothing can have been created: a definite error from Alibaba, or a call
    # that never left (unreachable, throttled until we gave up). Errors that
    # retrying later can cure keep the approval (a busy instance among them: the
    # refused attempt is in the audit log); the others end the request.
    retryable = isinstance(error, ApiUnreachable) or errors.is_instance_busy(error.code)
    new_status = Status.APPROVED if retryable else Status.FAILED
    with transaction.atomic():
        fields = {
            "status": new_status,
            "error_code": error.code or "",
            "error_message": str(error.human_message),
            "alibaba_request_id": error.request_id or "",
        }
        if new_status == Status.FAILED:
            fields["finished_at"] = timezone.now()
        _transition(
            account_request,
            Status.EXECUTING,
            Action.EXECUTION_FAILED,
            origin,
            outcome=Outcome.FAILURE,
            said=_api_error_message(error),
            event={"alibaba_request_id": error.request_id or "", "error_code": error.code or ""},
            **fields,
        )
    if new_status == Status.FAILED:
        notifications.request_finished(account_request)


def _api_error_message(error: AlibabaApiError) -> AuditMessage:
    """The audit log's sentence for a failed call, said from its code in the reader's
    language (the API's own text is never kept: _keep_only_what_fits)."""
    if error.code == BREAKER_OPEN:
        return message("execution.unavailable")
    return message("execution.api_error", code=error.code or "")


def _record_outcome_unknown(account_request, error: AlibabaApiError | None, origin) -> None:
    code = (error.code if error else "") or "OutcomeUnknown"
    message_text = str(error.human_message) if error else "the execution stopped before its outcome"
    with transaction.atomic():
        _transition(
            account_request,
            Status.EXECUTING,
            Action.OUTCOME_UNKNOWN,
            origin,
            outcome=Outcome.UNKNOWN,
            said=_api_error_message(error) if error else message("execution.stopped"),
            event={"error_code": code},
            status=Status.NEEDS_RECONCILIATION,
            error_code=code,
            error_message=message_text,
        )


# --- Reconcile ----------------------------------------------------------------


def reconcile(*, account_request: AccountRequest, origin: Origin, client=None) -> AccountRequest:
    """Find out with DescribeAccounts whether an account of unknown outcome exists.

    Found: created. Absent: the approval stands and the requester may try again.
    No answer: the request stays in needs-reconciliation (listed on the dashboard).
    """
    if account_request.is_change:
        from accounts_app.services import lifecycle  # it builds on this module

        return lifecycle.reconcile_change(
            account_request=account_request, origin=origin, client=client
        )
    client = client or get_guarded_client()
    try:
        accounts = client.describe_accounts(
            **_where(account_request),
            account_name=account_request.account_name,
        )
    except AlibabaApiError as error:
        logger.warning("reconcile of request %s failed: %s", account_request.pk, error.code)
        notifications.request_needs_reconciliation(account_request)
        return account_request

    if any(account.account_name == account_request.account_name for account in accounts):
        _record_created(
            account_request,
            origin,
            action=Action.RECONCILED,
            expected=Status.NEEDS_RECONCILIATION,
            said=message("reconcile.found"),
        )
        return account_request

    with transaction.atomic():
        _transition(
            account_request,
            Status.NEEDS_RECONCILIATION,
            Action.RECONCILED,
            origin,
            outcome=Outcome.FAILURE,
            said=message("reconcile.not_found"),
            status=Status.APPROVED,
            error_code="",
            error_message="",
        )
    return account_request


def reconcile_request(*, request_id: int, origin: Origin, client=None) -> AccountRequest:
    account_request = AccountRequest.objects.select_related("instance").get(pk=request_id)
    if account_request.status != Status.NEEDS_RECONCILIATION:
        raise TransitionError(_("This request does not need reconciliation."))
    if account_request.is_fleet:
        from accounts_app.services.fleet import fleet_reconcile  # it imports this module

        return fleet_reconcile(request_id=request_id, origin=origin, client=client)
    return reconcile(account_request=account_request, origin=origin, client=client)


def reconcile_all(*, origin: Origin | None = None, client=None) -> list[AccountRequest]:
    """Reconcile every request of unknown outcome (the `reconcile_requests` command).

    A request stuck in `executing` (its server died between the claim and the
    outcome) is first marked as of unknown outcome, then reconciled like the rest.
    """
    origin = origin or Origin.system("reconcile_requests")
    stuck_before = timezone.now() - STUCK_EXECUTION_AFTER
    # Fleet requests are settled target by target (services.fleet.fleet_reconcile_stuck).
    single = AccountRequest.objects.select_related("instance").filter(fleet_size=0)
    for account_request in single.filter(status=Status.EXECUTING, executing_since__lt=stuck_before):
        try:
            _record_outcome_unknown(account_request, None, origin)
        except TransitionError:
            continue  # it finished meanwhile
    return [
        reconcile(account_request=account_request, origin=origin, client=client)
        for account_request in single.filter(status=Status.NEEDS_RECONCILIATION)
    ]
