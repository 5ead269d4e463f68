"""Enqueue periodic jobs without running tasks (workers host a scheduler too)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.db import connection

from accounts_app.background import scheduler


class Command(BaseCommand):
    help = "Enqueue the periodic jobs (sync, expiry, reconciliation) once per period."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One tick, then exit.")
        parser.add_argument("--tick", type=float, default=5.0, help="Seconds between ticks.")
        parser.add_argument("--duration", type=float, default=0, help="Stop after (seconds).")

    def handle(self, *args, once: bool, tick: float, duration: float, **options):
        started = time.monotonic()
        while True:
            for job in scheduler.tick():
                self.stdout.write(f"enqueued {job}", ending="\n")
                self.stdout.flush()
            connection.close()
            if once or (duration and time.monotonic() - started >= duration):
                return
            time.sleep(tick)
