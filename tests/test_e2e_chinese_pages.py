"""Every main page in Chinese, as each role sees it in Debian's Chromium: no English word
outside the allowlists of API values and product names (tests/i18n_support.py) and the
data on the page (IDs, names, what users typed). Issue 21, "Done when".
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts_app.models import AuditEvent
from accounts_app.services import workflow
from tests.builders import approve, approved_request, origin_of, submitted_request
from tests.conftest import cast_member, sign_in
from tests.demo_instances import HEALTHY, REPL_OK
from tests.i18n_support import english_words, visible_text
from tests.test_e2e_i18n import switch_language
from tests.test_i18n import data_strings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CORRELATION_ID = re.compile(r"\b[0-9a-f]{12}\b")

# The admin also lists other packages' models under their own labels, which they do not
# translate (django-axes, allauth's MFA, django-tasks-db), and Django 6.1 writes two
# strings untranslated (the search icon's alt="Search", "- Select an option -").
ADMIN_PACKAGES_WORDS = set(
    "Axes Access attempts failures logs Authenticators Tasks Database Backend Task Results "
    "Django Search Select an option".split()
)


@pytest.fixture
def scene(estate, make_user):
    """Requests in several states, typed in Chinese, and the cast of every role."""
    users = {part: cast_member(make_user, part) for part in ("requester", "approver")}
    users["auditor"] = cast_member(make_user, "auditor")
    users["admin"] = make_user("root", superuser=True)
    requester, approver = users["requester"], users["approver"]
    chinese = {"justification": "报表需要只读权限。", "account_description": "报表"}
    pending = submitted_request(requester, name="report_ro", **chinese)
    approved = approved_request(requester, approver, name="app_reader")
    rejected = submitted_request(requester, instance_id=REPL_OK, name="etl_rw", **chinese)
    workflow.request_reject(
        request_id=rejected.pk,
        approver=approver,
        comment="不需要写权限。",
        origin=origin_of(approver),
    )
    approve(submitted_request(requester, name="bi_ro", **chinese), approver, comment="好的")
    # A refusal, for the audit log to say in Chinese.
    client = Client()
    client.force_login(requester)
    assert client.get("/audit/").status_code == 403
    return {"users": users, "pending": pending, "approved": approved, "rejected": rejected}


def pages_of(role: str, scene) -> list[str]:
    pending, approved, rejected = scene["pending"], scene["approved"], scene["rejected"]
    common = ["/", "/instances/", f"/instances/{HEALTHY}/", "/preferences/tokens/"]
    return (
        common
        + {
            "requester": [
                "/requests/new/",
                f"/requests/{pending.pk}/",
                f"/requests/{rejected.pk}/",
                f"/requests/{approved.pk}/execute/",
                "/audit/",  # refused: the 403 page, and a denial in the audit log
            ],
            "approver": ["/approvals/", f"/requests/{pending.pk}/", "/audit/"],
            "auditor": [
                "/audit/",
                "/audit/?hide_sign_ins=on",
                "/audit/accounts/",
                "/audit/accounts/?q=nothing-matches",
                f"/requests/{rejected.pk}/",
            ],
            "admin": [
                "/admin/",
                "/admin/accounts_app/instance/",
                "/admin/accounts_app/accountrequest/",
                "/admin/accounts_app/decision/",
                "/admin/accounts_app/auditevent/",
                "/admin/accounts_app/approvalpolicy/",
            ],
        }[role]
    )


@pytest.mark.parametrize("role", ["requester", "approver", "auditor", "admin"])
def test_every_main_page_is_chinese_for_each_role(live_server, page, scene, role):
    base = live_server.url
    sign_in(page, base, scene["users"][role].username)
    switch_language(page, "zh-hans", "Switch")
    data = data_strings()

    leaks = {}
    for path in pages_of(role, scene):
        page.goto(f"{base}{path}")
        assert page.locator("html").get_attribute("lang") == "zh-hans", path
        text = visible_text(page.content())
        # An error page's reference (its correlation ID, 12 hex digits) is data too.
        words = english_words(text, data | set(CORRELATION_ID.findall(text)))
        if path.startswith("/admin/"):
            words = [word for word in words if word not in ADMIN_PACKAGES_WORDS]
        if words:
            leaks[path] = sorted(set(words))

    assert not leaks, "English left: " + repr(leaks)
    if role == "auditor":
        # The log says what the system wrote in Chinese too (a sync summary, a denial).
        assert AuditEvent.objects.exclude(message_id="").exists()
