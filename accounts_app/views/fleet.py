"""Fleet request pages: choose the instances, check them, submit; run; watch the run."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET

from accounts_app import policy, roles, rules
from accounts_app.audit import Origin
from accounts_app.forms.fleet import FleetExecuteForm, FleetRequestForm, FleetSelectorForm
from accounts_app.models import AccountRequest
from accounts_app.reauth import recent_login_required
from accounts_app.selectors import fleet as selectors
from accounts_app.services import fleet
from accounts_app.views.requests import _own_request, _visible_request, expiry_context


@roles.role_required(roles.REQUEST_ACCOUNT)
def fleet_new(request):
    """Search or pick instances, check them (the table), then submit the ticked ones."""
    finder = FleetSelectorForm(request.GET or None)
    form = FleetRequestForm(request.POST or None)
    if form.is_bound:
        listed, _unknown = selectors.instances_by_id(form.listed_ids())
    else:
        listed = list(selectors.selected_instances(finder.selector()))
    checks = None
    step = request.POST.get("step")
    if step in ("check", "submit") and form.is_valid():
        checks = _check_or_submit(request, form, submit=step == "submit")
        if not isinstance(checks, list):
            return checks
    context = {"finder": finder, "form": form, "rows": _rows(listed, checks), "checked": checks}
    context.update(expiry_context())
    context["throttled"] = fleet.throttled_message(checks or [])
    return render(request, "requests/fleet_new.html", context)


def _check_or_submit(request, form: FleetRequestForm, *, submit: bool):
    """The pre-flight table, or the redirect to the new request."""
    values = form.submission()
    if not submit:
        return fleet.fleet_preflight(
            instances=values["instances"],
            account_name=values["account_name"],
            privilege=values["account_privilege"],
            viewer=request.user,
            kind=values["kind"],
            description=values["account_description"],
        )
    try:
        row = fleet.fleet_submit(
            requester=request.user, origin=Origin.from_request(request), **values
        )
    except fleet.FleetRefused as error:
        form.add_error(None, error.message)
        return error.checks
    messages.success(request, _("Request #%(pk)s submitted for approval.") % {"pk": row.pk})
    return redirect("request_detail", pk=row.pk)


def _rows(listed, checks) -> list[dict]:
    """One row per instance listed: ticked unless its pre-flight blocks it."""
    by_id = {check.instance.instance_id: check for check in checks or []}
    rows = []
    for instance in listed:
        check = by_id.get(instance.instance_id)
        ticked = check is None or check.status != "blocked"
        rows.append({"instance": instance, "check": check, "ticked": ticked})
    return rows


@require_GET
def fleet_progress(request, pk: int):
    """Each instance's outcome, polled by htmx while a run goes on (any tab)."""
    account_request = _visible_request(request, pk)
    targets = selectors.fleet_targets(account_request)
    context = {
        "account_request": account_request,
        "targets": targets,
        "progress": selectors.fleet_progress(targets),
    }
    return render(request, "requests/_fleet_progress.html", context)


@never_cache  # no-store on the form, whatever the middleware does
@sensitive_post_parameters()
@sensitive_variables()
@roles.role_required(roles.REQUEST_ACCOUNT)
@recent_login_required
def fleet_execute(request, pk: int):
    """The one request in which the password(s) exist: the whole run happens here.

    Post/redirect/get: a run, or its refusal, answers with a redirect (to the result
    page, or back here with the refusal said), so a refresh never posts again. The
    passwords generated per instance are made in the browser before the run and shown
    there once; the server never writes a password into a page."""
    account_request = _own_request(request, pk)
    if not account_request.is_fleet:
        return redirect("request_execute", pk=pk)
    runnable = selectors.runnable_targets(account_request)
    form = FleetExecuteForm(
        request.POST if request.method == "POST" else None,
        instance_ids=[target.instance.instance_id for target in runnable],
        needs_password=account_request.needs_password,
    )
    if request.method == "POST" and form.is_valid():
        ran = _run(request, pk, form)
        return redirect("fleet_execute_result" if ran else "fleet_execute", pk=pk)
    if not policy.may_execute_fleet(request.user, account_request):
        return redirect("fleet_execute_result", pk=pk)
    context = {"account_request": account_request, "form": form, "runnable": runnable}
    context["rules_spec"] = rules.browser_spec()
    return render(request, "requests/fleet_execute.html", context)


@sensitive_variables()
def _run(request, pk: int, form: FleetExecuteForm) -> bool:
    """Whether the run started (its outcome is then each target's state); a refusal
    before it is said in a message."""
    try:
        fleet.fleet_execute(
            request_id=pk,
            user=request.user,
            password_for=form.password_for,
            origin=Origin.from_request(request),
        )
    except fleet.TransitionError as error:
        messages.error(request, error.message)
        return False
    return True


@never_cache
@require_GET
@roles.role_required(roles.REQUEST_ACCOUNT)
def fleet_execute_result(request, pk: int):
    """What the runs left, read from the targets' states: each instance's outcome, what
    to do next; never a password."""
    account_request = _own_request(request, pk)
    if not account_request.is_fleet or account_request.status not in RESULT_STATUSES:
        return redirect("request_detail", pk=pk)
    targets = selectors.fleet_targets(account_request)
    progress = selectors.fleet_progress(targets)
    if account_request.is_approved and progress.finished == 0:
        return redirect("fleet_execute", pk=pk)  # nothing was tried since the approval
    context = {"account_request": account_request, "targets": targets, "progress": progress}
    context["may_run"] = policy.may_execute_fleet(request.user, account_request)
    return render(request, "requests/fleet_execute_result.html", context)


# What a run leaves (approved: some instances failed, the approval standing).
RESULT_STATUSES = {
    AccountRequest.Status.APPROVED,
    AccountRequest.Status.EXECUTING,
    AccountRequest.Status.CREATED,
    AccountRequest.Status.NEEDS_RECONCILIATION,
}
