"""What a sync of the inventory did, in one sentence for the user."""

from __future__ import annotations

from django.utils.translation import gettext as _

from accounts_app.services.inventory import SyncReport


def sync_summary(report: SyncReport) -> str:
    counts = {
        "seen": report.seen,
        "created": report.created,
        "updated": report.updated,
        "gone": report.gone,
    }
    synced = (
        _("Synced %(seen)s instances: %(created)s new, %(updated)s changed, %(gone)s gone.")
        % counts
    )
    if report.ok:
        return synced
    failed = "; ".join(f"{key}: {reason}" for key, reason in report.failures.items())
    return _("%(synced)s These failed and keep their previous data: %(failed)s") % {
        "synced": synced,
        "failed": failed,
    }
