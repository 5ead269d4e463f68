"""One builder per state a test starts from.

- submitted_request / approved_request go through the workflow services, pre-flight
  included: they need the simulator's estate (the `estate` fixture).
- request_row writes the row as the workflow would have left it in a given state,
  with no call to the simulator: for tests about reading, listing and authorizing.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts_app.audit import Origin
from accounts_app.models import AccountRequest, Instance
from accounts_app.services import workflow
from tests.demo_instances import HEALTHY

Status = AccountRequest.Status

# The states a request reaches only after it was approved, and those that ended it.
APPROVED_ONCE = (
    Status.APPROVED,
    Status.EXECUTING,
    Status.CREATED,
    Status.FAILED,
    Status.NEEDS_RECONCILIATION,
    Status.EXPIRED,
    Status.CANCELLED,
)
FINISHED = (Status.REJECTED, Status.CANCELLED, Status.EXPIRED, Status.CREATED, Status.FAILED)


def instance_row(instance_id: str, **fields) -> Instance:
    """A healthy 6.0 standard instance in the inventory, as a sync would have written it."""
    defaults = {
        "region_id": "cn-hangzhou",
        "engine_version": "6.0",
        "architecture_type": "standard",
        "status": "Normal",
        "synced_at": timezone.now(),
    }
    return Instance.objects.create(instance_id=instance_id, **{**defaults, **fields})


def request_form_data(**overrides) -> dict:
    """What the request form posts for an account on the healthy demo instance."""
    return {
        "instance_id": HEALTHY,
        "account_name": "app_reader",
        "account_privilege": "RoleReadOnly",
        "account_description": "reporting",
        "account_type": "Normal",
        "justification": "Nightly reports.",
        **overrides,
    }


def origin_of(user) -> Origin:
    return Origin(actor=user, actor_name=user.username, source_ip="127.0.0.1")


def submitted_request(
    requester,
    *,
    instance_id: str = HEALTHY,
    name: str = "app_reader",
    privilege: str = "RoleReadOnly",
    client=None,
    **fields,
) -> AccountRequest:
    """Submitted through the workflow; ``fields`` override the other form values."""
    values = {
        "account_description": "reporting",
        "account_type": "Normal",
        "justification": "Nightly reports need read access.",
        **fields,
    }
    return workflow.request_submit(
        requester=requester,
        instance=Instance.objects.get(instance_id=instance_id),
        account_name=name,
        account_privilege=privilege,
        origin=origin_of(requester),
        client=client,
        **values,
    )


def approve(account_request: AccountRequest, approver, comment: str = "ok") -> AccountRequest:
    return workflow.request_approve(
        request_id=account_request.pk,
        approver=approver,
        comment=comment,
        origin=origin_of(approver),
    )


def approved_request(requester, approver, *, name: str = "app_reader") -> AccountRequest:
    account_request = submitted_request(requester, name=name)
    approve(account_request, approver)
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED
    return account_request


def request_row(
    requester,
    instance: Instance,
    name: str,
    *,
    status: str = Status.PENDING,
    privilege: str = "RoleReadOnly",
    approvals_required: int = 1,
    **fields,
) -> AccountRequest:
    """A request row in `status`, timestamps included, written without the workflow."""
    now = timezone.now()
    defaults = {
        "account_description": "reporting",
        "justification": "reports",
        "approved_at": now - timedelta(minutes=5) if status in APPROVED_ONCE else None,
        "executing_since": now if status == Status.EXECUTING else None,
        "finished_at": now if status in FINISHED else None,
    }
    return AccountRequest.objects.create(
        requester=requester,
        instance=instance,
        account_name=name,
        account_privilege=privilege,
        status=status,
        approvals_required=approvals_required,
        **{**defaults, **fields},
    )
