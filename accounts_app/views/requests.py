"""Views of the approval workflow: thin wrappers around services.workflow."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from accounts_app import policy, roles, rules
from accounts_app.audit import Origin
from accounts_app.forms.requests import AccountRequestForm, DecisionForm, execute_form
from accounts_app.models import AccountRequest
from accounts_app.reauth import recent_login_required, second_factor_required
from accounts_app.selectors import requests as selectors
from accounts_app.services import lifecycle, workflow


@roles.role_required(roles.REQUEST_ACCOUNT)
def request_new(request):
    copied_from = selectors.copy_source(request.user, request.GET.get("copy"))
    initial = AccountRequestForm.initial_from(copied_from) or AccountRequestForm.initial_from_query(
        request.GET
    )
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
    context = {"form": form, "preflight": preflight, "rules_spec": rules.browser_spec()}
    return render(request, "requests/new.html", context)


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
        "events": account_request.events.order_by("seq"),
        "preflight": workflow.preflight_for(account_request, viewer=request.user, page_view=True)
        if account_request.awaits_creation and not account_request.is_change
        else None,
        "may": policy.request_actions(request.user, account_request),
        "max_accounts": rules.MAX_ACCOUNTS_PER_INSTANCE,
        "decision_form": DecisionForm(),
    }
    return render(request, "requests/detail.html", context)


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
    account_request = get_object_or_404(AccountRequest, pk=pk)
    if not policy.may_decide_on(request.user, account_request):
        # Four eyes: deciding one's own request is refused like any missing right.
        roles.deny(
            request,
            roles.APPROVE_REQUEST,
            message=_("Nobody may approve or reject their own request."),
            reason="own request",
        )
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The comment is too long."))
        return redirect("request_detail", pk=pk)
    comment, origin = form.cleaned_data["comment"], Origin.from_request(request)
    try:
        service(request_id=pk, approver=request.user, comment=comment, origin=origin)
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
    """The one request in which the password exists: typed, sent to CreateAccount, forgotten."""
    account_request = _own_request(request, pk)
    if request.method == "GET" and not account_request.is_approved:
        return redirect("request_detail", pk=pk)
    form = execute_form(account_request, request.POST if request.method == "POST" else None)
    preflight = result = None
    if request.method == "POST" and form.is_valid():
        result, preflight = _execute(request, pk, form)
        account_request.refresh_from_db()
    if result is None and preflight is None and account_request.is_approved:
        preflight = _execute_preflight(request, account_request)
    context = {
        "account_request": account_request,
        # The form is rendered with PasswordInput(render_value=False): a
        # password typed before an error is never written back into the page.
        "form": form,
        "preflight": preflight,
        "result": result,
        "rules_spec": rules.browser_spec(),
    }
    template = (
        "requests/execute_change.html" if account_request.is_change else "requests/execute.html"
    )
    return render(request, template, context)


def _execute_preflight(request, account_request):
    """What the API says now about creating the account; a change has no pre-flight."""
    if account_request.is_change:
        return None
    return workflow.preflight_for(
        account_request, at_execute=True, viewer=request.user, page_view=True
    )


@sensitive_variables()
def _execute(request, pk: int, form):
    """(the execution's result, None), or (None, the pre-flight that refused it)."""
    try:
        result = lifecycle.request_execute(
            request_id=pk,
            user=request.user,
            account_password=form.cleaned_data.get("account_password", ""),
            origin=Origin.from_request(request),
        )
    except workflow.TransitionError as error:
        form.add_error(None, error.message)
        return None, error.preflight
    return result, None


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
    rows = selectors.waiting_for_approval(request.user)[:200]
    template = "requests/approvals.html"
    if request.htmx:
        template += "#approval-rows"
    return render(request, template, {"rows": rows})
