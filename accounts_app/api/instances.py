"""GET /api/v1/instances, /api/v1/instances/{instance_id}: the inventory, as on the pages."""

# No `from __future__ import annotations`: django-ninja reads the annotations at import.

from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema

from accounts_app.alibaba.errors import AlibabaApiError
from accounts_app.api import present
from accounts_app.api.auth import require_scope
from accounts_app.api.errors import ApiError, form_errors
from accounts_app.api.schemas import Error, InstanceDetail, InstancePage
from accounts_app.forms.instances import InstanceFilterForm
from accounts_app.models import Instance
from accounts_app.selectors import api_pages
from accounts_app.selectors import instances as instance_selectors
from accounts_app.services import inventory, workflow

router = Router(tags=["instances"])
ERRORS = {400: Error, 401: Error, 403: Error, 404: Error, 429: Error}


class InstanceQuery(Schema):
    q: str = ""
    region: str = ""
    engine: str = ""
    architecture: str = ""
    status: str = ""
    gone: bool = False
    cursor: str = ""
    limit: int = api_pages.DEFAULT_LIMIT


def _limit(limit: int) -> int:
    if not 1 <= limit <= api_pages.MAX_LIMIT:
        message = _("Ask for 1 to %(max)s items.") % {"max": api_pages.MAX_LIMIT}
        raise ApiError(400, "InvalidParameter", message)
    return limit


@router.get("/instances", response={200: InstancePage, **ERRORS})
def instance_list(request, query: Query[InstanceQuery]):
    """The instances, with the instances page's filters; cursor pages in (region, ID) order."""
    require_scope(request, "read")
    form = InstanceFilterForm(
        query.dict(exclude={"cursor", "limit"}), choices=instance_selectors.filter_choices()
    )
    if not form.is_valid():
        raise ApiError(400, "InvalidParameter", _("Check the filters."), errors=form_errors(form))
    instances = instance_selectors.filtered_instances(form.instance_filter())
    rows, cursor = api_pages.instance_page(instances, after=query.cursor, limit=_limit(query.limit))
    return {"items": [present.instance(row) for row in rows], "next_cursor": cursor}


class PreflightQuery(Schema):
    account_name: str = ""
    account_privilege: str = ""


@router.get("/instances/{instance_id}", response={200: InstanceDetail, **ERRORS})
def instance_detail(request, instance_id: str, query: Query[PreflightQuery]):
    """One instance with its live accounts, and pre-flight for a proposed name and privilege."""
    require_scope(request, "read")
    instance = Instance.objects.filter(instance_id=instance_id).first()
    if instance is None:
        raise ApiError(404, "InvalidInstanceId.NotFound", _("No such instance."))
    accounts = error = None
    if not instance.is_gone:
        try:
            accounts = inventory.refresh_instance(instance).accounts
        except AlibabaApiError as api_error:
            error = {"code": api_error.code or "", "message": str(api_error.human_message)}
    preflight = None
    if query.account_name or query.account_privilege:
        preflight = workflow.preflight_for_form(
            instance_id=instance_id,
            account_name=query.account_name,
            privilege=query.account_privilege,
        )
    return {
        "instance": present.instance(instance),
        "accounts": [vars(account) for account in accounts] if accounts is not None else None,
        "accounts_error": error,
        "preflight": present.preflight(preflight),
    }
