"""A change followed to its end, as a task: after DeleteAccount, GrantAccountPrivilege,
ResetAccountPassword or ModifyAccountDescription answers, the account stays
``Unavailable`` for about a minute while Alibaba applies it (a deleted one stays listed
meanwhile). The request is done but "settling" (``settling_since``) until DescribeAccounts
shows the account ``Available`` again, or gone for a deletion; then the accounts the
instance lists are kept (KnownAccount) as the final state, and the request's page says so.

Each look is one DescribeAccounts of the instance, on the task engine, deferred with a
growing wait (FOLLOW_WAITS) and bounded: after the last look the request stays settling
and the next account sweep, which reads the same instance, settles it
(drift.record_accounts). A look that fails (throttled, the breaker open) counts as one
that saw nothing. Idempotent: a look at a settled request does nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.tasks import TaskContext, task
from django.utils import timezone

from accounts_app.alibaba.errors import AlibabaApiError
from accounts_app.audit import Origin
from accounts_app.models import AccountRequest
from accounts_app.services import drift
from accounts_app.services.breaker import get_guarded_client

logger = logging.getLogger(__name__)

Kind = AccountRequest.Kind
# The kinds whose call leaves the account Unavailable (an adoption calls nothing).
FOLLOWED = frozenset({Kind.DELETE, Kind.PRIVILEGE, Kind.RESET_PASSWORD, Kind.DESCRIPTION})
# Seconds before each look: a change takes about a minute (the simulator's activation
# delay; Alibaba's pages say "a while"), so the first look comes after 15 s and the
# waits grow to two minutes; seven looks span about six minutes.
FOLLOW_WAITS = (15, 15, 30, 60, 60, 120, 120)


def follow_later(account_request: AccountRequest) -> None:
    """Queue the first look, once the transition that marked it settling commits. On an
    engine that cannot defer (the immediate backend) there is no look: the sweep settles
    it."""
    if account_request.kind not in FOLLOWED:
        return
    if not follow_account_change.get_backend().supports_defer:
        return

    def enqueue():
        _enqueue(account_request.pk, attempt=1)

    transaction.on_commit(enqueue, robust=True)


def _enqueue(request_id: int, *, attempt: int) -> None:
    wait = timedelta(seconds=FOLLOW_WAITS[attempt - 1])
    follow_account_change.using(run_after=timezone.now() + wait).enqueue(
        request_id=request_id, attempt=attempt
    )


def look(*, request_id: int, client=None) -> bool:
    """One look at a settling request: True once it has settled (now or before)."""
    account_request = AccountRequest.objects.select_related("instance").get(pk=request_id)
    if account_request.settling_since is None:
        return True
    instance = account_request.instance
    accounts = (client or get_guarded_client()).describe_accounts(
        region_id=instance.region_id, instance_id=instance.instance_id
    )
    drift.record_accounts(
        instance=instance, accounts=accounts, origin=Origin.system("follow_account_change")
    )
    return not AccountRequest.objects.filter(pk=request_id, settling_since__isnull=False).exists()


@task(takes_context=True)
def follow_account_change(context: TaskContext, *, request_id: int, attempt: int = 1) -> dict:
    try:
        settled = look(request_id=request_id)
    except AlibabaApiError as error:
        logger.warning("following request %s: DescribeAccounts failed: %s", request_id, error.code)
        settled = False
    if not settled and attempt < len(FOLLOW_WAITS):
        _enqueue(request_id, attempt=attempt + 1)
    elif not settled:
        logger.warning(
            "request %s still settling after %s looks: the next sweep settles it",
            request_id,
            attempt,
        )
    return {"settled": settled, "looks": attempt}
