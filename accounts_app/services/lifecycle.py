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

from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from accounts_app import notifications, policy, wording
from accounts_app.alibaba.client import Account, AccountChangeResult
from accounts_app.alibaba.errors import AlibabaApiError, OutcomeUnknown
from accounts_app.audit import Origin
from accounts_app.audit.messages import AuditMessage, message
from accounts_app.background import follow
from accounts_app.models import AccountRequest, AuditEvent, Instance, KnownAccount
from accounts_app.selectors.expiry import account_maker
from accounts_app.services import answers, drift, live_calls, workflow
from accounts_app.services.breaker import api_breaker, get_guarded_client, unavailable_message
from accounts_app.services.preflight import (
    BLOCKED,
    OK,
    WARNING,
    Check,
    PreflightResult,
    open_request_check,
)
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
    Kind.EXTEND: Action.EXPIRY_EXTENDED,
}
BUILT_IN = "Super"


def approvals_required(kind: str, privilege: str) -> int:
    """policy.approvals_required: the row of this kind and privilege, else creation's."""
    return policy.approvals_required(kind, privilege)


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
    expires_at: datetime | None = None,
    creation_rules: tuple[int, policy.Lifetime] | None = None,
) -> AccountRequest:
    """Submit a request of any kind; a creation is workflow.request_submit's. A creation
    or an adoption may carry an expiry, an extension carries its new one.
    ``creation_rules``: a creation's policy, when the request form has just read it."""
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
            expires_at=expires_at,
            creation_rules=creation_rules,
        )
    about = _about(kind, instance, account_name, expires_at)
    account = target_account(instance, account_name, client=client)
    if kind == Kind.ADOPT and account_name in drift.expected_accounts(instance):
        raise TransitionError(_("The dashboard already manages this account."))
    if kind == Kind.PRIVILEGE and account.privilege == account_privilege:
        raise TransitionError(_("The account already has this privilege."))
    if kind == Kind.DESCRIPTION and account.account_description == account_description:
        raise TransitionError(_("The account already has this description."))
    privilege = account_privilege if kind == Kind.PRIVILEGE else account.privilege
    if kind == Kind.ADOPT:
        workflow.check_expiry(privilege, expires_at)
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
        expires_at=expires_at,
        about=about,
    )


def _about(kind: str, instance: Instance, account_name: str, expires_at) -> AccountRequest | None:
    """An extension's account (the request that made it), its new expiry checked against
    the policy of its privilege; no other change carries an expiry."""
    if kind == Kind.EXTEND:
        maker = account_maker(instance, account_name)
        if maker is None:
            raise TransitionError(_("The dashboard made no account of this name on this instance."))
        if expires_at is None:
            raise TransitionError(_("Give the new expiry."))
        workflow.check_expiry(maker.account_privilege, expires_at)
        return maker
    if expires_at is not None and kind != Kind.ADOPT:
        raise TransitionError(_("Only a new or adopted account carries an expiry."))
    return None


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


def change_preflight(
    *,
    instance: Instance,
    kind: str,
    account_name: str,
    account_privilege: str = "",
    account_description: str = "",
    viewer=None,
    exclude_request_id: int | None = None,
    live: bool = True,
    client=None,
) -> tuple[PreflightResult, Account | None]:
    """Whether this change can be asked for on this instance (one row of a fleet
    change's table): the account exists there, is a user's, and does not already have
    what the change asks; no other open request names it. With it, the account as
    DescribeAccounts shows it (None when not found or not asked: ``live=False``, the
    viewer's budget of live calls spent)."""
    if instance.is_gone:
        return _change_result(
            [Check("instance", BLOCKED, str(wording.INSTANCE_GONE))], live=False
        ), None
    if not live:
        unchecked = Check("account_name", WARNING, str(live_calls.THROTTLED_MESSAGE))
        return _change_result([unchecked], live=False), None
    checks = [open_request_check(instance, account_name, exclude_request_id, viewer)]
    try:
        account = target_account(instance, account_name, client=client)
    except TransitionError as error:
        return _change_result([Check("account_name", BLOCKED, str(error.message)), *checks]), None
    if kind == Kind.PRIVILEGE and account.privilege == account_privilege:
        checks.insert(
            0, Check("privilege", BLOCKED, str(_("The account already has this privilege.")))
        )
    elif kind == Kind.DESCRIPTION and account.account_description == account_description:
        checks.insert(
            0, Check("description", BLOCKED, str(_("The account already has this description.")))
        )
    else:
        found = _("The account %(name)s exists on this instance.") % {"name": account_name}
        checks.insert(0, Check("account_name", OK, str(found)))
    return _change_result(checks), account


