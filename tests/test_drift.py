"""Every account known: the sweep (DescribeAccounts on every instance, over a socket to
the simulator) keeps KnownAccount and finds drift; the drift page and the instance page
show it; the audit log records each new drift once and the approvers are told."""

from __future__ import annotations

import io
import json

import pytest
import requests
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from accounts_app.audit import Origin
from accounts_app.audit.messages import event_text
from accounts_app.models import AccountRequest, AuditEvent, Instance, KnownAccount
from accounts_app.services import drift, fleet, lifecycle, workflow
from accounts_app.services.workflow import TransitionError
from tests.builders import approve, approved_request, instance_row, origin_of
from tests.demo_instances import CHANGING, FULL, HEALTHY, PASSWORD_FREE, REPL_OK, TAIR
from tests.fixtures.chat_fakes import ChatFakes
from tests.test_chat_notifications import add_channel
from tests.test_tasks import DATABASE_BACKEND, run_worker
from tests.threads import ON_POSTGRESQL_IN_TRANSACTIONS, run_together

pytestmark = pytest.mark.django_db

Drift = KnownAccount.Drift
Status = AccountRequest.Status
SWEPT = [HEALTHY, REPL_OK, FULL, PASSWORD_FREE, TAIR, CHANGING]


def made_outside(simulator, name, instance_id=HEALTHY, **fields):
    """An account made on the simulator's control API, as the console or a script would."""
    response = requests.post(
        f"{simulator.endpoint}/_simulator/accounts",
        json={"InstanceId": instance_id, "AccountName": name, **fields},
        timeout=5,
    )
    assert response.status_code == 201, response.text


def created_through_the_dashboard(requester, approver) -> AccountRequest:
    account_request = approved_request(requester, approver)
    workflow.request_execute(
        request_id=account_request.pk,
        user=requester,
        account_password="Str0ng-Passw0rd",
        origin=origin_of(requester),
    )
    return account_request


def sweep(**options) -> drift.SweepReport:
    return drift.sweep_accounts(origin=Origin.system("test"), pause=0, **options)


def known(name, instance_id=HEALTHY) -> KnownAccount:
    return KnownAccount.objects.get(instance__instance_id=instance_id, account_name=name)


def page(user, url, **params):
    client = Client()
    client.force_login(user)
    return client.get(url, params)


def test_an_account_made_outside_shows_on_the_drift_page_after_a_sweep(
    estate, approver, django_capture_on_commit_callbacks
):
    approver.email = "bob@example.com"
    approver.save()
    made_outside(estate, "console_made", AccountPrivilege="RoleReadWrite")

    with django_capture_on_commit_callbacks(execute=True):
        sweep()

    assert known("console_made").drift == Drift.UNMANAGED
    body = page(approver, reverse("drift")).content.decode()
    assert 'data-account="console_made" data-drift="unmanaged"' in body
    events = AuditEvent.objects.filter(action=AuditEvent.Action.DRIFT_FOUND)
    assert list(events.values_list("account_name", flat=True)).count("console_made") == 1
    assert [m.subject for m in mail.outbox if "drifted" in m.subject] != []

    sweep()  # the same drift is not recorded twice
    assert events.filter(account_name="console_made").count() == 1


def test_built_in_accounts_never_drift_and_are_known(estate):
    sweep()
    built_in = known(HEALTHY)
    assert (built_in.account_type, built_in.drift) == ("Super", "")
    assert known("default", TAIR).drift == ""


def test_what_the_dashboard_created_is_in_order_until_changed_outside(estate, requester, approver):
    account_request = created_through_the_dashboard(requester, approver)
    sweep()
    row = known("app_reader")
    assert (row.drift, row.created_by_id) == ("", account_request.pk)

    estate.simulator.store.update_account(HEALTHY, "app_reader", AccountPrivilege="RoleReadWrite")
    sweep()
    assert known("app_reader").drift == Drift.PRIVILEGE

    estate.simulator.store.update_account(
        HEALTHY, "app_reader", AccountPrivilege="RoleReadOnly", AccountDescription="by-hand"
    )
    sweep()
    assert known("app_reader").drift == Drift.DESCRIPTION

    estate.simulator.store.remove_account(HEALTHY, "app_reader")
    sweep()
    gone = known("app_reader")
    assert (gone.drift, gone.is_gone) == (Drift.GONE, True)


