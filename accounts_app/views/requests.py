"""Views of the approval workflow: thin wrappers around services.workflow."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from accounts_app import policy, roles, rules
from accounts_app.alibaba import errors
from accounts_app.audit import Origin
from accounts_app.forms.requests import (
    AccountRequestForm,
    DecisionForm,
    execute_form,
    expiry_browser_spec,
)
from accounts_app.models import AccountRequest
from accounts_app.reauth import recent_login_required, second_factor_required
from accounts_app.selectors import accounts as account_selectors
from accounts_app.selectors import expiry as expiry_selectors
from accounts_app.selectors import request_list
from accounts_app.selectors import requests as selectors
from accounts_app.selectors.approvals import approval_progress
from accounts_app.selectors.connection import connection_hints
from accounts_app.services import lifecycle, workflow


@roles.role_required(roles.REQUEST_ACCOUNT)
def request_new(request):
    copied_from = selectors.copy_source(request.user, request.GET.get("copy"))
    initial = AccountRequestForm.initial_for(copied_from, request.GET)
    form = AccountRequestForm(request.POST or None, initial=initial)
    preflight = None
    if request.method == "POST" and form.is_valid():
        try:
            account_request = lifecycle.request_submit(
                requester=request.user,
                origin=Origin.from_request(request),
                copied_from=copied_from,
                **form.submission(),
            )
        except workflow.TransitionError as error:
            form.add_error(None, error.message)
            preflight = error.preflight
        else:
            submitted = _("Request #%(pk)s submitted for approval.")
            messages.success(request, submitted % {"pk": account_request.pk})
            return redirect("request_detail", pk=account_request.pk)
    context = {"form": form, "preflight": preflight, "rules_script": rules.browser_spec_script()}
    required, lifetimes = policy.creation_policy_by_privilege()  # one query for both
    context.update(approval_policy=approval_policy_shown(required), **expiry_context(lifetimes))
    return render(request, "requests/new.html", context)


def expiry_context(lifetimes: dict | None = None) -> dict:
    """The expiry's browser checks and the policy's lifetimes, said before submitting."""
    if lifetimes is None:
        lifetimes = policy.creation_policy_by_privilege()[1]
    spec = expiry_browser_spec(lifetimes)
    lifetimes = spec["lifetimes"]
    shown = [
        (label, lifetimes[value]) for value, label in rules.PRIVILEGE_CHOICES if value in lifetimes
    ]
    return {"expiry_spec": spec, "expiry_policy": shown}


def approval_policy_shown(required: dict[str, int]) -> list[tuple[str, int]]:
    """(privilege label, approvals it needs), for the form to say before submitting."""
    return [
        (label, required[value]) for value, label in rules.PRIVILEGE_CHOICES if value in required
    ]


@roles.role_required(roles.REQUEST_ACCOUNT)
@require_GET
def request_preflight(request):
    """Live pre-flight for the request form (htmx): what the API would say now."""
    preflight = workflow.preflight_for_form(
        instance_id=request.GET.get("instance_id", ""),
        account_name=request.GET.get("account_name", ""),
        privilege=request.GET.get("account_privilege", ""),
        viewer=request.user,
    )
    return render(request, "instances/_preflight.html", {"preflight": preflight})


def _visible_request(request, pk: int, *, with_decisions: bool = False) -> AccountRequest:
    try:
        account_request = selectors.visible_request(request.user, pk, with_decisions=with_decisions)
    except AccountRequest.DoesNotExist as error:
        raise Http404 from error
    if account_request is None:
        roles.deny(request, roles.VIEW_EVERYTHING)
    return account_request


def _own_request(request, pk: int) -> AccountRequest:
    account_request = _visible_request(request, pk)
    if not policy.owns(request.user, account_request):
        roles.deny(request, roles.REQUEST_ACCOUNT)
    return account_request


def request_detail(request, pk: int):
    account_request = _visible_request(request, pk, with_decisions=True)
    context = {
        "account_request": account_request,
        "decisions": account_request.decisions.all(),
        "progress": approval_progress(account_request),
        "events": account_request.timeline,
        "preflight": workflow.preflight_for(account_request, viewer=request.user, page_view=True)
        if account_request.awaits_creation
        and not (account_request.is_fleet or account_request.is_change)
        else None,
        "may": policy.request_actions(request.user, account_request),
        "max_accounts": rules.MAX_ACCOUNTS_PER_INSTANCE,
        "decision_form": DecisionForm(),
        "final_state": account_selectors.final_state(account_request)
        if account_request.is_change and account_request.is_created
        else None,
        **overdue_context(account_request),
    }
    return render(request, "requests/detail.html", context)


def overdue_context(account_request: AccountRequest) -> dict:
    """Whether the account's expiry passed without its deletion, and the deletions tried."""
    overdue = account_request.is_overdue(timezone.now())
    # (Read with the request: selectors.requests.visible_request.)
    deletions = expiry_selectors.deletions_from(account_request.deletion_rows) if overdue else []
    return {"overdue": overdue, "overdue_deletions": deletions}


@roles.role_required(roles.APPROVE_REQUEST)
@require_POST
@second_factor_required("request_detail")
def request_approve(request, pk: int):
    return _decide(request, pk, workflow.request_approve, _("You approved request #%(pk)s."))


@roles.role_required(roles.APPROVE_REQUEST)
@require_POST
@second_factor_required("request_detail")
def request_reject(request, pk: int):
    return _decide(request, pk, workflow.request_reject, _("You rejected request #%(pk)s."))


