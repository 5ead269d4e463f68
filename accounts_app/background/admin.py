"""Staff's view of background work: recent tasks, failures with their error, a retry."""

from __future__ import annotations

from django.contrib import admin, messages
from django.tasks import TaskResultStatus
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_tasks_db.admin import DBTaskResultAdmin
from django_tasks_db.models import DBTaskResult

from accounts_app.background import retry
from accounts_app.background.models import (
    NotificationDelivery,
    SyncRun,
    TaskFailure,
    WorkerHeartbeat,
)


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(DBTaskResult)


@admin.register(DBTaskResult)
class TaskAdmin(DBTaskResultAdmin):
    list_display = [*DBTaskResultAdmin.list_display, "worker_ids"]
    actions = ["retry_tasks"]

    @admin.action(description=_("Retry the selected failed tasks"))
    def retry_tasks(self, request, queryset):
        retried = 0
        for result in queryset.filter(status=TaskResultStatus.FAILED):
            task = import_string(result.task_path)
            kwargs = {k: v for k, v in result.args_kwargs["kwargs"].items() if k != "attempt"}
            task.enqueue(*result.args_kwargs["args"], **kwargs)
            retried += 1
        messages.success(
            request,
            ngettext("%(count)s task queued again.", "%(count)s tasks queued again.", retried)
            % {"count": retried},
        )


@admin.register(TaskFailure)
class TaskFailureAdmin(ReadOnly):
    list_display = ["failed_at", "task_path", "attempts", "error", "retried_at"]
    list_filter = ["task_path"]
    actions = ["retry_failures"]

    @admin.action(description=_("Retry the selected failed tasks"))
    def retry_failures(self, request, queryset):
        for failure in queryset:
            retry.retry_failure(failure)
        count = queryset.count()
        messages.success(
            request,
            ngettext("%(count)s task queued again.", "%(count)s tasks queued again.", count)
            % {"count": count},
        )


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnly):
    list_display = ["id", "status", "started_at", "finished_at", "started_by"]


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnly):
    list_display = ["event_key", "recipient", "created_at", "sent_at"]
    search_fields = ["event_key", "recipient"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnly):
    list_display = ["worker_id", "started_at", "seen_at"]
