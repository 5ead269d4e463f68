"""Chat channels for deployment scripts: add, list, remove. Credentials are shown masked."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts_app.chat.models import ChatChannel
from accounts_app.services.chat import chat_channel_add, chat_channel_remove


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Command(BaseCommand):
    help = "Add, list or remove the chat channels notified of requests."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="add a channel")
        add.add_argument("--name", required=True)
        add.add_argument("--kind", required=True, choices=ChatChannel.Kind.values)
        add.add_argument("--url", required=True, help="the webhook URL (a credential)")
        add.add_argument("--secret", default="", help="the signing secret (DingTalk, Feishu)")
        add.add_argument("--language", default="en", choices=ChatChannel.Language.values)
        add.add_argument("--events", type=_comma_list, default=[], help="default: every event")
        add.add_argument("--regions", type=_comma_list, default=[], help="default: every region")
        actions.add_parser("list", help="list the channels, credentials masked")
        remove = actions.add_parser("remove", help="remove a channel")
        remove.add_argument("name")

    def handle(self, *args, action, **options):
        if action == "add":
            try:
                channel = chat_channel_add(
                    name=options["name"],
                    kind=options["kind"],
                    url=options["url"],
                    secret=options["secret"],
                    language=options["language"],
                    events=options["events"],
                    regions=options["regions"],
                )
            except ValidationError as error:
                raise CommandError("; ".join(error.messages)) from None
            self.stdout.write(f"added {channel.name} ({channel.kind}) {channel.masked_url}")
        elif action == "list":
            for channel in ChatChannel.objects.all():
                self.stdout.write(
                    "\t".join(
                        [
                            channel.name,
                            channel.kind,
                            channel.masked_url,
                            channel.masked_secret or "-",
                            channel.language,
                            ",".join(channel.events) or "all events",
                            ",".join(channel.regions) or "all regions",
                        ]
                    )
                )
        elif not chat_channel_remove(name=options["name"]):
            raise CommandError(f"no channel named {options['name']}")
        else:
            self.stdout.write(f"removed {options['name']}")
