"""The background engine's own tables, next to django-tasks-db's queue table."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class NotificationDelivery(models.Model):
    """One notification to one recipient: recorded so that a re-run never sends it twice."""

    event_key = models.CharField(_("event"), max_length=100)
    recipient = models.EmailField(_("recipient"), max_length=254)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Set while one run sends it (accounts_app/background/delivery.py).
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification delivery")
        verbose_name_plural = _("notification deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["event_key", "recipient"], name="one_delivery_per_event_and_recipient"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_key} -> {self.recipient}"


class SyncRun(models.Model):
    """One inventory sync, fanned out as one task per region; its progress as they finish."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    regions = models.JSONField(_("regions"), default=list)
    # Region ID -> {"seen", "created", "updated", "gone", "failures": {key: reason}},
    # written when that region's task finishes (a re-run overwrites its own entry).
    progress = models.JSONField(_("progress"), default=dict)

    class Meta:
        verbose_name = _("instance sync")
        verbose_name_plural = _("instance syncs")
        ordering = ["-started_at"]
        # The newest run is read on every view of the instances page (and each second
        # while a sync runs): from the index, not a sort of every run kept.
        indexes = [models.Index(fields=["-started_at"], name="syncrun_newest_first")]

    def __str__(self) -> str:
        return f"sync #{self.pk}"

    @property
    def regions_done(self) -> int:
        return len(self.progress)

    @property
    def instances_seen(self) -> int:
        """Instances of the finished regions, plus those described so far in the others."""
        done = sum(entry["seen"] for entry in self.progress.values())
        if set(self.regions) <= set(self.progress):
            return done  # every region reported: none under way, nothing to ask
        under_way = self.region_counts.exclude(region_id__in=list(self.progress))
        return done + sum(under_way.values_list("described", flat=True))

    @property
    def instances_created(self) -> int:
        return sum(entry["created"] for entry in self.progress.values())

    @property
    def instances_updated(self) -> int:
        return sum(entry["updated"] for entry in self.progress.values())

    @property
    def instances_gone(self) -> int:
        return sum(entry["gone"] for entry in self.progress.values())

    @property
    def failures(self) -> dict[str, str]:
        return {
            key: reason
            for entry in self.progress.values()
            for key, reason in entry["failures"].items()
        }


class SyncRegionCount(models.Model):
    """Instances described so far by a region's task: the live part of a run's progress."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="region_counts")
    region_id = models.CharField(_("region"), max_length=32)
    described = models.PositiveIntegerField(_("instances described"), default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "region_id"], name="one_count_per_run_region")
        ]

    def __str__(self) -> str:
        return f"{self.run} {self.region_id}: {self.described}"


class WorkerHeartbeat(models.Model):
    """The last sign of life of one worker process."""

    worker_id = models.CharField(_("worker"), max_length=64, unique=True)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    seen_at = models.DateTimeField(_("last seen"), db_index=True)

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self) -> str:
        return self.worker_id


class PeriodicRun(models.Model):
    """A periodic job's run for one period. The unique key makes the enqueue happen once."""

    job = models.CharField(_("job"), max_length=32)
    # The period's number: seconds since the epoch divided by the job's interval.
    period = models.BigIntegerField(_("period"))
    enqueued_at = models.DateTimeField(_("enqueued at"), auto_now_add=True)

    class Meta:
        verbose_name = _("periodic run")
        verbose_name_plural = _("periodic runs")
        constraints = [
            models.UniqueConstraint(fields=["job", "period"], name="one_periodic_run_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.job} #{self.period}"


class TaskFailure(models.Model):
    """The dead letter: a task that failed its last try, for staff to see and retry."""

    task_id = models.CharField(_("task"), max_length=64, unique=True)
    task_path = models.CharField(_("task path"), max_length=200)
    # The task's keyword arguments: identifiers only, never a secret.
    arguments = models.JSONField(_("arguments"), default=dict)
    attempts = models.PositiveIntegerField(_("tries"))
    error = models.TextField(_("error"))
    failed_at = models.DateTimeField(_("failed at"), auto_now_add=True)
    retried_at = models.DateTimeField(_("retried at"), null=True, blank=True)

    class Meta:
        verbose_name = _("failed task")
        verbose_name_plural = _("failed tasks")
        ordering = ["-failed_at"]

    def __str__(self) -> str:
        return f"{self.task_path} ({self.task_id})"
