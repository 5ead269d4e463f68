"""GET /api/v1/audit/events and /api/v1/accounts: the audit pages' reads, for auditors."""

# No `from __future__ import annotations`: django-ninja reads the annotations at import.

from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema

from accounts_app import policy
from accounts_app.api import present
from accounts_app.api.auth import deny, require_scope
from accounts_app.api.errors import ApiError, form_errors
from accounts_app.api.schemas import AccountPage, AuditPage, Error
from accounts_app.forms.audit import AuditFilterForm
from accounts_app.selectors import audit as audit_selectors
from accounts_app.selectors.audit import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CreatedFilter

router = Router(tags=["audit"])
ERRORS = {400: Error, 401: Error, 403: Error, 429: Error}


def _auditor(request) -> None:
    require_scope(request, "audit")
    if not policy.may_view_everything(request.user):
        raise deny(request, "view_everything")


class EventQuery(Schema):
    date_from: str = ""
    date_to: str = ""
    actor: str = ""
    action: str = ""
    instance_id: str = ""
    account_name: str = ""
    outcome: str = ""
    q: str = ""
    cursor: int | None = None
    limit: int = DEFAULT_PAGE_SIZE


@router.get("/audit/events", response={200: AuditPage, **ERRORS})
def audit_events(request, query: Query[EventQuery]):
    """The audit page's filters; keyset pages, newest first (`cursor`: the last seq seen)."""
    _auditor(request)
    data = query.dict(exclude={"cursor", "limit"})
    data.update(before=query.cursor, size=query.limit)
    form = AuditFilterForm({name: value for name, value in data.items() if value is not None})
    if not form.is_valid():
        raise ApiError(400, "InvalidParameter", _("Check the filters."), errors=form_errors(form))
    page = audit_selectors.event_page(
        form.audit_filter(), before=form.cleaned_data["before"], size=form.page_size()
    )
    return {"items": [present.audit_event(e) for e in page.events], "next_cursor": page.older_than}


class AccountQuery(Schema):
    cursor: int | None = None  # how many accounts the pages before have given
    limit: int = DEFAULT_PAGE_SIZE


@router.get("/accounts", response={200: AccountPage, **ERRORS})
def created_accounts(request, query: Query[AccountQuery]):
    """Accounts created through the dashboard, one per instance (a fleet's too, also when
    some of its instances failed), newest first, with who approved them, as the created
    accounts page lists them (`cursor`: the `next_cursor` of the page before)."""
    _auditor(request)
    if not 1 <= query.limit <= MAX_PAGE_SIZE or (query.cursor or 0) < 0:
        raise ApiError(400, "InvalidParameter", _("Check the paging parameters."))
    start = query.cursor or 0
    rows, more = audit_selectors.created_account_slice(
        CreatedFilter(), start=start, size=query.limit
    )
    items = [present.created_account(row) for row in rows]
    return {"items": items, "next_cursor": start + len(rows) if more else None}
