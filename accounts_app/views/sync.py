"""The background sync's progress on the instances page, polled by htmx while it runs."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts_app.background.models import SyncRun
from accounts_app.background.sync import latest_run


@require_GET
def sync_progress(request):
    sync_run = latest_run()
    response = render(request, "instances/_sync_progress.html", {"sync_run": sync_run})
    if request.htmx and sync_run is not None and sync_run.status == SyncRun.Status.DONE:
        # The poll that sees the end reloads the page: the list shows what was synced.
        response["HX-Refresh"] = "true"
    return response