def test_an_account_the_dashboard_deleted_that_is_still_there_should_have_been_deleted(
    estate, requester
):
    instance = Instance.objects.get(instance_id=HEALTHY)
    for kind in (AccountRequest.Kind.CREATE, AccountRequest.Kind.DELETE):
        AccountRequest.objects.create(
            kind=kind,
            requester=requester,
            instance=instance,
            account_name="reporting_ro",
            account_privilege="RoleReadOnly",
            justification="x",
            approvals_required=1,
            status=Status.CREATED,
        )
    sweep()
    assert known("reporting_ro").drift == Drift.UNDELETED


def test_an_account_still_changing_is_judged_at_the_next_sweep(estate):
    made_outside(estate, "settling", AccountStatus="Unavailable")
    sweep()
    assert known("settling").drift == ""


def test_the_sweep_is_paced_retries_throttling_and_goes_on_past_a_failure(estate):
    pauses = []
    estate.clear_calls()
    estate.add_fault("throttle", action="DescribeAccounts", instance_id=HEALTHY)
    estate.add_fault("error", action="DescribeAccounts", instance_id=TAIR, code="Forbidden.RAM")

    report = drift.sweep_accounts(origin=Origin.system("test"), pause=0.2, sleep=pauses.append)

    assert report.failures == 1
    assert report.instances == len(pauses) + 1
    assert set(pauses) == {0.2}
    assert KnownAccount.objects.filter(instance__instance_id=HEALTHY).exists()
    assert not KnownAccount.objects.filter(instance__instance_id=TAIR).exists()
    throttled = [c for c in estate.calls("DescribeAccounts") if c["instance_id"] == HEALTHY]
    assert len(throttled) == 2  # throttled once, then answered


def test_the_command_sweeps_every_instance(estate):
    made_outside(estate, "script_made")
    out = io.StringIO()
    call_command("sweep_accounts", pause=0, stdout=out)
    assert "0 failed" in out.getvalue()
    assert known("script_made").drift == Drift.UNMANAGED


def test_the_drift_page_filters_and_counts(estate, auditor, outsider):
    made_outside(estate, "one_made")
    made_outside(estate, "two_made", instance_id=TAIR)
    sweep()

    body = page(auditor, reverse("drift"), instance_id=TAIR[-6:]).content.decode()
    assert 'data-account="two_made"' in body
    assert 'data-account="one_made"' not in body
    assert '<li data-drift="unmanaged">' in body
    filtered = page(auditor, reverse("drift"), drift="gone").content.decode()
    assert 'data-account="one_made"' not in filtered
    assert page(outsider, reverse("drift")).status_code == 403


def many_drifting(count: int) -> None:
    """`count` accounts made outside the dashboard on one instance, as a sweep records them."""
    instance = instance_row("r-bp1manydrift0")
    now = timezone.now()
    KnownAccount.objects.bulk_create(
        KnownAccount(
            instance=instance,
            account_name=f"outside_{number:03d}",
            drift=Drift.UNMANAGED,
            first_seen_at=now,
            swept_at=now,
        )
        for number in range(count)
    )


def test_the_drift_page_shows_50_accounts_a_page_with_every_count(auditor):
    many_drifting(60)
    first = page(auditor, reverse("drift")).content.decode()
    assert first.count("<tr data-account=") == 50
    assert 'data-account="outside_049"' in first and 'data-account="outside_050"' not in first
    assert '<li data-drift="unmanaged"><a href="?instance_id=&amp;drift=unmanaged">' in first
    assert "<strong>60</strong>" in first
    assert 'href="?page=2" rel="next"' in first and "Page 1 of 2" in first
    second = page(auditor, reverse("drift"), page="2").content.decode()
    assert second.count("<tr data-account=") == 10
    assert 'data-account="outside_059"' in second
    # A filter stays on the next page's link.
    filtered = page(auditor, reverse("drift"), drift="unmanaged").content.decode()
    assert 'href="?drift=unmanaged&amp;page=2"' in filtered
    # Past the last page: the last one, as everywhere.
    past = page(auditor, reverse("drift"), page="9").content.decode()
    assert past.count("<tr data-account=") == 10 and "Page 2 of 2" in past


