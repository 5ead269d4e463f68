"""Every main page in Debian's Chromium at a laptop's width (1366 px) and a phone's
(390 px), in English and in Chinese: nothing is wider than what contains it (a wide table
scrolls inside its card), the page is no wider than the window, and short labels (status
badges, buttons, table headings, the navigation) stay on one line."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from accounts_app.models import AccountRequest
from tests.builders import approve, approved_request, request_row, submitted_request
from tests.conftest import sign_in
from tests.demo_instances import HEALTHY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1366, 390)
LANGUAGES = ("en", "zh-hans")

# Elements wider than their parent, unless the parent scrolls or clips (a table in its
# .table-wrap); and one-line labels that took more than one line.
FIND_OVERFLOWS = """
() => {
  const found = [];
  const describe = (el) => {
    const classes = typeof el.className === "string" ? el.className.trim() : "";
    const id = el.id ? "#" + el.id : "";
    return el.tagName.toLowerCase() + id + (classes ? "." + classes.split(/\\s+/).join(".") : "");
  };
  const clips = (el) => {
    return ["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(el).overflowX);
  };
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    found.push("page " + document.documentElement.scrollWidth + " px wide");
  }
  for (const el of document.querySelectorAll("body *")) {
    const parent = el.parentElement;
    if (!parent || parent === document.body || clips(parent)) continue;
    const box = el.getBoundingClientRect(), outer = parent.getBoundingClientRect();
    if (box.width === 0 || getComputedStyle(el).position === "absolute") continue;
    if (box.right > outer.right + 1 || box.left < outer.left - 1) {
      found.push(describe(el) + " overflows " + describe(parent));
    }
  }
  if (window.innerWidth >= 1366) {
    // At a laptop's width every table fits its card: nothing to scroll sideways.
    for (const wrap of document.querySelectorAll(".table-wrap")) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        found.push(describe(wrap) + " scrolls: " + wrap.scrollWidth + " > " + wrap.clientWidth);
      }
    }
  }
  // Sentences in badges (a reason, a warning) may wrap; labels may not.
  const labels = [
    ".status", ".badge:not([data-reason]):not([data-warning])", "button", ".button",
    ".table th", ".nav a", ".tabs a",
  ].join(", ");
  for (const el of document.querySelectorAll(labels)) {
    const box = el.getBoundingClientRect();
    const line = parseFloat(getComputedStyle(el).lineHeight) || 20;
    if (box.height > 0 && box.height > 2 * line) {
      found.push(describe(el) + " wraps: " + el.textContent.trim());
    }
  }
  return found;
}
"""


@pytest.fixture
def estate_with_requests(estate, requester, approver, second_approver):
    """A request in each state the pages show."""
    approved_request(requester, approver)
    created = submitted_request(requester, name="app_done")
    approve(created, approver)
    AccountRequest.objects.filter(pk=created.pk).update(status=AccountRequest.Status.CREATED)
    submitted_request(requester, name="app_wait")
    submitted_request(second_approver, name="repl_sync", privilege="RoleReadOnly")
    rejected = request_row(requester, created.instance, "app_no", status="rejected")
    return {
        "approved": AccountRequest.objects.get(account_name="app_reader"),
        "created": created,
        "rejected": rejected,
    }


def pages_of(user: str, requests) -> list[str]:
    approved, created = requests["approved"], requests["created"]
    if user == "alice":
        return [
            reverse("dashboard"),
            reverse("request_list"),
            reverse("request_new"),
            reverse("request_detail", args=[approved.pk]),
            reverse("request_detail", args=[requests["rejected"].pk]),
            reverse("request_execute", args=[approved.pk]),
            reverse("request_execute_result", args=[created.pk]),
            reverse("instances"),
            reverse("instance_detail", args=[HEALTHY]),
            reverse("preferences"),
        ]
    return [
        reverse("dashboard"),
        f"{reverse('request_list')}?tab=all",
        reverse("approvals"),
        reverse("request_detail", args=[created.pk]),
        reverse("audit"),
        reverse("created_accounts"),
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_element_is_wider_than_its_container(live_server, page, estate_with_requests, language):
    base = live_server.url
    problems = []
    for user in ("alice", "bob"):
        sign_in(page, base, user)
        page.context.add_cookies(
            [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base}]
        )
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for path in pages_of(user, estate_with_requests):
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                assert page.locator("html").get_attribute("lang") == language
                problems += [f"{user} {width}px {path}: {p}" for p in page.evaluate(FIND_OVERFLOWS)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_long_connection_string_stays_inside_its_card(
    live_server, page, estate, requester, language
):
    from tests.builders import instance_row

    instance_id = "r-bp1longdomain0001"
    long_domain = instance_id + "-" + "x" * 40 + ".redis.rds.aliyuncs.com"
    # The page asks the API live: the long name is the simulator's, and the row's.
    estate.add_instance(
        InstanceId=instance_id, RegionId="cn-hangzhou", ConnectionDomain=long_domain
    )
    instance_row(instance_id, connection_domain=long_domain, port=6379)
    base = live_server.url
    sign_in(page, base, "alice")
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base}]
    )
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(base + reverse("instance_detail", args=[instance_id]))
        assert long_domain in page.content()
        problems += [f"{width}px: {p}" for p in page.evaluate(FIND_OVERFLOWS)]
    assert not problems, "\n".join(problems)
