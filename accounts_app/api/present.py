"""Rows to the API's bodies (schemas.py): the same facts the pages show."""

from __future__ import annotations

import json

from django.utils import timezone

from accounts_app import policy, vpc_auth
from accounts_app.audit.messages import render as render_message
from accounts_app.models import AccountRequest, AuditEvent, Instance
from accounts_app.selectors.api_pages import INSTANCE_COLUMNS
from accounts_app.selectors.audit import CreatedAccount, EventRow
from accounts_app.selectors.fleet import fleet_progress, fleet_targets
from accounts_app.selectors.instances import blocker_messages


def instance(row: Instance | tuple) -> dict:
    """An instance: a model, or a named tuple of api_pages.INSTANCE_COLUMNS."""
    return {
        **{name: getattr(row, name) for name in INSTANCE_COLUMNS},
        "password_free": vpc_auth.is_password_free(row.vpc_auth_mode),
        "blockers": blocker_messages(row),
    }


def preflight(result) -> dict | None:
    if result is None:
        return None
    return {
        "can_proceed": result.can_proceed,
        "live": result.live,
        "note": str(result.note),
        "checks": [
            {"key": check.key, "status": check.status, "message": str(check.message)}
            for check in result.checks
        ],
    }


def account_request(row: AccountRequest) -> dict:
    fields = (
        "account_name account_privilege account_description account_type justification "
        "status approvals_required created_at approved_at finished_at alibaba_request_id "
        "error_code error_message fleet_size kind current_privilege expires_at"
    ).split()
    return {
        "id": row.pk,
        "overdue": row.is_overdue(timezone.now()),
        "instance_id": row.instance.instance_id,
        "region_id": row.instance.region_id,
        "requester": row.requester.get_username(),
        **{name: getattr(row, name) for name in fields},
    }


def request_detail(user, row: AccountRequest, events) -> dict:
    actions = policy.request_actions(user, row)
    return {
        **account_request(row),
        "decisions": [
            {
                "approver": decision.approver.get_username(),
                "verdict": decision.verdict,
                "comment": decision.comment,
                "created_at": decision.created_at,
            }
            for decision in row.decisions.all()
        ],
        "timeline": [_timeline_event(event) for event in events],
        "actions": {
            "decide": actions.decide,
            "cancel": actions.cancel,
            "execute": actions.execute or actions.execute_fleet,
            "reconcile": actions.reconcile,
        },
        **(fleet(row) if row.is_fleet else {}),
    }


def fleet(row: AccountRequest) -> dict:
    """A fleet request's targets, and how far its runs got."""
    targets = fleet_targets(row)
    progress = fleet_progress(targets)
    return {
        "targets": [
            {
                "instance_id": target.instance.instance_id,
                "region_id": target.instance.region_id,
                **{
                    name: getattr(target, name)
                    for name in (
                        "status attempts error_code error_message alibaba_request_id finished_at"
                    ).split()
                },
            }
            for target in targets
        ],
        "progress": {
            "total": progress.total,
            "done": progress.done,
            "failed": progress.failed,
            "unknown": progress.unknown,
        },
    }


def _timeline_event(event: AuditEvent) -> dict:
    return {
        "seq": event.seq,
        "created_at": event.created_at,
        "actor": event.actor_name,
        "action": event.action,
        "outcome": event.outcome,
        "comment": event.comment,
        **_message(event),
        "error_code": event.error_code,
        "alibaba_request_id": event.alibaba_request_id,
    }


AUDIT_FIELDS = (
    "seq created_at actor_name action outcome request_id instance_id region_id account_name "
    "account_privilege alibaba_request_id error_code comment source_ip"
).split()


def audit_event(event: EventRow) -> dict:
    return {**{name: getattr(event, name) for name in AUDIT_FIELDS}, **_message(event)}


def _message(event: AuditEvent | EventRow) -> dict:
    """The system's message: its identifier and parameters as the chain covers them, and
    its sentence in the caller's language (Accept-Language)."""
    return {
        "message_id": event.message_id,
        "message_params": json.loads(event.message_params) if event.message_params else {},
        "message": render_message(event.message_id, event.message_params),
    }


def created_account(row: CreatedAccount) -> dict:
    """One account on one instance: a single request's, or one instance's of a fleet."""
    made = row.request
    return {
        "request_id": made.pk,
        "instance_id": row.instance.instance_id,
        "region_id": row.instance.region_id,
        "account_name": made.account_name,
        "account_privilege": made.account_privilege,
        "requester": made.requester.get_username(),
        "approvers": made.approver_names,
        "created_at": row.finished_at,
        "alibaba_request_id": row.alibaba_request_id,
        "expires_at": made.account_expires_at,
        "overdue": made.is_overdue(timezone.now()),
    }
