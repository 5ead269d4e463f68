"""manage.py create_api_token USERNAME --scopes read,request --expires-in-days 90 [--name NAME]

For the service accounts automation uses. Prints the token once: only its digest is kept.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts_app.services import tokens


class Command(BaseCommand):
    help = "Create a personal API token for a user and print it (once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--scopes", required=True, help=f"comma-separated, of: {','.join(tokens.SCOPES)}"
        )
        parser.add_argument("--expires-in-days", type=int, default=90)
        parser.add_argument("--name", default="")

    def handle(self, *args, username, scopes, expires_in_days, name, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        if not 1 <= expires_in_days <= settings.API_TOKEN_MAX_DAYS:
            raise CommandError(f"--expires-in-days: 1 to {settings.API_TOKEN_MAX_DAYS}.")
        try:
            created = tokens.token_create(
                user=user,
                name=name or f"{username} (command line)",
                scopes=scopes,
                expires_in_days=expires_in_days,
            )
        except tokens.InvalidScopes as error:
            raise CommandError(f"Unknown scopes: {error}. Choose from {tokens.SCOPES}.") from error
        self.stderr.write(
            f"Token #{created.token.pk} {created.token.name!r} for {username}, scopes "
            f"{created.token.scopes}, expires {created.token.expires_at:%Y-%m-%d}. "
            "It is shown once:"
        )
        self.stdout.write(created.secret)
