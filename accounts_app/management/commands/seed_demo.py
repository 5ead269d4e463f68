"""Create the demo users (idempotent): requester, approver, approver2, auditor, admin."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from accounts_app import roles

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

    def handle(self, *args, **options):
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
