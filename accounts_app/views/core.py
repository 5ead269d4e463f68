from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts_app.background.workers import queue_health
from accounts_app.forms.preferences import PreferencesForm
from accounts_app.selectors import requests as selectors
from accounts_app.selectors.identity import account_source
from accounts_app.services.preferences import preference_set_time_zone, session_time_zone

DASHBOARD_LIST_SIZE = 10


def dashboard(request):
    context = selectors.dashboard_lists(request.user, DASHBOARD_LIST_SIZE)
    template = "dashboard.html"
    if request.htmx:
        template += "#dashboard-lists"
    return render(request, template, context)


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


@login_not_required
@never_cache
@require_GET
def livez(request):
    """This server answers and reaches its database: one trivial query, nothing else
    (a load balancer's probe, and the ceiling of make bench's pages)."""
    if not _database_answers():
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_GET
def healthz(request):
    if not _database_answers():
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


def preferences(request):
    current = session_time_zone(request.session)
    form = PreferencesForm(request.POST or None, initial={"time_zone": current})
    if request.method == "POST" and form.is_valid():
        time_zone = form.cleaned_data["time_zone"]
        preference_set_time_zone(user=request.user, session=request.session, time_zone=time_zone)
        messages.success(request, _("Your time zone is now %(tz)s.") % {"tz": time_zone})
        return redirect("preferences")
    context = {"form": form, "source": account_source(request.user)}
    return render(request, "preferences.html", context)
