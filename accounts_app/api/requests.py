"""/api/v1/requests: the approval workflow, through the same services and policy as the pages."""

# No `from __future__ import annotations`: django-ninja reads the annotations at import.

from django.utils.translation import gettext_lazy as _
from django.views.debug import SafeExceptionReporterFilter
from django.views.decorators.debug import sensitive_variables
from ninja import Header, Query, Router, Schema, Status

from accounts_app import policy, rules
from accounts_app.api import present
from accounts_app.api.auth import deny, origin_of, recent_enough_to_execute, require_scope
from accounts_app.api.errors import ApiError, field_error, form_errors
from accounts_app.api.schemas import (
    DecisionIn,
    Error,
    ExecuteIn,
    ExecuteOut,
    RequestDetail,
    RequestIn,
    RequestPage,
)
from accounts_app.forms.fleet import FleetRequestForm
from accounts_app.forms.requests import AccountRequestForm, DecisionForm
from accounts_app.models import AccountRequest
from accounts_app.selectors import api_pages
from accounts_app.selectors import requests as selectors
from accounts_app.services import fleet, idempotency, lifecycle, workflow

router = Router(tags=["requests"])
ERRORS = {400: Error, 401: Error, 403: Error, 404: Error, 429: Error}
TRANSITION_ERRORS = {**ERRORS, 409: Error}


def _not_found() -> ApiError:
    # The same answer for a request that does not exist and one the caller may not see.
    return ApiError(404, "NotFound", _("No such request."))


def _visible(request, pk: int, *, with_decisions: bool = False) -> AccountRequest:
    try:
        row = selectors.visible_request(request.user, pk, with_decisions=with_decisions)
    except AccountRequest.DoesNotExist:
        row = None
    if row is None:
        raise _not_found()
    return row


def _conflict(error: workflow.TransitionError, pk: int | None) -> ApiError:
    status = AccountRequest.objects.filter(pk=pk).values_list("status", flat=True).first()
    blocked = error.preflight is not None and not error.preflight.can_proceed
    return ApiError(
        409,
        "PreflightFailed" if blocked else "InvalidState",
        error.message,
        status=status,
        preflight=present.preflight(error.preflight),
    )


def _detail(request, pk: int) -> dict:
    row = selectors.visible_request(request.user, pk, with_decisions=True)
    return present.request_detail(request.user, row, row.timeline)


class RequestQuery(Schema):
    status: str = ""
    instance_id: str = ""
    mine: bool = False
    cursor: int | None = None
    limit: int = api_pages.DEFAULT_LIMIT


@router.get("/requests", response={200: RequestPage, **ERRORS})
def request_list(request, query: Query[RequestQuery]):
    """The requests you may see (yours, or every one for Approvers and Auditors), newest first."""
    require_scope(request, "read")
    if query.status and query.status not in AccountRequest.Status.values:
        raise ApiError(400, "InvalidParameter", _("Unknown status."))
    if not 1 <= query.limit <= api_pages.MAX_LIMIT or (query.cursor or 0) < 0:
        raise ApiError(400, "InvalidParameter", _("Check the paging parameters."))
    rows, cursor = api_pages.request_page(
        request.user,
        status=query.status,
        instance_id=query.instance_id,
        mine=query.mine,
        before=query.cursor,
        limit=query.limit,
    )
    return {"items": [present.account_request(row) for row in rows], "next_cursor": cursor}


@router.post("/requests", response={201: RequestDetail, **TRANSITION_ERRORS})
def request_create(request, body: RequestIn):
    """Submit a request: the request form's checks and messages, every field's errors at once."""
    require_scope(request, "request")
    if not policy.may_request(request.user):
        raise deny(request, "request_account")
    fleet_request = bool(body.instance_ids)
    form = (FleetRequestForm if fleet_request else AccountRequestForm)(body.dict())
    if not form.is_valid():
        raise ApiError(
            400, "InvalidParameter", _("Correct the fields below."), errors=form_errors(form)
        )
    submit = fleet.fleet_submit if fleet_request else lifecycle.request_submit
    try:
        row = submit(requester=request.user, origin=origin_of(request), **form.submission())
    except fleet.FleetRefused as error:
        raise _fleet_refused(error) from error
    except workflow.TransitionError as error:
        raise _conflict(error, None) from error
    return Status(201, _detail(request, row.pk))


