"""The background sync's progress on the instances page, polled by htmx while it runs."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts_app.background.sync import latest_run


@require_GET
def sync_progress(request):
    return render(request, "instances/_sync_progress.html", {"sync_run": latest_run()})
