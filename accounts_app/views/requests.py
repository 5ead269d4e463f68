"""Views of the approval workflow: thin wrappers around services.workflow."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from accounts_app import policy, roles, rules, selectors
from accounts_app.audit import Origin
from accounts_app.forms import AccountRequestForm, DecisionForm, ExecuteForm
from accounts_app.models import AccountRequest, Instance
from accounts_app.reauth import recent_login_required
from accounts_app.services import workflow
from accounts_app.services.preflight import run_preflight

Status = AccountRequest.Status


@roles.role_required(roles.REQUEST_ACCOUNT)
def request_new(request):
    initial = _copied_values(request)
    form = AccountRequestForm(request.POST or None, initial=initial)
    preflight = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account_request = workflow.request_submit(
                requester=request.user,
                instance=data["instance_id"],
                account_name=data["account_name"],
                account_privilege=data["account_privilege"],
                account_description=data["account_description"],
                account_type=data["account_type"],
                justification=data["justification"],
                origin=Origin.from_request(request),
                copied_from=initial.get("copied_from"),
            )
        except workflow.TransitionError as error:
            form.add_error(None, error.message)
            preflight = error.preflight
        else:
            messages.success(
                request, _("Request #%(pk)s submitted for approval.") % {"pk": account_request.pk}
            )
            return redirect("request_detail", pk=account_request.pk)
    return render(
        request,
        "requests/new.html",
        {"form": form, "preflight": preflight, "rules_spec": rules.browser_spec()},
    )


def _copied_values(request) -> dict:
    """Values of an earlier request, for "copy into a new request"."""
    source_id = request.GET.get("copy")
    # isdigit() alone lets "²" and 5,000-digit numbers through to int(): a 500.
    if not source_id or not (source_id.isascii() and source_id.isdigit()) or len(source_id) > 18:
        return {}
    source = (
        AccountRequest.objects.select_related("instance")
        .filter(pk=int(source_id), requester=request.user)
        .first()
    )
    if source is None:
        return {}
    return {
        "instance_id": source.instance.instance_id,
        "account_name": source.account_name,
        "account_privilege": source.account_privilege,
        "account_description": source.account_description,
        "account_type": source.account_type,
        "justification": source.justification,
        "copied_from": source,
    }


@roles.role_required(roles.REQUEST_ACCOUNT)
@require_GET
def request_preflight(request):
    """Live pre-flight for the request form (htmx): what the API would say now."""
    instance = Instance.objects.filter(
        instance_id=request.GET.get("instance_id", ""), is_gone=False
    ).first()
    preflight = None
    if instance is not None:
        account_name = request.GET.get("account_name", "")
        preflight = run_preflight(
            instance=instance,
            account_name=account_name if not rules.validate("AccountName", account_name) else "",
            privilege=request.GET.get("account_privilege", ""),
        )
    return render(request, "instances/_preflight.html", {"preflight": preflight})


def _visible_request(request, pk: int) -> AccountRequest:
    try:
        account_request = selectors.visible_request(request.user, pk)
    except AccountRequest.DoesNotExist as error:
        raise Http404 from error
    if account_request is None:
        roles.deny(request, roles.VIEW_EVERYTHING)
    return account_request


def request_detail(request, pk: int):
    account_request = _visible_request(request, pk)
    context = {
        "account_request": account_request,
        "decisions": account_request.decisions.all(),
        "events": account_request.events.order_by("seq"),
        "preflight": workflow.preflight_for(account_request)
        if account_request.awaits_creation
        else None,
        "may": policy.request_actions(request.user, account_request),
        "max_accounts": rules.MAX_ACCOUNTS_PER_INSTANCE,
        "decision_form": DecisionForm(),
    }
    return render(request, "requests/detail.html", context)


@roles.role_required(roles.APPROVE_REQUEST)
@require_POST
def request_approve(request, pk: int):
    return _decide(request, pk, workflow.request_approve, _("You approved request #%(pk)s."))


@roles.role_required(roles.APPROVE_REQUEST)
@require_POST
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
    try:
        service(
            request_id=pk,
            approver=request.user,
            comment=form.cleaned_data["comment"],
            origin=Origin.from_request(request),
        )
    except workflow.TransitionError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success_message % {"pk": pk})
    return redirect("request_detail", pk=pk)


@require_POST
def request_cancel(request, pk: int):
    account_request = _visible_request(request, pk)
    if not policy.owns(request.user, account_request):
        roles.deny(request, roles.REQUEST_ACCOUNT)
    try:
        workflow.request_cancel(
            request_id=pk, user=request.user, origin=Origin.from_request(request)
        )
    except workflow.TransitionError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Request #%(pk)s cancelled.") % {"pk": pk})
    return redirect("request_detail", pk=pk)


@sensitive_post_parameters()
@sensitive_variables()
@roles.role_required(roles.REQUEST_ACCOUNT)
@recent_login_required
def request_execute(request, pk: int):
    """The one request in which the password exists: typed, sent to CreateAccount, forgotten."""
    account_request = _visible_request(request, pk)
    if not policy.owns(request.user, account_request):
        roles.deny(request, roles.REQUEST_ACCOUNT)
    if request.method == "GET" and not account_request.is_approved:
        return redirect("request_detail", pk=pk)
    form = ExecuteForm(request.POST or None)
    preflight = result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = workflow.request_execute(
                request_id=pk,
                user=request.user,
                account_password=form.cleaned_data["account_password"],
                origin=Origin.from_request(request),
            )
        except workflow.TransitionError as error:
            form.add_error(None, error.message)
            preflight = error.preflight
        account_request.refresh_from_db()
    if result is None and preflight is None and account_request.is_approved:
        preflight = workflow.preflight_for(account_request)
    return render(
        request,
        "requests/execute.html",
        {
            "account_request": account_request,
            # The form is rendered with PasswordInput(render_value=False): a
            # password typed before an error is never written back into the page.
            "form": form,
            "preflight": preflight,
            "result": result,
            "rules_spec": rules.browser_spec(),
        },
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
        return redirect("request_detail", pk=pk)
    if account_request.status == Status.CREATED:
        messages.success(request, _("The account exists: the request is marked created."))
    elif account_request.status == Status.APPROVED:
        messages.info(
            request, _("The account does not exist: nothing was created; you may try again.")
        )
    else:
        messages.warning(
            request, _("Alibaba Cloud still does not answer; try reconciling again later.")
        )
    return redirect("request_detail", pk=pk)


@roles.role_required(roles.APPROVE_REQUEST)
def approvals(request):
    rows = selectors.waiting_for_approval(request.user)[:200]
    template = "requests/approvals.html"
    if request.htmx:
        template += "#approval-rows"
    return render(request, template, {"rows": rows})