def _fleet_refused(error: fleet.FleetRefused) -> ApiError:
    """409 with each instance's pre-flight, so the caller can drop the blocked ones."""
    return ApiError(
        409,
        "PreflightFailed" if error.checks else "InvalidParameter",
        error.message,
        instances=[
            {
                "instance_id": check.instance.instance_id,
                "status": check.status,
                "reason": str(check.reason),
                "preflight": present.preflight(check.preflight),
            }
            for check in error.checks
        ],
    )


@router.get("/requests/{id}", response={200: RequestDetail, **ERRORS})
def request_detail(request, id: int):
    """One request with its decisions, its timeline (audit events) and what you may do now."""
    require_scope(request, "read")
    _visible(request, id)
    return _detail(request, id)


def _decide(request, pk: int, body: DecisionIn, service):
    require_scope(request, "approve")
    row = _visible(request, pk)
    if not policy.may_approve(request.user):
        raise deny(request, "approve_request")
    if not policy.may_decide_on(request.user, row):
        raise deny(request, "four eyes", _("Nobody may approve or reject their own request."))
    form = DecisionForm(body.dict())
    if not form.is_valid():
        raise ApiError(400, "InvalidParameter", _("The comment is too long."))
    try:
        service(
            request_id=pk,
            approver=request.user,
            comment=form.cleaned_data["comment"],
            origin=origin_of(request),
        )
    except workflow.TransitionError as error:
        raise _conflict(error, pk) from error
    return _detail(request, pk)


@router.post("/requests/{id}/approve", response={200: RequestDetail, **TRANSITION_ERRORS})
def request_approve(request, id: int, body: DecisionIn):
    """Approve (four eyes: never your own request; RoleRepl needs two Approvers)."""
    return _decide(request, id, body, workflow.request_approve)


@router.post("/requests/{id}/reject", response={200: RequestDetail, **TRANSITION_ERRORS})
def request_reject(request, id: int, body: DecisionIn):
    """Reject, saying why in `comment`."""
    if not body.comment.strip():
        message = _("Say why you reject the request: the requester will read it.")
        raise ApiError(
            400,
            "InvalidParameter",
            message,
            errors={"comment": [field_error("comment", "required", message)]},
        )
    return _decide(request, id, body, workflow.request_reject)


@router.post("/requests/{id}/cancel", response={200: RequestDetail, **TRANSITION_ERRORS})
def request_cancel(request, id: int):
    """Cancel your own request while it is pending or approved."""
    require_scope(request, "request")
    row = _visible(request, id)
    if not policy.owns(request.user, row):
        raise deny(request, "the requester")
    try:
        workflow.request_cancel(request_id=id, user=request.user, origin=origin_of(request))
    except workflow.TransitionError as error:
        raise _conflict(error, id) from error
    return _detail(request, id)


@router.post("/requests/{id}/reconcile", response={200: RequestDetail, **TRANSITION_ERRORS})
def request_reconcile(request, id: int):
    """Ask DescribeAccounts whether an account of unknown outcome exists."""
    require_scope(request, "execute", "approve")
    row = _visible(request, id)
    if not policy.may_reconcile_on(request.user, row):
        raise deny(request, "approve_request")
    try:
        workflow.reconcile_request(request_id=id, origin=origin_of(request))
    except workflow.TransitionError as error:
        raise _conflict(error, id) from error
    return _detail(request, id)


class _HideEveryVariable(SafeExceptionReporterFilter):
    """An error report of an execute call shows no frame's variables: one holds the body."""

    def get_traceback_frame_variables(self, request, tb_frame):
        return [("(hidden)", self.cleansed_substitute)]


EXECUTE_RESPONSES = {200: ExecuteOut, **TRANSITION_ERRORS, 422: Error}


