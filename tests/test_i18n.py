"""Chinese: a complete catalogue, and every page, message and e-mail in it.

The page tests render each page in zh-hans and look for English words left in it: a
template or Python string that was not marked for translation shows up there in English.
"""

from __future__ import annotations

import gettext
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from html import unescape

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts_app import notifications, policy, rules
from accounts_app.models import AccountRequest, AuditEvent, Decision, Instance, UserPreference
from accounts_app.services.preferences import TIME_ZONE_KEY
from accounts_app.simulator.demo_estate import demo_estate
from tests.builders import request_form_data, request_row
from tests.demo_instances import CHANGING, CLUSTER_60, HEALTHY, OLD_ENGINE
from tests.i18n_support import (
    ROOT,
    ZH_PO,
    english_words,
    read_po,
    time_zone_names,
    visible_text,
)

PASSWORD = "Str0ng-Passw0rd"
ZH = "zh-hans"
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|\{[a-z_]+\}")
URL = re.compile(r"https?://\S+")


# --- The catalogue ------------------------------------------------------------------

# Copied for makemessages: everything it would scan in the checkout, and the catalogue.
IGNORED = shutil.ignore_patterns(
    ".venv",
    ".git",
    "staticfiles",
    "__pycache__",
    "*.pyc",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    "*.sqlite3*",
    ".env",
    ".simulator-state.json",
    "test-results",
    "node_modules",
)


@pytest.fixture(scope="module")
def fresh_catalogue(tmp_path_factory):
    """The PO files `make messages` would write now, made in a copy of the checkout:
    the committed catalogue is never touched."""
    tree = tmp_path_factory.mktemp("checkout") / "tree"
    shutil.copytree(ROOT, tree, ignore=IGNORED)
    env = {**os.environ, "ENV_FILE": str(tree / "no.env"), "PYTHONDONTWRITEBYTECODE": "1"}
    for domain in ("django", "djangojs"):
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "makemessages",
                "-l",
                "zh_Hans",
                "-d",
                domain,
                "--ignore=.venv",
                "--ignore=staticfiles",
                "--settings=tests.settings",
            ],
            cwd=tree,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    return sorted((tree / "locale").rglob("*.po"))


def test_makemessages_finds_no_string_left_untranslated_or_fuzzy(fresh_catalogue):
    assert fresh_catalogue, "makemessages wrote no catalogue"
    problems = []
    for path in fresh_catalogue:
        for entry in read_po(path):
            if not entry.translated:
                problems.append(f"{path.name}: untranslated: {entry.msgid!r}")
            if "fuzzy" in entry.flags:
                problems.append(f"{path.name}: fuzzy: {entry.msgid!r}")
    assert not problems, "Run `make messages` and translate:\n" + "\n".join(problems)


def test_the_committed_catalogue_is_what_makemessages_would_write(fresh_catalogue):
    (django_po,) = [path for path in fresh_catalogue if path.name == "django.po"]
    fresh = {(e.msgctxt, e.msgid) for e in read_po(django_po)}
    committed = {(e.msgctxt, e.msgid) for e in read_po(ZH_PO)}
    assert fresh == committed


def test_no_translation_is_left_in_english():
    leftovers = {}
    for entry in read_po(ZH_PO):
        for msgstr in entry.msgstrs:
            words = english_words(PLACEHOLDER.sub(" ", unescape(msgstr)))
            if words:
                leftovers[entry.msgid] = words
    assert not leftovers


