from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts_app import roles, selectors
from accounts_app.background.workers import queue_health
from accounts_app.middleware import TIME_ZONE_KEY
from accounts_app.models import UserPreference

DASHBOARD_LIST_SIZE = 10


def dashboard(request):
    user = request.user
    # Other people's requests only for those who may read every request.
    visible = None if roles.can_view_everything(user) else user
    context = {
        "my_requests": selectors.my_requests(user)[:DASHBOARD_LIST_SIZE],
        "waiting": selectors.waiting_for_approval(user)[:DASHBOARD_LIST_SIZE]
        if roles.can_approve(user)
        else [],
        "reconciliation": selectors.needing_reconciliation(requester=visible)[:DASHBOARD_LIST_SIZE],
        "recently_created": selectors.recently_created(requester=visible)[:DASHBOARD_LIST_SIZE],
    }
    template = "dashboard.html"
    if request.htmx:
        template += "#dashboard-lists"
    return render(request, template, context)


@login_not_required
@never_cache
@require_GET
def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    # Degraded is still 200: this server serves; the background work needs a look.
    tasks = queue_health()
    return JsonResponse(
        {
            "status": "ok" if tasks.ok else "degraded",
            "database": "ok",
            "tasks": {
                "worker_heartbeat_age": tasks.heartbeat_age,
                "oldest_waiting_age": tasks.oldest_waiting_age,
                "waiting": tasks.waiting,
                "problems": tasks.problems,
            },
        }
    )


class PreferencesForm(forms.Form):
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        choices=[(name, name) for name in sorted(zoneinfo.available_timezones())],
    )


def preferences(request):
    current = request.session.get(TIME_ZONE_KEY) or settings.DEFAULT_USER_TIME_ZONE
    form = PreferencesForm(request.POST or None, initial={"time_zone": current})
    if request.method == "POST" and form.is_valid():
        time_zone = form.cleaned_data["time_zone"]
        UserPreference.objects.update_or_create(
            user=request.user, defaults={"time_zone": time_zone}
        )
        request.session[TIME_ZONE_KEY] = time_zone
        messages.success(request, _("Your time zone is now %(tz)s.") % {"tz": time_zone})
        return redirect("preferences")
    return render(request, "preferences.html", {"form": form})