def test_the_drift_pages_count_reads_no_join_its_rows_need(auditor):
    """The rows bring their instance and their request's requester; the count of every
    drifting account needs neither, and stays on the (drift, instance) index."""
    many_drifting(3)
    with CaptureQueriesContext(connection) as queries:
        page(auditor, reverse("drift"))
    (rows,) = [query["sql"] for query in queries.captured_queries if "page_total" in query["sql"]]
    count = rows[rows.index("(SELECT COUNT(") : rows.index(' AS "page_total"')]
    assert "JOIN" in rows.split(' AS "page_total"')[1]
    assert "JOIN" not in count


def hostile_account(instance_id: str) -> KnownAccount:
    """An account whose every field, as an instance reports it, holds markup."""
    now = timezone.now()
    return KnownAccount.objects.create(
        instance=instance_row(instance_id),
        account_name='x"><script>1</script>',
        account_type="Super",
        description="<img src=x onerror=alert(1)> & more",
        privilege="<i>Role</i>",
        status="<b>odd</b>",
        drift=Drift.UNMANAGED,
        first_seen_at=now,
        swept_at=now,
    )


def test_what_an_instance_says_of_its_accounts_is_escaped_on_the_drift_page(auditor):
    hostile_account("r-bp1<b>odd</b>")
    body = page(auditor, reverse("drift")).content.decode()
    assert "<script>1" not in body and "<img src=x" not in body and "<i>Role" not in body
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; more" in body
    assert 'data-account="x&quot;&gt;&lt;script&gt;1&lt;/script&gt;"' in body
    assert "account_name=x%22%3E%3Cscript%3E1%3C/script%3E" in body


def test_what_an_instance_says_of_its_accounts_is_escaped_on_its_page(approver):
    hostile_account("r-bp1escaped00")
    body = page(approver, reverse("instance_detail", args=["r-bp1escaped00"])).content.decode()
    section = body[body.index('id="known-accounts"') :]
    for raw in ("<script>1", "<img src=x", "<i>Role", "<b>odd"):
        assert raw not in section
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; more" in section
    assert 'data-account="x&quot;&gt;&lt;script&gt;1&lt;/script&gt;"' in section
    assert '<span class="badge badge-warn">&lt;b&gt;odd&lt;/b&gt;</span>' in section


def test_the_instance_page_lists_every_account_known_with_its_owner(estate, requester, approver):
    account_request = created_through_the_dashboard(requester, approver)
    made_outside(estate, "console_made")
    sweep()

    body = page(approver, reverse("instance_detail", args=[HEALTHY])).content.decode()
    section = body[body.index('id="known-accounts"') :]
    assert 'data-account="console_made"' in section
    assert f'href="/requests/{account_request.pk}/"' in section
    assert requester.username in section
    assert 'data-account="reporting_ro"' in section


def test_an_approved_account_not_yet_created_is_no_drift(estate, requester, approver):
    approved_request(requester, approver, name="still_open")
    sweep()
    assert not KnownAccount.objects.filter(account_name="still_open").exists()


# --- Acting on drift: adopt an account, or request its deletion -----------------------------------


