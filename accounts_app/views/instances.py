"""The instance inventory: the list (any signed-in user), a sync button (staff), details."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts_app import policy, roles, rules
from accounts_app.alibaba.errors import AlibabaApiError
from accounts_app.audit import Origin
from accounts_app.background import sync as background_sync
from accounts_app.forms.instance_picker import render_matches
from accounts_app.forms.instances import InstanceFilterForm
from accounts_app.models import Instance
from accounts_app.selectors import accounts as account_selectors
from accounts_app.selectors import instances as instance_selectors
from accounts_app.services import drift, live_calls

REQUESTS_SHOWN = 100


@require_GET
def instance_choices(request):
    """The instance pickers' suggestions (htmx): at most MATCHES_SHOWN options."""
    purpose = "filter" if request.GET.get("purpose") == "filter" else "request"
    instances, more = instance_selectors.instance_matches(
        request.GET.get("instance_id", ""), include_gone=purpose == "filter"
    )
    return HttpResponse(render_matches(instances, more=more, purpose=purpose))


@require_GET
@vary_on_headers("HX-Request")
def instance_list(request):
    choices, last_synced, sync_run = instance_selectors.inventory_summary()
    form = InstanceFilterForm(request.GET, choices=choices)
    page = rows = None
    if form.is_valid():
        page = instance_selectors.instance_list_page(
            form.instance_filter(), request.GET.get("page"), form.page_size()
        )
        rows = instance_selectors.instance_rows(list(page.object_list))
    template = "instances/list.html"
    # A history restore needs the whole page, although htmx asks for it.
    if request.htmx and not request.htmx.history_restore_request:
        template += "#rows"
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "last_synced": last_synced,
        "can_sync": policy.may_sync_inventory(request.user),
        "sync_run": sync_run,
    }
    return render(request, template, context)


@require_POST
def instance_sync(request):
    if not policy.may_sync_inventory(request.user):
        roles.deny(
            request, "staff status", message=_("Only administrators can sync the instance list.")
        )
    # Fanned out per region to the workers; the page shows the progress.
    background_sync.sync_start(origin=Origin.from_request(request))
    messages.info(request, _("The sync has started; its progress shows below."))
    return redirect("instances")


@require_GET
def instance_detail(request, instance_id: str):
    """No live call: the accounts are the sweep's (KnownAccount), read again on demand."""
    try:
        instance = account_selectors.instance_with_accounts(instance_id)
    except Instance.DoesNotExist as error:
        raise Http404 from error
    context = {
        "instance": instance,
        "blockers": instance_selectors.blocker_messages(instance),
        "max_accounts": rules.MAX_ACCOUNTS_PER_INSTANCE,
        "requests": instance_selectors.requests_for_instance(
            instance, request.user, REQUESTS_SHOWN
        ),
        "known_accounts": instance.known_accounts_seen,
        "can_refresh": policy.may_refresh_accounts(request.user) and not instance.is_gone,
    }
    return render(request, "instances/detail.html", context)


@require_POST
def instance_accounts_refresh(request, instance_id: str):
    instance = get_object_or_404(Instance, instance_id=instance_id, is_gone=False)
    if not policy.may_refresh_accounts(request.user):
        roles.deny(
            request,
            f"{roles.APPROVE_REQUEST} or staff status",
            message=_("Only approvers and administrators can read an instance's accounts again."),
        )
    if not live_calls.live_call_allowed(user=request.user):
        messages.warning(request, live_calls.THROTTLED_MESSAGE)
    else:
        try:
            found = drift.sweep_one(instance=instance, origin=Origin.from_request(request))
            messages.success(request, refreshed_message(len(found)))
        except AlibabaApiError as error:
            messages.error(request, error.human_message)
    return redirect(reverse("instance_detail", args=[instance_id]) + "#known-accounts")


def refreshed_message(new_drift: int) -> str:
    if not new_drift:
        return gettext("The accounts were read again: no new drift.")
    return ngettext(
        "The accounts were read again: %(count)s new drift, on the drift page too.",
        "The accounts were read again: %(count)s new drifts, on the drift page too.",
        new_drift,
    ) % {"count": new_drift}
