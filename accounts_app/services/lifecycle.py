"""Changes to an existing account through the approval workflow: delete it, change its
privilege, reset its password, change its description.

A change request goes through the same transitions as a creation (workflow.py: submit,
four-eyes decisions, cancel, expiry, claim, outcome, reconciliation); what differs is
here: the target account must exist and be a user's account (never a built-in ``Super``
one), the approval policy is per kind and privilege, the execute step calls the kind's
operation, and an unknown outcome is reconciled by what DescribeAccounts shows of that
kind of change. Every change leaves the account ``Unavailable`` for about a minute, so an
execution waits while any account of the instance is not ``Available``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from accounts_app import notifications, policy
from accounts_app.alibaba.client import Account, AccountChangeResult
from accounts_app.alibaba.errors import AlibabaApiError, OutcomeUnknown
from accounts_app.audit import Origin
from accounts_app.audit.messages import AuditMessage
from accounts_app.audit.messages import message as audit_message
from accounts_app.models import AccountRequest, ApprovalPolicy, AuditEvent, Instance, KnownAccount
from accounts_app.services import answers, drift, workflow
from accounts_app.services.breaker import api_breaker, get_guarded_client, unavailable_message
from accounts_app.services.workflow import ExecutionResult, TransitionError

Kind = AccountRequest.Kind
Status = AccountRequest.Status
Action = AuditEvent.Action
Outcome = AuditEvent.Outcome

# The audit event of each kind's success.
DONE_ACTIONS = {
    Kind.DELETE: Action.ACCOUNT_DELETED,
    Kind.PRIVILEGE: Action.PRIVILEGE_GRANTED,
    Kind.RESET_PASSWORD: Action.PASSWORD_RESET,
    Kind.DESCRIPTION: Action.DESCRIPTION_CHANGED,
    Kind.ADOPT: Action.ACCOUNT_ADOPTED,
}
BUILT_IN = "Super"


def approvals_required(kind: str, privilege: str) -> int:
    """The policy's row for this kind and privilege; without one, what creating an
    account of that privilege needs (so an upgrade to read/write asks what creating a
    read/write account asks). Never below MIN_APPROVALS."""
    if kind == Kind.CREATE:
        return workflow.approvals_required_for(privilege)
    row = ApprovalPolicy.objects.filter(kind=kind, account_privilege=privilege).first()
    if row is None:
        return workflow.approvals_required_for(privilege)
    return max(row.approvals_required, settings.MIN_APPROVALS)


# --- Submit ------------------------------------------------------------------------------


def request_submit(
    *,
    kind: str = Kind.CREATE,
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
) -> AccountRequest:
    """Submit a request of any kind; a creation is workflow.request_submit's."""
    if kind == Kind.CREATE:
        return workflow.request_submit(
            requester=requester,
            instance=instance,
            account_name=account_name,
            account_privilege=account_privilege,
            account_description=account_description,
            account_type=account_type,
            justification=justification,
            origin=origin,
            copied_from=copied_from,
            client=client,
        )
    account = target_account(instance, account_name, client=client)
    if kind == Kind.ADOPT and account_name in drift.expected_accounts(instance):
        raise TransitionError(_("The dashboard already manages this account."))
    if kind == Kind.PRIVILEGE and account.privilege == account_privilege:
        raise TransitionError(_("The account already has this privilege."))
    if kind == Kind.DESCRIPTION and account.account_description == account_description:
        raise TransitionError(_("The account already has this description."))
    privilege = account_privilege if kind == Kind.PRIVILEGE else account.privilege
    return workflow.open_request(
        origin=origin,
        comment=justification,
        kind=kind,
        requester=requester,
        instance=instance,
        account_name=account_name,
        account_privilege=privilege,
        current_privilege=account.privilege,
        account_description=(
            account_description if kind == Kind.DESCRIPTION else account.account_description[:256]
        ),
        justification=justification,
        approvals_required=approvals_required(kind, privilege),
        copied_from=copied_from,
    )