def test_adopting_an_unmanaged_account_goes_through_approval(estate, requester, approver):
    made_outside(estate, "console_made", AccountPrivilege="RoleReadOnly")
    sweep()
    drift_page = page(approver, reverse("drift")).content.decode()
    adopt_link = (
        f"/requests/new/?kind=adopt&amp;instance_id={HEALTHY}&amp;account_name=console_made"
    )
    assert adopt_link in drift_page

    as_requester = Client()
    as_requester.force_login(requester)
    form = as_requester.get(adopt_link.replace("&amp;", "&")).context["form"]
    assert (form["kind"].value(), form["account_name"].value()) == ("adopt", "console_made")
    as_requester.post(
        reverse("request_new"),
        {
            "kind": "adopt",
            "instance_id": HEALTHY,
            "account_name": "console_made",
            "account_privilege": "RoleReadOnly",
            "account_type": "Normal",
            "justification": "The reporting team owns it; made in the console last year.",
        },
    )
    adoption = AccountRequest.objects.get(kind=AccountRequest.Kind.ADOPT)
    assert adoption.status == Status.PENDING
    assert known("console_made").drift == Drift.UNMANAGED  # nothing before approval
    with pytest.raises(TransitionError):
        approve(adoption, requester)
    approve(adoption, approver)

    done = as_requester.post(reverse("request_execute", args=[adoption.pk]), {}, follow=True)

    assert 'data-outcome="done"' in done.content.decode()
    row = known("console_made")
    assert (row.drift, row.created_by_id) == ("", adoption.pk)
    sweep()
    assert known("console_made").drift == ""
    assert adoption.events.filter(action=AuditEvent.Action.ACCOUNT_ADOPTED).count() == 1
    with pytest.raises(TransitionError, match="already manages"):
        lifecycle.request_submit(
            kind=AccountRequest.Kind.ADOPT,
            requester=requester,
            instance=Instance.objects.get(instance_id=HEALTHY),
            account_name="console_made",
            account_privilege="RoleReadOnly",
            account_description="",
            account_type="Normal",
            justification="again",
            origin=origin_of(requester),
        )


def test_the_drift_page_offers_to_request_a_deletion(estate, approver):
    made_outside(estate, "console_made")
    sweep()
    body = page(approver, reverse("drift")).content.decode()
    link = f"/requests/new/?kind=delete&amp;instance_id={HEALTHY}&amp;account_name=console_made"
    assert link in body
    form = page(approver, link.replace("&amp;", "&")).context["form"]
    assert form["kind"].value() == "delete"


# --- One summary per sweep ---------------------------------------------------------------------


@pytest.fixture
def chat(settings):
    """The database queue, as in production, and fakes of the chat platforms."""
    settings.TASKS = DATABASE_BACKEND
    settings.TASKS_RETRY_BACKOFF = 0
    server = ChatFakes(hang=1.0).start()
    yield server
    server.stop()


def test_a_sweep_over_many_instances_with_drift_tells_once_by_mail_and_by_chat(
    estate, approver, auditor, settings, chat
):
    fakes = chat
    settings.SITE_URL = "http://dashboard.example:8123"
    for user, address in ((approver, "bob@example.com"), (auditor, "carol@example.com")):
        user.email = address
        user.save()
    mail.outbox.clear()
    add_channel(fakes, "slack")
    add_channel(fakes, "wecom", language="zh-hans")
    for index, instance_id in enumerate(SWEPT):
        made_outside(estate, f"console_{index}", instance_id=instance_id)

    report = sweep()
    run_worker()

    events = AuditEvent.objects.filter(action=AuditEvent.Action.DRIFT_FOUND)
    drifted = {event.instance_id for event in events}
    assert set(SWEPT) <= drifted  # many instances, each with its own audit events
    assert events.count() == report.new_drift > drift.SUMMARY_ITEMS
    told = [m for m in mail.outbox if "drifted" in m.subject]
    assert sorted(m.to[0] for m in told) == ["bob@example.com", "carol@example.com"]
    body = told[0].body
    assert f"found {report.new_drift} accounts" in body
    assert f"Not made through the dashboard: {report.new_drift}" in body
    assert body.count("\n- ") == drift.SUMMARY_ITEMS
    assert f"and {report.new_drift - drift.SUMMARY_ITEMS} more" in body
    assert "http://dashboard.example:8123/drift/" in body
    [slack] = fakes.posts("slack")
    [wecom] = fakes.posts("wecom")
    assert "http://dashboard.example:8123/drift/" in json.dumps(slack.body)
    assert f"found {report.new_drift} accounts" in json.dumps(slack.body)
    in_chinese = json.dumps(wecom.body, ensure_ascii=False)
    assert "非经本平台创建" in in_chinese and "drift page" not in in_chinese

    mail.outbox.clear()
    sweep()  # nothing new: nothing told
    run_worker()
    assert [m.subject for m in mail.outbox] == []
    assert len(fakes.posts()) == 2