def _decide(request, pk, service, success_message):
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The comment is too long."))
        return redirect("request_detail", pk=pk)
    comment, origin = form.cleaned_data["comment"], Origin.from_request(request)
    try:  # the service reads the request (once, locked) and asks four eyes
        service(request_id=pk, approver=request.user, comment=comment, origin=origin)
    except AccountRequest.DoesNotExist:
        raise Http404 from None
    except workflow.DecisionRefused:
        # Four eyes: deciding one's own request is refused like any missing right.
        roles.deny(
            request,
            roles.APPROVE_REQUEST,
            message=_("Nobody may approve or reject their own request."),
            reason="own request",
        )
    except workflow.TransitionError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success_message % {"pk": pk})
    return redirect("request_detail", pk=pk)


@require_POST
def request_cancel(request, pk: int):
    _own_request(request, pk)
    try:
        workflow.request_cancel(
            request_id=pk, user=request.user, origin=Origin.from_request(request)
        )
    except workflow.TransitionError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Request #%(pk)s cancelled.") % {"pk": pk})
    return redirect("request_detail", pk=pk)


@never_cache  # no-store on the form and on its result, whatever the middleware does
@sensitive_post_parameters()
@sensitive_variables()
@roles.role_required(roles.REQUEST_ACCOUNT)
@recent_login_required
def request_execute(request, pk: int):
    """The one request in which the password exists: typed, sent to CreateAccount, forgotten.

    Post/redirect/get: every attempt that reached the workflow answers with a redirect,
    so a refresh shows the outcome again and never posts the password a second time. An
    invalid form is answered in place (nothing was attempted; its password fields are
    rendered empty). The password itself is never shown after the POST: a generated one
    lives only in this page's fields, in the browser, until it is submitted."""
    account_request = _own_request(request, pk)
    form = execute_form(account_request, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if _execute(request, account_request, form):
            return redirect("request_execute_result", pk=pk)
        return redirect("request_execute", pk=pk)
    if not account_request.is_approved:
        return redirect("request_execute_result", pk=pk)
    context = {"account_request": account_request, "form": form}
    context["preflight"] = _execute_preflight(request, account_request)
    if account_request.is_change:
        context["settling"] = account_selectors.changes_settling(
            account_request.instance, excluding=pk
        )
    context["rules_spec"] = rules.browser_spec()
    return render(request, _by_kind(account_request, "execute"), context)


def _by_kind(account_request: AccountRequest, page: str) -> str:
    """The execute page, or its result, for a creation or for a change."""
    return f"requests/{page}_change.html" if account_request.is_change else f"requests/{page}.html"


def _execute_preflight(request, account_request):
    """What the API says now about creating the account; a change has no pre-flight."""
    if account_request.is_change:
        return None
    return workflow.preflight_for(
        account_request, at_execute=True, viewer=request.user, page_view=True
    )


@sensitive_variables()
def _execute(request, account_request: AccountRequest, form) -> bool:
    """Whether Alibaba was called (its outcome is then the request's state); a refusal
    before the call is said in a message."""
    try:
        lifecycle.request_execute(
            request_id=account_request.pk,
            user=request.user,
            account_password=form.cleaned_data.get("account_password", ""),
            origin=Origin.from_request(request),
            current=account_request,  # read just now (_own_request): not read again
        )
    except workflow.TransitionError as error:
        messages.error(request, error.message)
        return False
    return True


# What an execution leaves (approved: refused by Alibaba for a cause that passes, the
# approval standing).
EXECUTION_OUTCOMES = {
    AccountRequest.Status.APPROVED,
    AccountRequest.Status.CREATED,
    AccountRequest.Status.FAILED,
    AccountRequest.Status.NEEDS_RECONCILIATION,
}


@never_cache
@require_GET
@roles.role_required(roles.REQUEST_ACCOUNT)
def request_execute_result(request, pk: int):
    """What the last execution left, read from the request: the created account's
    connection details (never its password), an unknown outcome, or the refusal."""
    account_request = _own_request(request, pk)
    if account_request.status not in EXECUTION_OUTCOMES:
        return redirect("request_detail", pk=pk)
    if account_request.is_approved and not account_request.error_code:
        return redirect("request_execute", pk=pk)  # nothing was tried since the approval
    context = {
        "account_request": account_request,
        "instance_busy": errors.is_instance_busy(account_request.error_code),
        "connection": connection_hints(account_request),
    }
    return render(request, _by_kind(account_request, "execute_result"), context)


# What reconciling found, by the request's status afterwards.
RECONCILED_MESSAGES = {
    AccountRequest.Status.CREATED: (
        messages.SUCCESS,
        _("The account exists: the request is marked created."),
    ),
    AccountRequest.Status.APPROVED: (
        messages.INFO,
        _("The account does not exist: nothing was created; you may try again."),
    ),
}
STILL_UNKNOWN = (
    messages.WARNING,
    _("Alibaba Cloud still does not answer; try reconciling again later."),
)


@require_POST
def request_reconcile(request, pk: int):
    account_request = _visible_request(request, pk)
    if not policy.may_reconcile_on(request.user, account_request):
        roles.deny(request, roles.APPROVE_REQUEST)
    try:
        account_request = workflow.reconcile_request(
            request_id=pk, origin=Origin.from_request(request)
        )
    except workflow.TransitionError as error:
        messages.error(request, error.message)
    else:
        level, message = RECONCILED_MESSAGES.get(account_request.status, STILL_UNKNOWN)
        messages.add_message(request, level, message)
    return redirect("request_detail", pk=pk)


@roles.role_required(roles.APPROVE_REQUEST)
def approvals(request):
    number = request_list.page_number(request.GET.get("page"))
    page = request_list.approvals_page(request.user, number)
    template = "requests/approvals.html"
    if request.htmx:
        template += "#approval-rows"
    return render(request, template, {"page": page})