@router.post("/requests/{id}/execute", response=EXECUTE_RESPONSES)
@sensitive_variables()
def request_execute(
    request,
    id: int,
    body: ExecuteIn,
    idempotency_key: str = Header(..., alias="Idempotency-Key", min_length=1, max_length=255),
):
    """Create the account with the password in the body: sent to CreateAccount, then forgotten.

    The same Idempotency-Key returns the first outcome without calling CreateAccount
    again; with a different body (the request, or any field but the password) it is a 422.
    """
    request.exception_reporter_filter = _HideEveryVariable()
    require_scope(request, "execute")
    row = _visible(request, id)
    if not (policy.owns(request.user, row) and policy.may_request(request.user)):
        raise deny(request, "the requester")
    if not recent_enough_to_execute(request):
        raise deny(
            request,
            "a recent token",
            _("Execute needs a recent proof of identity: a newer token, or sign in again."),
        )
    password = body.account_password.get_secret_value() if row.needs_password else ""
    violations = rules.validate("AccountPassword", password) if row.needs_password else []
    if violations:
        errors = [field_error("account_password", v.key, v.message) for v in violations]
        raise ApiError(
            400,
            "InvalidParameter",
            _("Correct the fields below."),
            errors={"account_password": errors},
        )
    claim = idempotency.idempotency_claim(
        user=request.user, key=idempotency_key, account_request=row, body=body.dict()
    )
    if not claim.first:
        return _repeat(claim, id)
    try:
        status, answer = _execute(request, id, password)
    except BaseException:
        idempotency.idempotency_release(record=claim.record)
        raise
    idempotency.idempotency_store(record=claim.record, status_code=status, response=answer)
    return Status(status, answer)


def _repeat(claim: idempotency.Claim, pk: int):
    if not claim.same_body:
        raise ApiError(
            422,
            "IdempotencyKeyReused",
            _("This Idempotency-Key was used with a different request or body."),
        )
    if claim.record.status_code is None:
        status = AccountRequest.objects.filter(pk=pk).values_list("status", flat=True).first()
        raise ApiError(
            409,
            "IdempotencyKeyInProgress",
            _("A call with this Idempotency-Key is still running: ask again shortly."),
            status=status,
        )
    return Status(claim.record.status_code, claim.record.response)


@sensitive_variables()
def _execute(request, pk: int, password: str) -> tuple[int, dict]:
    if AccountRequest.objects.filter(pk=pk, fleet_size__gt=0).exists():
        return _execute_fleet(request, pk, password)
    try:
        result = lifecycle.request_execute(
            request_id=pk, user=request.user, account_password=password, origin=origin_of(request)
        )
    except workflow.TransitionError as error:
        conflict = _conflict(error, pk)
        return 409, {"code": conflict.code, "message": conflict.message, **conflict.extra}
    error = None
    if result.error is not None:
        error = {"code": result.error.code or "", "message": str(result.error.human_message)}
    return 200, {
        "created": result.created,
        "request": _json_ready(_detail(request, pk)),
        "error": error,
    }


@sensitive_variables()
def _execute_fleet(request, pk: int, password: str) -> tuple[int, dict]:
    """Every waiting or failed instance, with the one password; the answer says each one's
    outcome (`request.targets`). Generated passwords are the pages' alone: an API answer
    never carries a password."""
    try:
        runs = fleet.fleet_execute(
            request_id=pk,
            user=request.user,
            password_for=lambda target: password,
            origin=origin_of(request),
        )
    except workflow.TransitionError as error:
        conflict = _conflict(error, pk)
        return 409, {"code": conflict.code, "message": conflict.message, **conflict.extra}
    detail = _json_ready(_detail(request, pk))
    created = detail["status"] == AccountRequest.Status.CREATED
    error = None
    if not created:
        progress = detail["progress"]
        error = {
            "code": "NotEveryInstanceCreated",
            "message": str(
                _("%(failed)s instances failed and %(unknown)s have an unknown outcome.")
                % {"failed": progress["failed"], "unknown": progress["unknown"]}
            ),
        }
    return 200, {"created": created, "request": detail, "error": error, "ran": len(runs)}


def _json_ready(answer: dict) -> dict:
    """Dates as ISO strings, so the answer can be kept as JSON for a repeat of the key."""
    return RequestDetail.model_validate(answer).model_dump(mode="json")