def test_each_new_drift_is_one_audit_event_said_in_the_readers_language(
    estate, requester, approver
):
    created_through_the_dashboard(requester, approver)
    sweep()
    estate.simulator.store.update_account(HEALTHY, "app_reader", AccountPrivilege="RoleReadWrite")
    sweep()

    event = AuditEvent.objects.get(action=AuditEvent.Action.DRIFT_FOUND, account_name="app_reader")
    assert (event.message_id, event.comment) == ("drift.privilege", "")
    assert event_text(event) == "Privilege changed outside the dashboard: RoleReadWrite now."
    with translation.override("zh-hans"):
        assert "RoleReadWrite" in event_text(event) and "权限" in event_text(event)


# --- The instance page: one list, read again on demand ----------------------------------------


def test_refreshing_an_instance_reads_its_accounts_once_audited_and_tells_of_new_drift(
    estate, approver, auditor, django_capture_on_commit_callbacks
):
    auditor.email = "carol@example.com"
    auditor.save()
    sweep()  # what the demo estate already has
    mail.outbox.clear()
    made_outside(estate, "console_made")
    estate.clear_calls()
    client = Client()
    client.force_login(approver)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("instance_accounts_refresh", args=[HEALTHY]), follow=True)

    body = response.content.decode()
    assert "1 new drift" in body
    assert [c["instance_id"] for c in estate.calls("DescribeAccounts")] == [HEALTHY]
    assert len(estate.calls()) == 1
    assert known("console_made").drift == Drift.UNMANAGED
    event = AuditEvent.objects.get(action=AuditEvent.Action.ACCOUNTS_SWEPT)
    assert (event.actor_id, event.instance_id, event.message_id) == (
        approver.pk,
        HEALTHY,
        "accounts.read_again",
    )
    listed = len(KnownAccount.objects.filter(instance__instance_id=HEALTHY))
    assert f"{listed} listed, 1 new drift" in event_text(event)
    assert [m.to for m in mail.outbox if "drifted" in m.subject] == [["carol@example.com"]]
    swept = Instance.objects.get(instance_id=HEALTHY).accounts_swept_at
    assert swept is not None
    assert swept.strftime("%Y-%m-%d %H:%M") in body


def test_only_approvers_and_staff_refresh_an_instances_accounts(estate, requester, auditor):
    estate.clear_calls()
    for user in (requester, auditor):
        client = Client()
        client.force_login(user)
        response = client.post(reverse("instance_accounts_refresh", args=[HEALTHY]))
        assert response.status_code == 403
    assert estate.calls() == []
    denied = AuditEvent.objects.filter(action=AuditEvent.Action.PERMISSION_DENIED)
    assert denied.count() == 2


# --- Two sweeps of one instance at once (PostgreSQL, real connections) -------------------------


def on_postgresql_in_transactions(test):
    for mark in reversed(ON_POSTGRESQL_IN_TRANSACTIONS):
        test = mark(test)
    return test


@on_postgresql_in_transactions
def test_two_sweeps_of_one_instance_at_once_record_each_drift_once(estate):
    made_outside(estate, "console_made")
    instance = Instance.objects.get(instance_id=HEALTHY)

    outcomes = run_together(
        lambda index: drift.sweep_instance(
            instance=instance, client=estate.client(), origin=Origin.system(f"sweep {index}")
        ),
        2,
    )

    assert [kind for kind, _ in outcomes] == ["ok", "ok"]  # the second waited its turn
    found = sorted(len(result) for _, result in outcomes)
    drifted = AuditEvent.objects.filter(action=AuditEvent.Action.DRIFT_FOUND)
    assert found[0] == 0 and found[1] == drifted.count() > 0  # one found it all, once
    assert drifted.filter(account_name="console_made").count() == 1
    assert known("console_made").drift == Drift.UNMANAGED