def target_account(instance: Instance, account_name: str, *, client=None) -> Account:
    """The account a change names, as DescribeAccounts shows it now: it must exist and be
    a user's account."""
    return _named(_accounts_of(instance, client or get_guarded_client()), account_name)


def _accounts_of(instance: Instance, client) -> list[Account]:
    """Every account of the instance, now; no answer refuses the step (nothing done)."""
    try:
        return client.describe_accounts(
            region_id=instance.region_id, instance_id=instance.instance_id
        )
    except AlibabaApiError as error:
        raise TransitionError(
            _("Alibaba Cloud could not list the instance's accounts: %(message)s")
            % {"message": error.human_message}
        ) from error


def _named(accounts: list[Account], account_name: str) -> Account:
    account = next((a for a in accounts if a.account_name == account_name), None)
    if account is None:
        raise TransitionError(
            _("There is no account named %(name)s on this instance.") % {"name": account_name}
        )
    if account.account_type == BUILT_IN:
        raise TransitionError(
            _("%(name)s is a built-in account: the dashboard never changes or deletes one.")
            % {"name": account_name}
        )
    return account


# --- Execute -----------------------------------------------------------------------------


@sensitive_variables()
def request_execute(
    *, request_id: int, user, origin: Origin, account_password: str = "", client=None
) -> ExecutionResult:
    """Execute a request of any kind; a creation is workflow.request_execute's. The
    password (creation, reset) lives only in this call's frame."""
    kind = AccountRequest.objects.filter(pk=request_id).values_list("kind", flat=True).first()
    if kind in (None, Kind.CREATE):
        return workflow.request_execute(
            request_id=request_id,
            user=user,
            account_password=account_password,
            origin=origin,
            client=client,
        )
    return _execute_change(request_id, user, origin, account_password, client)


@sensitive_variables()
def _execute_change(request_id, user, origin, account_password, client) -> ExecutionResult:
    client = client or get_guarded_client()
    if workflow.expire_if_stale(request_id=request_id, origin=origin):
        raise TransitionError(_("The approval has expired: submit a new request."))
    account_request = AccountRequest.objects.select_related("instance").get(pk=request_id)
    if not policy.owns(user, account_request):
        raise TransitionError(_("Only the requester carries out the change once it is approved."))
    if not account_request.is_approved:
        raise workflow._refusal(
            account_request, _("This request is %(status)s: there is nothing to do.")
        )
    if api_breaker().is_open():
        raise TransitionError(unavailable_message())
    _wait_until_settled(account_request, client)

    with transaction.atomic():
        workflow._transition(
            account_request,
            Status.APPROVED,
            Action.EXECUTION_STARTED,
            origin,
            status=Status.EXECUTING,
            executed_by=user,
            executing_since=timezone.now(),
        )
    try:
        result = _call(client, account_request, account_password)
    except AlibabaApiError as error:
        workflow._keep_only_what_fits(error)
        if isinstance(error, OutcomeUnknown):
            workflow._record_outcome_unknown(account_request, error, origin)
            reconciled = reconcile_change(
                account_request=account_request, origin=origin, client=client
            )
            return ExecutionResult(reconciled, reconciled.status == Status.CREATED, error)
        workflow._record_failure(account_request, error, origin)
        return ExecutionResult(account_request, False, error)
    _record_done(
        account_request,
        origin,
        expected=Status.EXECUTING,
        action=DONE_ACTIONS[account_request.kind],
        alibaba_request_id=answers.request_id(result.request_id),
    )
    return ExecutionResult(account_request, True)


def _wait_until_settled(account_request: AccountRequest, client) -> None:
    """Refuse (the approval stands) while any account of the instance is still being
    created or changed: Alibaba would refuse the call, and the target must still exist."""
    accounts = _accounts_of(account_request.instance, client)
    _named(accounts, account_request.account_name)
    if any(account.account_status != "Available" for account in accounts):
        raise TransitionError(
            _(
                "An account on this instance is still being created or changed (that takes "
                "about a minute). Nothing was done and the approval still stands: try again "
                "in a minute."
            )
        )