def test_the_compiled_catalogue_matches_the_po_file():
    with (ZH_PO.parent / "django.mo").open("rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)
    stale = []
    for entry in read_po(ZH_PO):
        if entry.msgid_plural is not None:
            translated = catalogue.ngettext(entry.msgid, entry.msgid_plural, 1)
        elif entry.msgctxt is not None:
            translated = catalogue.pgettext(entry.msgctxt, entry.msgid)
        else:
            translated = catalogue.gettext(entry.msgid)
        if translated != entry.msgstrs[0]:
            stale.append(entry.msgid)
    assert not stale, "Run `make messages` (compilemessages) again: the .mo is stale"


def test_the_rules_browsers_get_are_in_chinese():
    with translation.override(ZH):
        spec = rules.browser_spec()
    texts = [spec["confirm"]["message"], *spec["ui"].values()]
    for param in spec["params"].values():
        texts.append(param["requiredMessage"])
        texts.extend(c["message"] for c in param["constraints"])
        texts.extend(item["label"] for item in param.get("checklist", []))
    texts.extend(b["message"] for b in spec["instance"]["blockers"])
    for needs in spec["privileges"].values():
        texts.extend([needs["label"], needs["message"], needs["messageUnknown"]])
    leftovers = [w for text in texts for w in english_words(PLACEHOLDER.sub(" ", text))]
    assert not leftovers
    assert spec["ui"]["generate"] == "生成"


# --- Every page in Chinese ----------------------------------------------------------


def chinese_client(user=None) -> Client:
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = ZH
    if user is not None:
        client.force_login(user)
    return client


def submit(client: Client, **overrides) -> AccountRequest:
    data = request_form_data(**overrides)
    response = client.post(reverse("request_new"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return AccountRequest.objects.latest("pk")


def data_strings() -> set[str]:
    """Everything on the pages that is data, not interface: IDs, names, user input."""
    values: set[str] = set(time_zone_names())
    for row in Instance.objects.values_list(
        "instance_id", "name", "region_id", "instance_class", "connection_domain", "instance_type"
    ):
        values.update(row)
    for tags in Instance.objects.values_list("tags", flat=True):
        values.update(f"{key}:{value}" for key, value in tags.items())
    for row in AccountRequest.objects.values_list(
        "account_name",
        "account_description",
        "justification",
        "alibaba_request_id",
        "error_code",
        "error_message",
    ):
        values.update(row)
    values.update(Decision.objects.values_list("comment", flat=True))
    for row in AuditEvent.objects.values_list(
        "actor_name", "comment", "alibaba_request_id", "error_code", "account_privilege"
    ):
        values.update(row)
    # A system message's parameters are data; its sentence is interface, so it must be
    # Chinese.
    for params in AuditEvent.objects.exclude(message_params="").values_list(
        "message_params", flat=True
    ):
        values.update(str(value) for value in json.loads(params).values())
    values.update(get_user_model().objects.values_list("username", flat=True))
    state = demo_estate()
    for accounts in state["accounts"].values():
        for account in accounts:
            values.update([account["AccountName"], account["AccountDescription"]])
    return values


def assert_chinese(response, *, status: int = 200, data: Iterable[str] = ()) -> str:
    """The page's HTML, after checking that it has no English word outside data
    (`data`: what the test typed in) and the allowlists."""
    assert response.status_code == status, response.content.decode()[:2000]
    html = response.content.decode()
    text = visible_text(html)
    data = {*data_strings(), *data, response.get("X-Correlation-Id", "")}
    leftovers = english_words(text, data)
    assert not leftovers, f"English left on {response.request['PATH_INFO']}: {leftovers}"
    assert re.search(r"[\u4e00-\u9fff]", text)
    return html


@pytest.fixture
def story(estate, requester, approver, auditor):
    """Requests in every state a page shows: pending, approved, created, rejected."""
    as_requester = chinese_client(requester)
    as_approver = chinese_client(approver)
    created = submit(as_requester, account_name="app_done")
    as_approver.post(reverse("request_approve", args=[created.pk]), {"comment": "ok"})
    created_page = as_requester.post(
        reverse("request_execute", args=[created.pk]),
        {"account_password": PASSWORD, "account_password_confirm": PASSWORD},
        follow=True,
    )
    rejected = submit(as_requester, account_name="app_no")
    as_approver.post(reverse("request_reject", args=[rejected.pk]), {"comment": "no"})
    approved = submit(as_requester, account_name="app_ok")
    as_approver.post(reverse("request_approve", args=[approved.pk]), {"comment": "fine"})
    pending = submit(as_requester, account_name="app_wait")
    for request_obj in (created, rejected, approved):
        request_obj.refresh_from_db()
    assert created.status == AccountRequest.Status.CREATED
    assert approved.status == AccountRequest.Status.APPROVED
    return {
        "requester": as_requester,
        "approver": as_approver,
        "auditor": chinese_client(auditor),
        "created": created,
        "created_page": created_page,
        "rejected": rejected,
        "approved": approved,
        "pending": pending,
    }


def test_the_signed_out_pages_are_in_chinese(db):
    assert_chinese(chinese_client().get(reverse("login")))
    # A failed sign-in: Django's own message, from Django's catalogue.
    response = chinese_client().post(reverse("login"), {"username": "x", "password": "y"})
    assert_chinese(response)
    with translation.override(ZH):
        page = render_to_string("errors/500.html", {"correlation_id": "abc123"})
    assert not english_words(visible_text(page), ["abc123"])
    with translation.override(ZH):
        locked = render_to_string(
            "registration/locked_out.html", {"failure_limit": 5, "cooloff_minutes": 15}
        )
    assert not english_words(visible_text(locked))


def test_the_language_follows_the_browser_without_a_cookie(db):
    client = Client(headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.8"})
    page = client.get(reverse("login")).content.decode()
    assert '<html lang="zh-hans">' in page
    assert "登录" in page
    # The switcher names each language in its own words.
    assert re.search(r'<option value="en"[^>]*>English</option>', page)
    assert re.search(r'<option value="zh-hans"[^>]*selected>简体中文</option>', page)


def test_the_requester_pages_are_in_chinese(story):
    client = story["requester"]
    assert_chinese(client.get(reverse("dashboard")))
    assert_chinese(client.get(reverse("dashboard"), headers={"HX-Request": "true"}))
    assert_chinese(client.get(reverse("request_new")))
    assert_chinese(client.get(reverse("request_new"), {"copy": story["rejected"].pk}))
    assert_chinese(
        client.get(
            reverse("request_preflight"),
            {"instance_id": HEALTHY, "account_name": "app_x", "account_privilege": "RoleRepl"},
            headers={"HX-Request": "true"},
        ),
        data=["app_x"],
    )
    assert_chinese(client.get(reverse("request_detail", args=[story["approved"].pk])))
    assert_chinese(client.get(reverse("request_list")))
    assert_chinese(client.get(reverse("request_execute_result", args=[story["created"].pk])))
    assert_chinese(client.get(reverse("request_detail", args=[story["rejected"].pk])))
    assert_chinese(client.get(reverse("request_execute", args=[story["approved"].pk])))
    assert "账号已创建" in assert_chinese(story["created_page"])
    assert_chinese(client.get(reverse("preferences")))
    assert_chinese(client.get(reverse("reauth"), {"next": "/"}))


def test_the_servers_validation_messages_are_in_chinese(story):
    client = story["requester"]
    html = assert_chinese(
        client.post(
            reverse("request_new"),
            {
                "instance_id": OLD_ENGINE,
                "account_name": "Select",
                "account_privilege": "RoleRepl",
                "account_description": "http://x",
                "account_type": "Normal",
                "justification": "",
            },
        )
    )
    assert "必须以小写字母（a–z）开头。" in html
    assert "“select”是保留字，请换一个名称。" in html
    # Taken (the open request for app_wait) and the password checks of the execute page.
    assert_chinese(
        client.post(
            reverse("request_new"),
            {
                "instance_id": HEALTHY,
                "account_name": "app_wait",
                "account_privilege": "RoleReadOnly",
                "account_type": "Normal",
                "justification": "again",
            },
        ),
        data=["again"],
    )
    execute = reverse("request_execute", args=[story["approved"].pk])
    html = assert_chinese(
        client.post(execute, {"account_password": "short", "account_password_confirm": "short"})
    )
    assert "长度至少为 8 个字符，当前为 5 个。" in html
    html = assert_chinese(
        client.post(execute, {"account_password": PASSWORD, "account_password_confirm": "other"})
    )
    assert "两次输入的密码不一致。" in html


def test_the_approver_and_auditor_pages_are_in_chinese(story):
    approver, auditor = story["approver"], story["auditor"]
    assert_chinese(approver.get(reverse("dashboard")))
    assert_chinese(approver.get(reverse("approvals")))
    assert_chinese(approver.get(reverse("request_list"), {"tab": "waiting"}))
    assert_chinese(approver.get(reverse("request_list"), {"tab": "all", "date_to": "2000-01-01"}))
    assert_chinese(approver.get(reverse("request_detail", args=[story["pending"].pk])))
    response = approver.post(
        reverse("request_approve", args=[story["pending"].pk]), {"comment": "x"}, follow=True
    )
    assert "您已批准申请" in assert_chinese(response)
    assert_chinese(auditor.get(reverse("request_detail", args=[story["created"].pk])))
    assert_chinese(auditor.get(reverse("audit")))

    assert_chinese(auditor.get(reverse("created_accounts")))


def test_the_audit_filter_errors_are_in_chinese(story):
    response = story["auditor"].get(
        reverse("audit"), {"date_from": "2030-01-02", "date_to": "2030-01-01"}
    )
    assert "结束日期早于开始日期。" in assert_chinese(response)


def test_the_instance_pages_are_in_chinese(story):
    client = story["requester"]
    html = assert_chinese(client.get(reverse("instances")))
    # The API's values under their Chinese names, as in the Alibaba Cloud console.
    assert "运行中" in html and "变配中" in html and "集群架构" in html
    assert_chinese(client.get(reverse("instances"), {"status": "Changing", "gone": "on"}))
    # The instance page lists the accounts the sweep read.
    from accounts_app.audit import Origin
    from accounts_app.services import drift

    drift.sweep_accounts(origin=Origin.system("test"), pause=0)
    for instance_id in (HEALTHY, CHANGING, OLD_ENGINE, CLUSTER_60):
        html = assert_chinese(client.get(reverse("instance_detail", args=[instance_id])))
    assert "可用" in html and "超级账号" in html


def test_the_error_pages_are_in_chinese(story):
    client = story["requester"]
    html = assert_chinese(client.get(reverse("approvals")), status=403)
    assert "审批人" in html
    assert_chinese(client.get("/requests/999999/"), status=404)
    assert_chinese(client.post(reverse("instance_sync")), status=403)


def test_the_messages_after_an_action_are_in_chinese(story):
    client = story["requester"]
    response = client.post(reverse("request_cancel", args=[story["approved"].pk]), follow=True)
    assert f"申请 #{story['approved'].pk} 已撤销。" in assert_chinese(response)
    response = client.post(reverse("preferences"), {"time_zone": "Asia/Tokyo"}, follow=True)
    assert "您的时区已设置为 Asia/Tokyo。" in assert_chinese(response)


# --- E-mails ------------------------------------------------------------------------


def test_emails_go_out_in_the_sites_language(
    settings, story, approver, django_capture_on_commit_callbacks
):
    settings.LANGUAGE_CODE = ZH
    approver.email = "bob@example.com"
    approver.save()
    requester = story["created"].requester
    requester.email = "alice@example.com"
    requester.save()
    mail.outbox.clear()
    # Sent while serving someone who reads English: the mail speaks the site's language.
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        notifications.request_submitted(
            story["pending"], recipients=policy.deciders_emails(story["pending"])
        )
        notifications.request_decided(story["approved"], verdict="approve", approver=approver)
        notifications.request_finished(story["created"])
        notifications.request_expired(story["rejected"])
        notifications.request_needs_reconciliation(story["approved"])
    assert len(mail.outbox) == 5
    for message in mail.outbox:
        for text in (message.subject, message.body):
            assert not english_words(URL.sub(" ", text), data_strings()), text
            assert re.search(r"[\u4e00-\u9fff]", text)
    submitted = mail.outbox[0]
    assert submitted.subject.startswith("[Redis 账号] 申请 #")
    assert "（只读）" in submitted.body


# --- Time zones ---------------------------------------------------------------------


def test_the_demo_default_time_zone_is_shanghai():
    env = {key: value for key, value in os.environ.items() if key != "DEFAULT_USER_TIME_ZONE"}
    env.update(DEMO_MODE="true", DJANGO_SETTINGS_MODULE="tests.settings", ENV_FILE="/nonexistent")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings as s; print(s.DEFAULT_USER_TIME_ZONE)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "Asia/Shanghai"


def _request_at(requester, when: datetime) -> AccountRequest:
    instance = Instance.objects.get(instance_id=HEALTHY)
    account_request = request_row(requester, instance, "tz_probe")
    AccountRequest.objects.filter(pk=account_request.pk).update(created_at=when)
    return account_request


def test_times_are_shown_in_the_default_zone_and_stored_in_utc(settings, estate, requester):
    settings.DEFAULT_USER_TIME_ZONE = "Asia/Shanghai"
    when = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    account_request = _request_at(requester, when)
    page = chinese_client(requester).get(reverse("request_detail", args=[account_request.pk]))
    assert "2030-01-02 11:04 CST" in page.content.decode()
    account_request.refresh_from_db()
    assert account_request.created_at == when
    assert account_request.created_at.utcoffset().total_seconds() == 0


def test_a_chosen_time_zone_is_kept_and_used_on_every_page(settings, estate, requester):
    settings.DEFAULT_USER_TIME_ZONE = "Asia/Shanghai"
    account_request = _request_at(requester, datetime(2030, 1, 2, 3, 4, tzinfo=UTC))
    client = chinese_client(requester)
    page = client.get(reverse("preferences")).content.decode()
    assert '<option value="Asia/Shanghai" selected>' in page
    client.post(reverse("preferences"), {"time_zone": "Europe/Berlin"})
    assert UserPreference.objects.get(user=requester).time_zone == "Europe/Berlin"
    page = client.get(reverse("request_detail", args=[account_request.pk])).content.decode()
    assert "2030-01-02 04:04 CET" in page
    # A new sign-in takes the zone from the saved preference.
    page = chinese_client(requester).get(reverse("dashboard")).content.decode()
    assert "2030-01-02 04:04" in page


def test_an_unknown_time_zone_is_refused(estate, requester):
    client = chinese_client(requester)
    response = client.post(reverse("preferences"), {"time_zone": "Mars/Olympus"})
    assert response.status_code == 200
    assert not UserPreference.objects.filter(user=requester).exists()
    assert TIME_ZONE_KEY not in client.session


def test_a_broken_zone_in_the_session_falls_back_to_the_default(settings, estate, requester):
    settings.DEFAULT_USER_TIME_ZONE = "Asia/Shanghai"
    account_request = _request_at(requester, datetime(2030, 1, 2, 3, 4, tzinfo=UTC))
    client = chinese_client(requester)
    session = client.session
    session[TIME_ZONE_KEY] = "Not/AZone"
    session.save()
    page = client.get(reverse("request_detail", args=[account_request.pk])).content.decode()
    assert "2030-01-02 11:04 CST" in page