def test_the_accounts_a_fleet_made_and_deleted_are_the_dashboards_on_every_instance(
    estate, requester, approver
):
    from tests.test_fleet_pages import PASSWORD, approved_fleet, run_page, signed_in

    made, instances = approved_fleet(estate, requester, approver, prefix="r-swept")
    run_page(
        signed_in(requester),
        made.pk,
        account_password=PASSWORD,
        account_password_confirm=PASSWORD,
    )
    sweep(instances=instances)
    # Each instance's account is the fleet's, not an unmanaged one: the first instance
    # (the request's own) and the others alike.
    for instance in instances:
        account = known("order_ro", instance.instance_id)
        assert (account.drift, account.created_by_id) == ("", made.pk)

    deletion = fleet.fleet_submit(
        requester=requester,
        instances=instances[1:],
        kind=AccountRequest.Kind.DELETE,
        account_name="order_ro",
        account_privilege="RoleReadOnly",
        account_description="",
        account_type="Normal",
        justification="Not needed on these any more.",
        origin=origin_of(requester),
    )
    approve(deletion, approver)
    run_page(signed_in(requester), deletion.pk)
    made_outside(estate, "order_ro", instances[2].instance_id)  # made again in the console
    sweep(instances=instances)
    assert known("order_ro", instances[0].instance_id).drift == ""
    assert known("order_ro", instances[1].instance_id).is_gone
    assert known("order_ro", instances[2].instance_id).drift == Drift.UNDELETED


@pytest.mark.parametrize(("language", "zone"), [("en", "UTC"), ("zh-hans", "Asia/Shanghai")])
def test_the_instance_pages_accounts_read_in_one_query_show_as_the_models_do(
    estate, requester, approver, language, zone
):
    """The accounts come as a JSON column of the instance's query
    (selectors.accounts.instance_with_accounts): the table they make is the one the
    models read with the ORM make, in both languages and in the viewer's time zone."""
    import zoneinfo

    from django.template.loader import render_to_string
    from django.utils import timezone

    from accounts_app.services.preferences import TIME_ZONE_KEY

    overdue = created_through_the_dashboard(requester, approver)
    AccountRequest.objects.filter(pk=overdue.pk).update(
        expires_at=timezone.now() - timezone.timedelta(hours=3)
    )
    made_outside(estate, "console_made", AccountPrivilege="RoleReadOnly")
    sweep()
    assert known("console_made").drift == Drift.UNMANAGED
    client = Client(headers={"accept-language": language})
    client.force_login(approver)
    session = client.session
    session[TIME_ZONE_KEY] = zone
    session.save()

    response = client.get(reverse("instance_detail", args=[HEALTHY]))

    models_read = list(
        KnownAccount.objects.filter(instance__instance_id=HEALTHY)
        .select_related("created_by__requester")
        .order_by("account_name")
    )
    assert len(models_read) >= 3  # the built-in account, the dashboard's, the console's
    with translation.override(language), timezone.override(zoneinfo.ZoneInfo(zone)):
        expected = render_to_string(
            "instances/detail.html",
            {
                **{key: response.context[key] for key in ("instance", "blockers", "requests")},
                "max_accounts": response.context["max_accounts"],
                "can_refresh": response.context["can_refresh"],
                "known_accounts": models_read,
            },
            request=response.wsgi_request,
        )

    def table(html: str) -> str:
        # From the section's table on: its refresh form's CSRF token is new each time.
        start = html.index("<table", html.index('id="known-accounts"'))
        return html[start : html.index("</table>", start)]

    shown = table(response.content.decode())
    assert shown == table(expected)
    assert "data-overdue" in shown and f"#{overdue.pk}" in shown