def _change_result(checks: list[Check], *, live: bool = True) -> PreflightResult:
    note = _("Checked live with Alibaba Cloud.") if live else ""
    return PreflightResult(checks=checks, live=live, note=str(note))


# --- Execute -----------------------------------------------------------------------------


@sensitive_variables()
def request_execute(
    *,
    request_id: int,
    user,
    origin: Origin,
    account_password: str = "",
    client=None,
    current: AccountRequest | None = None,
) -> ExecutionResult:
    """Execute a request of any kind; a creation is workflow.request_execute's. The
    password (creation, reset) lives only in this call's frame. ``current``: the request
    as the caller has just read it."""
    # Read once: its kind, whether it has expired, and what the execution needs.
    account_request = workflow.unexpired_request(
        request_id=request_id, origin=origin, current=current
    )
    if account_request is None:
        raise TransitionError(_("The approval has expired: submit a new request."))
    if account_request.kind == Kind.CREATE:
        return workflow.request_execute(
            request_id=request_id,
            user=user,
            account_password=account_password,
            origin=origin,
            client=client,
            current=account_request,
        )
    return _execute_change(account_request, user, origin, account_password, client)


@sensitive_variables()
def _execute_change(account_request, user, origin, account_password, client) -> ExecutionResult:
    client = client or get_guarded_client()
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
        result = change_call(client, account_request, account_password)
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
        said=_expiry_said(account_request),
    )
    return ExecutionResult(account_request, True)


def _expiry_said(account_request: AccountRequest) -> AuditMessage | None:
    """The audit log's sentence of a deletion at expiry, or of an extension."""
    maker = account_request.about
    if maker is None:
        return None
    if account_request.kind == Kind.DELETE:
        return message("expiry.deleted", expires=moment(maker.expires_at))
    return message(
        "expiry.extended", was=moment(maker.expires_at), now=moment(account_request.expires_at)
    )


def moment(value: datetime | None) -> str:
    """A time as the audit log's messages say it: UTC, to the minute ("-": none)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _wait_until_settled(account_request: AccountRequest, client) -> None:
    check_settled(account_request.instance, account_request.account_name, client)


def check_settled(instance: Instance, account_name: str, client) -> Account:
    """Refuse (the approval stands) while any account of the instance is still being
    created or changed: Alibaba would refuse the call, and the target must still exist.
    A fleet's change checks each instance with it before the call."""
    accounts = _accounts_of(instance, client)
    account = _named(accounts, account_name)
    if any(account.account_status != "Available" for account in accounts):
        raise TransitionError(
            _(
                "An account on this instance is still being created or changed (that takes "
                "about a minute). Nothing was done and the approval still stands: try again "
                "in a minute."
            )
        )
    return account


@sensitive_variables()
def change_call(
    client, account_request: AccountRequest, account_password: str, *, instance=None
) -> AccountChangeResult:
    """The kind's operation on the request's instance, or on ``instance`` (one target of
    a fleet change, services/fleet.py)."""
    instance = instance or account_request.instance
    where = {
        "region_id": instance.region_id,
        "instance_id": instance.instance_id,
        "account_name": account_request.account_name,
    }
    kind = account_request.kind
    if kind in (Kind.ADOPT, Kind.EXTEND):
        # Nothing changes on the instance: the request records who owns the account, or
        # when the dashboard deletes it.
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
            settling_since=timezone.now() if account_request.kind in follow.FOLLOWED else None,
        )
        follow.follow_later(account_request)
        if account_request.kind == Kind.EXTEND:
            # The extension moves the expiry of the request that made the account.
            AccountRequest.objects.filter(pk=account_request.about_id).update(
                expires_at=account_request.expires_at
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
            said=message("reconcile.change_made"),
        )
        return account_request
    with transaction.atomic():
        workflow._transition(
            account_request,
            Status.NEEDS_RECONCILIATION,
            Action.RECONCILED,
            origin,
            outcome=Outcome.FAILURE,
            said=message("reconcile.change_not_made"),
            status=Status.APPROVED,
            error_code="",
            error_message="",
        )
    return account_request