@sensitive_variables()
def _call(client, account_request: AccountRequest, account_password: str):
    instance = account_request.instance
    where = {
        "region_id": instance.region_id,
        "instance_id": instance.instance_id,
        "account_name": account_request.account_name,
    }
    kind = account_request.kind
    if kind == Kind.ADOPT:
        # Nothing changes on the instance: the request records who owns the account.
        return AccountChangeResult(request_id="")
    if kind == Kind.DELETE:
        return client.delete_account(**where)
    if kind == Kind.PRIVILEGE:
        return client.grant_account_privilege(
            **where, account_privilege=account_request.account_privilege
        )
    if kind == Kind.RESET_PASSWORD:
        return client.reset_account_password(**where, account_password=account_password)
    return client.modify_account_description(
        **where, account_description=account_request.account_description
    )


def _record_done(
    account_request,
    origin,
    *,
    expected,
    action,
    alibaba_request_id: str = "",
    comment="",
    said: AuditMessage | None = None,
) -> None:
    with transaction.atomic():
        workflow._transition(
            account_request,
            expected,
            action,
            origin,
            comment=comment,
            said=said,
            event={"alibaba_request_id": alibaba_request_id},
            status=Status.CREATED,
            finished_at=timezone.now(),
            alibaba_request_id=alibaba_request_id,
            error_code="",
            error_message="",
        )
        if account_request.kind == Kind.ADOPT:
            KnownAccount.objects.filter(
                instance=account_request.instance, account_name=account_request.account_name
            ).update(created_by=account_request, drift="")
        instance = account_request.instance
        if account_request.kind == Kind.DELETE and instance.account_count:
            Instance.objects.filter(pk=instance.pk).update(account_count=instance.account_count - 1)
    notifications.request_finished(account_request)


# --- Reconcile ---------------------------------------------------------------------------


def change_is_visible(account_request: AccountRequest, account: Account | None) -> bool | None:
    """Whether DescribeAccounts shows the change as made; None while it cannot tell yet
    (a deleted account stays listed, ``Unavailable``, until its deletion settles)."""
    kind = account_request.kind
    if kind == Kind.DELETE:
        if account is None:
            return True
        return None if account.account_status != "Available" else False
    if account is None:
        return False
    if kind == Kind.PRIVILEGE:
        return account.privilege == account_request.account_privilege
    if kind == Kind.DESCRIPTION:
        return account.account_description == account_request.account_description
    # A password is never shown: a reset cannot be confirmed, so it is done again.
    return False


def reconcile_change(
    *, account_request: AccountRequest, origin: Origin, client=None
) -> AccountRequest:
    """Find out with DescribeAccounts whether a change of unknown outcome was made.

    Made: done. Not made: the approval stands and the requester may try again. No
    answer, or not settled yet: the request stays in needs-reconciliation.
    """
    client = client or get_guarded_client()
    instance = account_request.instance
    try:
        accounts = client.describe_accounts(
            region_id=instance.region_id,
            instance_id=instance.instance_id,
            account_name=account_request.account_name,
        )
    except AlibabaApiError:
        notifications.request_needs_reconciliation(account_request)
        return account_request
    account = next((a for a in accounts if a.account_name == account_request.account_name), None)
    made = change_is_visible(account_request, account)
    if made is None:
        return account_request
    if made:
        _record_done(
            account_request,
            origin,
            expected=Status.NEEDS_RECONCILIATION,
            action=Action.RECONCILED,
            said=audit_message("reconcile.change_made"),
        )
        return account_request
    with transaction.atomic():
        workflow._transition(
            account_request,
            Status.NEEDS_RECONCILIATION,
            Action.RECONCILED,
            origin,
            outcome=Outcome.FAILURE,
            said=audit_message("reconcile.change_not_seen"),
            status=Status.APPROVED,
            error_code="",
            error_message="",
        )
    return account_request
