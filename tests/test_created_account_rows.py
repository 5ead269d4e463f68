"""The created accounts' rows, written in Python (templatetags/rows.py), are the markup
the template loop they replace wrote (kept here as the reference), in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.template import Context, Template
from django.utils import translation

from accounts_app.models import Decision
from accounts_app.selectors import audit as audit_selectors
from accounts_app.services import workflow
from accounts_app.templatetags.rows import created_account_rows
from tests.builders import approved_request, origin_of
from tests.test_fleet_pages import PASSWORD, approved_fleet, run_page, signed_in

pytestmark = pytest.mark.django_db

TEMPLATE_LOOP = (Path(__file__).parent / "fixtures" / "created_account_rows.html").read_text()


def test_the_rows_are_the_template_loops_markup(estate, requester, approver, second_approver):
    fleet_row, _ = approved_fleet(estate, requester, approver)
    run_page(
        signed_in(requester),
        fleet_row.pk,
        account_password=PASSWORD,
        account_password_confirm=PASSWORD,
    )
    single = approved_request(requester, approver, name="app_single")
    workflow.request_execute(
        request_id=single.pk, user=requester, account_password=PASSWORD, origin=origin_of(requester)
    )
    Decision.objects.create(
        request=single, approver=second_approver, requester_id=requester.pk, verdict="approve"
    )
    single.account_description = "for <reports> & 'ops'"
    single.save(update_fields=["account_description"])
    rows, _ = audit_selectors.created_accounts(size=50)
    assert {row.is_fleet for row in rows} == {True, False}
    for language in ("en", "zh-hans"):
        with translation.override(language):
            expected = Template(TEMPLATE_LOOP).render(Context({"rows": rows}))
            written = created_account_rows(rows)
        assert squeezed(written) == squeezed(expected)
    assert written.count("<tr") == 4  # three instances of the fleet, one request


def squeezed(markup: str) -> str:
    return re.sub(r">\s+<", "><", markup.strip())
