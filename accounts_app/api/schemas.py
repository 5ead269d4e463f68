"""What the API's bodies look like: the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema
from pydantic import BaseModel, SecretStr

from accounts_app.models import AccountRequest


class Out(BaseModel):
    """A body the API answers with. Plain pydantic, not ninja's Schema: the views hand
    over dicts (api/present.py), and a Schema wraps every dict of a list in a getter
    that reads each field through Python, about a tenth of each list's time
    (docs/benchmarks.md, eighth round). The OpenAPI document is the same.
    The bodies the API reads stay Schemas."""


class FieldError(Out):
    code: str = Field(description="Stable: the Alibaba error code where one exists")
    rule: str = Field(description="The rule broken (accounts_app/rules.py key)")
    message: str = Field(description="In the language of Accept-Language")


class PreflightCheck(Out):
    key: str
    status: Literal["ok", "blocked", "warning"]
    message: str


class Preflight(Out):
    can_proceed: bool
    live: bool
    note: str
    checks: list[PreflightCheck]


class InstanceCheck(Out):
    instance_id: str
    status: Literal["ok", "blocked", "warning"]
    reason: str
    preflight: Preflight | None


class Error(Out):
    code: str
    message: str
    errors: dict[str, list[FieldError]] | None = None
    status: str | None = Field(None, description="409: the request's current state")
    preflight: Preflight | None = None
    instances: list[InstanceCheck] | None = Field(
        None, description="A fleet request refused: each instance's pre-flight"
    )


# --- Instances ----------------------------------------------------------------


class InstanceOut(Out):
    instance_id: str
    name: str
    region_id: str
    engine_version: str
    architecture_type: str
    edition_type: str
    instance_type: str
    status: str
    instance_class: str
    connection_domain: str
    port: int | None
    vpc_auth_mode: str
    password_free: bool
    account_count: int | None
    is_gone: bool
    synced_at: datetime
    blockers: list[str]


class InstancePage(Out):
    items: list[InstanceOut]
    next_cursor: str | None


class LiveAccount(Out):
    account_name: str
    account_status: str
    account_type: str
    account_description: str
    privilege: str


class InstanceDetail(Out):
    instance: InstanceOut
    accounts: list[LiveAccount] | None
    accounts_error: Error | None
    preflight: Preflight | None


# --- Requests -----------------------------------------------------------------

RequestStatus = Literal[tuple(AccountRequest.Status.values)]  # type: ignore[valid-type]


class RequestIn(Schema):
    """The request form's fields; every one is checked by the form, all errors at once."""

    instance_id: str = ""
    instance_ids: list[str] = Field(
        default_factory=list,
        description="A fleet request: the same account on each of these instances "
        "(instead of instance_id)",
    )
    account_name: str = ""
    account_privilege: str = ""
    account_description: str = ""
    account_type: str = "Normal"
    justification: str = ""
    kind: str = Field(
        "create",
        description="create (the default), delete, privilege, reset_password, description, "
        "adopt or extend; all but adopt and extend on a fleet too (with instance_ids)",
    )
    expires_at: str = Field(
        "",
        description="A create, adopt or extend: when the account is deleted, ISO 8601 date "
        "(deleted as that day begins) or date-time; without an offset, in your time zone",
    )
    expires_in_days: int | None = Field(
        None, description="Instead of expires_at: the expiry, this many days from now"
    )


class DecisionIn(Schema):
    comment: str = ""


class ExecuteIn(Schema):
    # SecretStr: a traceback or a repr of the body shows asterisks, never the password.
    account_password: SecretStr = Field(
        SecretStr(""),
        description="Sent to CreateAccount, then forgotten: never stored, logged or echoed",
    )


class RequestOut(Out):
    id: int
    kind: str
    current_privilege: str
    instance_id: str
    region_id: str
    account_name: str
    account_privilege: str
    account_description: str
    account_type: str
    justification: str
    status: RequestStatus
    requester: str
    approvals_required: int
    created_at: datetime
    approved_at: datetime | None
    finished_at: datetime | None
    alibaba_request_id: str
    error_code: str
    error_message: str
    fleet_size: int = Field(0, description="How many instances a fleet request names; 0: one")
    expires_at: datetime | None = Field(
        None,
        description="A create or adopt: when the account is deleted (moved by extensions); "
        "an extend: the new expiry asked",
    )
    overdue: bool = Field(
        False, description="The account's expiry has passed and it is not deleted yet"
    )


class RequestPage(Out):
    items: list[RequestOut]
    next_cursor: int | None


class DecisionOut(Out):
    approver: str
    verdict: Literal["approve", "reject"]
    comment: str
    created_at: datetime


class TimelineEvent(Out):
    seq: int
    created_at: datetime
    actor: str
    action: str
    outcome: str
    comment: str
    message_id: str
    message_params: dict
    message: str
    error_code: str
    alibaba_request_id: str


class Actions(Out):
    """What the caller's user may do now (policy.request_actions), whatever the token's scopes."""

    decide: bool
    cancel: bool
    execute: bool
    reconcile: bool


class FleetTargetOut(Out):
    instance_id: str
    region_id: str
    status: Literal["waiting", "creating", "done", "failed", "unknown"]
    attempts: int
    error_code: str
    error_message: str
    alibaba_request_id: str
    finished_at: datetime | None


class FleetProgressOut(Out):
    total: int
    done: int
    failed: int
    unknown: int


class RequestDetail(RequestOut):
    decisions: list[DecisionOut]
    timeline: list[TimelineEvent]
    actions: Actions
    targets: list[FleetTargetOut] = Field(
        default_factory=list, description="A fleet request's instances and their outcomes"
    )
    progress: FleetProgressOut | None = None


class ExecuteOut(Out):
    created: bool
    request: RequestDetail
    error: Error | None
    ran: int | None = Field(None, description="A fleet request: the instances this call ran")


# --- Audit --------------------------------------------------------------------


class AuditEventOut(Out):
    seq: int
    created_at: datetime
    actor_name: str
    action: str
    outcome: str
    request_id: int | None
    instance_id: str
    region_id: str
    account_name: str
    account_privilege: str
    alibaba_request_id: str
    error_code: str
    comment: str
    # A sentence the system wrote: its catalogue identifier and parameters (covered by the
    # audit chain), and the sentence in the caller's language (Accept-Language).
    message_id: str
    message_params: dict
    message: str
    source_ip: str | None


class AuditPage(Out):
    items: list[AuditEventOut]
    next_cursor: int | None


class CreatedAccount(Out):
    request_id: int
    instance_id: str
    region_id: str
    account_name: str
    account_privilege: str
    requester: str
    approvers: list[str]
    created_at: datetime | None
    alibaba_request_id: str
    expires_at: datetime | None = None
    overdue: bool = False


class AccountPage(Out):
    items: list[CreatedAccount]
    next_cursor: int | None
