"""Create the demo users (idempotent): requester, approver, approver2, auditor, admin.

With --instances N, also write the simulator's state with a bigger estate: the ten demo
instances and generated ones up to N, across regions, named and tagged by team,
application and environment (accounts_app/simulator/demo_estate.py). `make run` then
serves it; list its regions in KVSTORE_REGIONS so that the sync reads them all."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from accounts_app import roles
from accounts_app.simulator.demo_estate import BIG_ESTATE_REGIONS, bigger_estate
from accounts_app.simulator.state import StateStore

# Where `make run` (scripts/run_demo.py) keeps the simulator's state.
DEMO_STATE = Path(settings.BASE_DIR) / ".simulator-state.json"

DEMO_USERS = [
    ("requester", [roles.REQUESTERS], False),
    ("approver", [roles.APPROVERS], False),
    # RoleRepl needs two distinct approvers by default.
    ("approver2", [roles.APPROVERS], False),
    ("auditor", [roles.AUDITORS], False),
    ("admin", [], True),
]


class Command(BaseCommand):
    help = "Create the demo users with the password in DEMO_PASSWORD."

    def add_arguments(self, parser):
        parser.add_argument(
            "--instances",
            type=int,
            default=0,
            help="also write the simulator's state with this many instances (e.g. 300)",
        )
        parser.add_argument("--state", type=Path, default=DEMO_STATE)

    def handle(self, *args, **options):
        if options["instances"]:
            self.write_estate(options["instances"], options["state"])
        password = settings.DEMO_PASSWORD
        if not password:
            raise CommandError("Set DEMO_PASSWORD to the password the demo users should have.")
        User = get_user_model()
        for username, group_names, is_superuser in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "is_superuser": is_superuser,
                    "is_staff": is_superuser,
                    "email": f"{username}@example.com",
                },
            )
            user.set_password(password)
            user.is_active = True
            user.save()
            user.groups.set(Group.objects.filter(name__in=group_names))
            verb = "created" if created else "updated"
            self.stdout.write(f"{verb} demo user {username}")

    def write_estate(self, count: int, path: Path) -> None:
        if count < 1:
            raise CommandError("--instances must be 1 or more.")
        StateStore(path, seed=lambda: bigger_estate(count)).reset()
        regions = ",".join(BIG_ESTATE_REGIONS)
        self.stdout.write(
            f"wrote {max(count, 10)} instances to {path}; sync them all with "
            f"KVSTORE_REGIONS={regions}"
        )
