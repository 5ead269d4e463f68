"""One background worker: django-tasks-db's worker, plus a heartbeat and the scheduler.

Run as many as you like, on as many machines as you like, against one PostgreSQL.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DatabaseError, connection

from accounts_app.background import scheduler, workers

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run one background worker (tasks, heartbeat, periodic jobs)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between polls.")
        parser.add_argument(
            "--no-scheduler", action="store_true", help="Do not enqueue periodic jobs."
        )

    def handle(self, *args, interval: float, no_scheduler: bool, **options):
        worker_id = workers.new_worker_id()
        workers.beat(worker_id)
        threading.Thread(
            target=keep_beating,
            args=(worker_id, not no_scheduler),
            name="worker-heartbeat",
            daemon=True,
        ).start()
        self.stdout.write(f"worker {worker_id} started")
        call_command(
            "db_worker",
            worker_id=worker_id,
            interval=interval,
            queue_name="*",
            reload=False,
            startup_delay=False,
        )


def keep_beating(worker_id: str, schedule: bool) -> None:
    stop = threading.Event()
    while not stop.wait(settings.TASKS_HEARTBEAT_SECONDS):
        try:
            workers.beat(worker_id)
            workers.requeue_orphans()
            if schedule:
                scheduler.tick()
        except DatabaseError:
            logger.exception("heartbeat of %s failed", worker_id)
        finally:
            connection.close()
