"""Fill the Instance table from DescribeInstances (run it from cron, e.g. every 15 minutes)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts_app.audit import Origin
from accounts_app.services.inventory import sync_instances


class Command(BaseCommand):
    help = (
        "Sync the instance list from Alibaba Cloud (every region of KVSTORE_REGIONS, or "
        "those given). Exits with status 1 when a region could not be listed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--region",
            action="append",
            dest="regions",
            metavar="REGION_ID",
            help="Sync only this region (repeatable).",
        )

    def handle(self, *args, regions: list[str] | None = None, **options):
        report = sync_instances(origin=Origin.system("sync_instances"), regions=regions)
        self.stdout.write(
            f"Synced {report.seen} instances in {len(report.regions)} regions: "
            f"{report.created} new, {report.updated} changed, {report.unchanged} unchanged, "
            f"{report.gone} marked gone."
        )
        for key, reason in report.failures.items():
            self.stderr.write(f"FAILED {key}: {reason}")
        if report.failed_regions:
            # The rows of a failed region were kept as they were: say so, and fail for cron.
            raise CommandError(
                f"{len(report.failed_regions)} region(s) could not be listed and kept their "
                f"previous data: {', '.join(report.failed_regions)}."
            )
        if report.failures:
            self.stdout.write(
                self.style.WARNING(
                    f"{len(report.failures)} instance(s) could not be described and kept "
                    "their previous data."
                )
            )
        else:
            self.stdout.write(self.style.SUCCESS("Done."))
