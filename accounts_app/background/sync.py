"""The inventory sync as background work: one task per region, so that a large estate
syncs in parallel across workers, with its progress kept in a SyncRun row.

Each region is synced by inventory.sync_instances(regions=[region]): it writes that
region's rows in one transaction at its end, so a worker killed mid-region leaves the
previous inventory; the task then runs again on another worker (workers.py) and
overwrites its own progress entry.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.tasks import task
from django.utils import timezone

from accounts_app.alibaba.client import KVStoreClient, get_client
from accounts_app.audit import Origin
from accounts_app.background.models import SyncRegionCount, SyncRun
from accounts_app.services import inventory

# How often a region's task writes how many instances it has described so far.
LIVE_COUNT_SECONDS = 1.0


def origin_arguments(origin: Origin) -> dict:
    """An Origin as task arguments (identifiers, never a secret)."""
    return {
        "actor_id": getattr(origin.actor, "pk", None),
        "actor_name": origin.actor_name,
        "source_ip": origin.source_ip,
        "user_agent": origin.user_agent,
    }


def origin_from_arguments(arguments: dict) -> Origin:
    actor_id = arguments.get("actor_id")
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    return Origin(
        actor=actor,
        actor_name=arguments.get("actor_name", ""),
        source_ip=arguments.get("source_ip"),
        user_agent=arguments.get("user_agent", ""),
    )


def sync_start(*, origin: Origin, regions: Sequence[str] | None = None) -> SyncRun:
    """Create a sync run and enqueue one task per region, in one transaction."""
    regions = list(regions or settings.KVSTORE_REGIONS)
    with transaction.atomic():
        run = SyncRun.objects.create(
            regions=regions, started_by=origin.actor if origin.actor else None
        )
        for region_id in regions:
            sync_region_task.enqueue(
                run_id=run.pk, region_id=region_id, origin=origin_arguments(origin)
            )
    run.refresh_from_db()
    return run


def sync_region(*, run_id: int, region_id: str, origin: Origin) -> dict:
    """Sync one region of a run and record what it found; idempotent."""
    client = CountingClient(get_client())
    try:
        with LiveCount(run_id, region_id, client):
            report = inventory.sync_instances(origin=origin, regions=[region_id], client=client)
        entry = {
            "seen": report.seen,
            "created": report.created,
            "updated": report.updated,
            "gone": report.gone,
            "failures": report.failures,
        }
    except Exception as error:
        # The run still finishes, and says what went wrong with this region.
        _record(run_id, region_id, _failed_entry(region_id, error))
        raise
    _record(run_id, region_id, entry)
    return entry


@task()
def sync_region_task(*, run_id: int, region_id: str, origin: dict) -> dict:
    return sync_region(run_id=run_id, region_id=region_id, origin=origin_from_arguments(origin))


class CountingClient:
    """The API client, counting the instances whose details have been fetched."""

    def __init__(self, client: KVStoreClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.described = 0

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def describe_accounts(self, **kwargs):
        # The second and last call per instance (inventory.fetch_details).
        accounts = self._client.describe_accounts(**kwargs)
        with self._lock:
            self.described += 1
        return accounts


class LiveCount:
    """Writes a CountingClient's count to the run's progress every LIVE_COUNT_SECONDS,
    from a thread of its own, while a region is being fetched."""

    def __init__(self, run_id: int, region_id: str, client: CountingClient) -> None:
        self.run_id = run_id
        self.region_id = region_id
        self.client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sync-progress", daemon=True)

    def __enter__(self) -> LiveCount:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(LIVE_COUNT_SECONDS):
                SyncRegionCount.objects.update_or_create(
                    run_id=self.run_id,
                    region_id=self.region_id,
                    defaults={"described": self.client.described},
                )
        except DatabaseError:
            pass  # progress only: the sync itself goes on
        finally:
            connection.close()


def _failed_entry(region_id: str, error: Exception) -> dict:
    reason = f"{type(error).__name__}: {error}"[:500]
    return {"seen": 0, "created": 0, "updated": 0, "gone": 0, "failures": {region_id: reason}}


def _record(run_id: int, region_id: str, entry: dict) -> None:
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=run_id)
        run.progress[region_id] = entry
        if set(run.regions) <= set(run.progress):
            run.status = SyncRun.Status.DONE
            run.finished_at = timezone.now()
        run.save(update_fields=["progress", "status", "finished_at"])


def latest_run() -> SyncRun | None:
    return SyncRun.objects.first()
