"""Rows to the API's bodies (schemas.py): the same facts the pages show."""

from __future__ import annotations

from accounts_app import policy
from accounts_app.models import AccountRequest, AuditEvent, Instance
from accounts_app.selectors.instances import blocker_messages


def instance(row: Instance) -> dict:
    fields = (
        "instance_id name region_id engine_version architecture_type edition_type "
        "instance_type status instance_class connection_domain port vpc_auth_mode "
        "account_count is_gone synced_at"
    ).split()
    return {
        **{name: getattr(row, name) for name in fields},
        "password_free": row.password_free,
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
        "error_code error_message kind current_privilege"
    ).split()
    return {
        "id": row.pk,
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
            "execute": actions.execute,
            "reconcile": actions.reconcile,
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
        "error_code": event.error_code,
        "alibaba_request_id": event.alibaba_request_id,
    }


AUDIT_FIELDS = (
    "seq created_at actor_name action outcome request_id instance_id region_id account_name "
    "account_privilege alibaba_request_id error_code comment source_ip"
).split()


def audit_event(event: AuditEvent) -> dict:
    return {name: getattr(event, name) for name in AUDIT_FIELDS}


def created_account(row: AccountRequest) -> dict:
    return {
        "request_id": row.pk,
        "instance_id": row.instance.instance_id,
        "region_id": row.instance.region_id,
        "account_name": row.account_name,
        "account_privilege": row.account_privilege,
        "requester": row.requester.get_username(),
        "approvers": [decision.approver.get_username() for decision in row.approvals],
        "created_at": row.finished_at,
        "alibaba_request_id": row.alibaba_request_id,
    }
