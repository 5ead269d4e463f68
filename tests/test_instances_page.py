"""The instances list, its sync button and the instance page."""

from __future__ import annotations

import re
import socket
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts_app.audit.messages import event_text
from accounts_app.background.models import SyncRun
from accounts_app.models import AccountRequest, AuditEvent, Instance
from accounts_app.selectors.instances import inventory_summary
from accounts_app.services.preflight import run_preflight
from tests.builders import instance_row
from tests.conftest import cast_member
from tests.demo_instances import CHANGING, CLUSTER_60, FULL, HEALTHY, OLD_ENGINE, PASSWORD_FREE

pytestmark = pytest.mark.django_db


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def page(user, **params) -> str:
    response = signed_in(user).get(reverse("instances"), params)
    assert response.status_code == 200
    return response.content.decode()


def listed(html: str) -> list[str]:
    return re.findall(r'<tr data-instance="([^"]+)"', html)


def row(html: str, instance_id: str) -> str:
    start = html.index(f'<tr data-instance="{instance_id}"')
    return html[start : html.index("</tr>", start)]


@pytest.fixture
def staff(make_user):
    return cast_member(make_user, "superuser_requester")


def test_anonymous_visitors_are_sent_to_sign_in(estate, client):
    response = client.get(reverse("instances"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_any_signed_in_user_sees_every_instance(estate, outsider):
    html = page(outsider)
    assert len(listed(html)) == 10
    assert "Last synced at" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "r-uf6"}, {FULL, PASSWORD_FREE, "r-uf6ana6c8j4xl1t6wd", "r-uf6rep4c9d7vg3s2me"}),
        ({"q": "CACHE"}, {HEALTHY, OLD_ENGINE, FULL, "r-uf6rep4c9d7vg3s2me"}),
        ({"q": "ses6c1"}, {CLUSTER_60}),
        ({"region": "cn-shanghai", "engine": "6.0"}, {FULL, "r-uf6ana6c8j4xl1t6wd"}),
        ({"architecture": "rwsplit"}, {"r-bp1cat7r2w6jd4p8ye"}),
        ({"status": "Changing"}, {CHANGING}),
        ({"q": "nothing-like-this"}, set()),
    ],
)
def test_search_and_filters_narrow_the_list(estate, requester, params, expected):
    assert set(listed(page(requester, **params))) == expected


def test_filter_choices_are_the_values_present(estate, requester):
    html = page(requester)
    for value in ("cn-hangzhou", "cn-shanghai", "2.8", "7.0", "rwsplit", "Changing"):
        assert f'<option value="{value}"' in html


def test_filter_choices_are_each_columns_distinct_values_once_and_in_order():
    """Stepped through the indexes (selectors.instances.filter_choices): the same values
    as a DISTINCT over every instance, gone ones included, sorted."""
    from accounts_app.selectors.instances import FILTER_FIELDS, filter_choices

    assert filter_choices() == {name: [] for name in FILTER_FIELDS}  # no instance yet
    for number in range(60):
        instance_row(
            f"r-bp1choice{number:04d}",
            region_id=["cn-beijing", "ap-southeast-1", "cn-hangzhou"][number % 3],
            engine_version=["7.0", "5.0", "6.0", "4.0"][number % 4],
            architecture_type=["standard", "cluster"][number % 2],
            status=["Normal", "Changing", "Flushing", "Inactive", "Released"][number % 5],
            is_gone=number % 7 == 0,
        )

    choices = filter_choices()

    for name, field in FILTER_FIELDS.items():
        direct = Instance.objects.order_by(field).values_list(field, flat=True).distinct()
        assert choices[name] == sorted(value for value in direct if value), name
    assert choices["region"] == ["ap-southeast-1", "cn-beijing", "cn-hangzhou"]


def test_the_summary_compiled_once_follows_each_change_of_the_estate(estate):
    choices, last_synced, _run = inventory_summary()
    assert "eu-central-1" not in choices["region"]
    later = last_synced + timedelta(hours=1)
    Instance.objects.filter(instance_id=HEALTHY).update(
        region_id="eu-central-1", status="Flushing", synced_at=later
    )
    run = SyncRun.objects.create(regions=["eu-central-1"], progress={"eu-central-1": {"seen": 1}})

    choices, last_synced, newest_run = inventory_summary()

    assert "eu-central-1" in choices["region"]
    assert "Flushing" in choices["status"]
    assert last_synced == later
    assert (newest_run.pk, newest_run.regions) == (run.pk, ["eu-central-1"])
    assert newest_run.progress == {"eu-central-1": {"seen": 1}}


def test_an_estate_with_no_instance_summarises_to_nothing_but_its_first_sync(db):
    run = SyncRun.objects.create(regions=["cn-hangzhou"])

    choices, last_synced, first_run = inventory_summary()

    assert choices == {"region": [], "engine": [], "architecture": [], "status": []}
    assert last_synced is None
    assert first_run.pk == run.pk


def test_an_unknown_filter_value_is_reported(estate, requester):
    html = page(requester, engine="9.9")
    assert "Some filters are not valid" in html
    assert listed(html) == []


def test_gone_instances_are_hidden_unless_asked_for(estate, requester):
    Instance.objects.filter(instance_id=HEALTHY).update(is_gone=True)

    assert HEALTHY not in listed(page(requester))
    html = page(requester, gone="1")
    assert HEALTHY in listed(html)
    assert "no longer exists" in row(html, HEALTHY)


def test_a_gone_instance_is_worded_alike_in_the_list_the_details_and_the_request_form(
    estate, requester
):
    Instance.objects.filter(instance_id=HEALTHY).update(is_gone=True)
    gone = "The instance no longer exists in Alibaba Cloud (it was probably released)."
    details = signed_in(requester).get(reverse("instance_detail", args=[HEALTHY]))
    checks = run_preflight(instance=Instance.objects.get(instance_id=HEALTHY))

    assert gone in row(page(requester, gone="1"), HEALTHY)
    assert details.content.decode().count(gone) == 2  # what stops it, and its accounts
    assert [check.message for check in checks.blockers] == [gone]


@pytest.mark.parametrize(
    ("instance_id", "reason"),
    [
        (CHANGING, "not running (status: Changing)"),
        (OLD_ENGINE, "Redis 2.8"),
        (FULL, "already has 18 accounts"),
    ],
)
def test_each_blocked_instance_shows_its_reason_as_a_badge(estate, requester, instance_id, reason):
    html = row(page(requester), instance_id)
    badges = re.findall(r'<span class="badge badge-bad" data-reason>([^<]+)</span>', html)
    assert len(badges) == 1
    assert reason in badges[0]


def test_password_free_vpc_access_shows_a_warning_badge(estate, requester):
    html = row(page(requester), PASSWORD_FREE)
    assert "badge-warn" in html
    assert "badge-bad" not in html


def test_a_healthy_instance_has_no_blocker_and_shows_its_usage(estate, requester):
    html = page(requester)
    assert "badge-bad" not in row(html, HEALTHY)
    assert "2 / 18" in row(html, HEALTHY)  # user accounts; the built-in one is not counted
    assert "18 / 18" in row(html, FULL)


def test_htmx_gets_only_the_rows(estate, requester):
    response = signed_in(requester).get(
        reverse("instances"), {"q": "orders"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert "<html" not in html
    assert html.strip().startswith('<section id="instance-rows"')
    assert listed(html) == [HEALTHY]
    assert "HX-Request" in response["Vary"]


def test_the_filter_form_searches_as_the_user_types(estate, requester):
    html = page(requester)
    form = html[html.index('role="search"') - 200 : html.index('role="search"') + 400]
    assert 'hx-trigger="input changed delay:300ms, change"' in form
    assert 'hx-push-url="true"' in form
    assert 'method="get"' in form


def many_instances(count: int) -> None:
    now = timezone.now()
    engines = ["2.8", "4.0", "5.0", "6.0", "7.0"]
    Instance.objects.bulk_create(
        Instance(
            instance_id=f"r-bulk{number:06d}",
            name=f"bulk-{number}",
            region_id=("cn-hangzhou", "cn-shanghai", "cn-beijing")[number % 3],
            engine_version=engines[number % 5],
            architecture_type=("standard", "cluster", "rwsplit")[number % 3],
            status="Normal" if number % 7 else "Changing",
            vpc_auth_mode="Open" if number % 11 == 0 else "Close",
            account_count=number % 19,
            synced_at=now,
        )
        for number in range(count)
    )


def queries_for_page(client: Client, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("instances"), params).status_code == 200
    return len(queries)


def test_the_page_costs_the_same_queries_with_5000_instances(
    requester, django_assert_max_num_queries
):
    client = signed_in(requester)
    many_instances(10)
    with_ten = queries_for_page(client)
    Instance.objects.all().delete()
    many_instances(5000)

    with django_assert_max_num_queries(with_ten):
        response = client.get(reverse("instances"))
    assert queries_for_page(client, q="bulk-1", engine="5.0", page="2") <= with_ten
    assert queries_for_page(client, size="100", page="3") <= with_ten
    assert len(listed(response.content.decode())) == 50
    assert "5000 instances" in response.content.decode()


def test_pages_hold_50_instances_or_as_many_as_asked_and_link_to_the_next(requester):
    many_instances(250)
    html = page(requester)
    assert len(listed(html)) == 50
    assert 'href="?page=2"' in html
    assert '<option value="50" selected>' in html
    wide = page(requester, size="100")
    assert len(listed(wide)) == 100
    assert '<option value="100" selected>' in wide
    # The next page keeps the size asked.
    assert 'href="?size=100&amp;page=2"' in wide
    assert len(listed(page(requester, size="100", page="3"))) == 50
    assert len(listed(page(requester, size="25", page="10"))) == 25


def test_a_page_size_not_offered_is_refused_next_to_its_field(requester):
    many_instances(30)
    html = page(requester, size="7", q="bulk")
    assert listed(html) == []
    assert "Per page:" in html and "Select a valid choice." in html
    assert 'value="bulk"' in html  # what was typed is kept


def test_only_staff_see_the_sync_button(estate, approver, staff):
    assert "Sync now" not in page(approver)
    assert "Sync now" in page(staff)


def test_a_sync_under_way_shows_its_regions_done_and_its_live_counts(estate, requester):
    from accounts_app.background.models import SyncRegionCount, SyncRun

    SyncRun.objects.create(status=SyncRun.Status.DONE, regions=["cn-hangzhou"], progress={})
    run = SyncRun.objects.create(
        regions=["cn-hangzhou", "cn-shanghai"],
        progress={
            "cn-hangzhou": {
                "seen": 8,
                "created": 1,
                "updated": 0,
                "gone": 0,
                "failures": {"r-bp1broken": "timed out"},
            }
        },
    )
    SyncRegionCount.objects.create(run=run, region_id="cn-shanghai", described=3)

    html = page(requester)

    assert "Sync in progress: 1 of 2 regions done, 11 instances seen, 1 errors." in html
    assert "r-bp1broken: timed out" in html
    assert 'hx-trigger="every 1s"' in html


def test_staff_sync_and_get_a_summary(kvstore, staff):
    client = signed_in(staff, enforce_csrf_checks=True)
    client.get(reverse("instances"))
    token = client.cookies["csrftoken"].value

    response = client.post(reverse("instance_sync"), {"csrfmiddlewaretoken": token}, follow=True)

    assert response.redirect_chain == [(reverse("instances"), 302)]
    html = response.content.decode()
    assert "The sync has started" in html
    # Tasks run inline here; tests/test_tasks_sync.py runs them on real workers.
    assert "Last sync finished: 10 instances, 10 new, 0 changed, 0 gone." in html
    assert len(listed(html)) == 10
    # One event per region, each the clicker's.
    events = AuditEvent.objects.filter(action=AuditEvent.Action.INSTANCES_SYNCED)
    assert sorted(events.values_list("region_id", "actor_name")) == [
        ("cn-hangzhou", "root"),
        ("cn-shanghai", "root"),
    ]


def test_a_sync_with_failures_says_what_failed(kvstore, staff, settings):
    settings.KVSTORE_MAX_ATTEMPTS = 1
    settings.KVSTORE_REGIONS = ["cn-hangzhou", "cn-shanghai"]
    kvstore.add_fault("http503", action="DescribeInstances", count=1)

    response = signed_in(staff).post(reverse("instance_sync"), follow=True)

    html = response.content.decode()
    assert "These failed and keep their previous data" in html
    assert "cn-hangzhou: ServiceUnavailable" in html


def test_others_may_not_sync_and_the_refusal_is_audited(kvstore, approver):
    response = signed_in(approver).post(reverse("instance_sync"))

    assert response.status_code == 403
    assert not Instance.objects.exists()
    assert not kvstore.calls()
    event = AuditEvent.objects.get(action=AuditEvent.Action.PERMISSION_DENIED)
    assert event.actor_name == "bob"
    assert "needs staff status" in event_text(event)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.INSTANCES_SYNCED).exists()


def test_sync_is_post_only(estate, staff):
    assert signed_in(staff).get(reverse("instance_sync")).status_code == 405


def test_the_instance_page_lists_every_account_once_and_calls_nobody(estate, requester, approver):
    estate.add_account(HEALTHY, "late_reader", privilege="RoleReadOnly", description="added")
    refreshed = signed_in(approver).post(
        reverse("instance_accounts_refresh", args=[HEALTHY]), follow=True
    )
    assert "The accounts were read again" in refreshed.content.decode()
    estate.clear_calls()

    response = signed_in(requester).get(reverse("instance_detail", args=[HEALTHY]))

    html = response.content.decode()
    for name in ("orders_app", "reporting_ro", "late_reader"):
        assert html.count(f"<code>{name}</code>") == 1
    assert "RoleReadOnly" in html
    assert "BI-dashboards" in html
    assert "data-last-sweep" in html and "No sweep has read" not in html
    assert estate.calls() == []  # no Alibaba call on GET
    assert "data-refresh-accounts" not in html  # a requester does not refresh


def test_the_instance_page_shows_its_blockers(estate, requester):
    html = signed_in(requester).get(reverse("instance_detail", args=[FULL])).content.decode()
    assert "already has 18 accounts" in html


def test_refreshing_explains_when_the_api_is_unreachable(estate, approver, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.KVSTORE_ENDPOINT = f"http://127.0.0.1:{port}"
    settings.KVSTORE_MAX_ATTEMPTS = 1

    response = signed_in(approver).post(
        reverse("instance_accounts_refresh", args=[HEALTHY]), follow=True
    )

    assert response.status_code == 200
    assert "could not connect to the Alibaba Cloud API" in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ACCOUNTS_SWEPT).exists()


def test_the_instance_page_lists_the_requests_the_user_may_see(
    estate, requester, other_requester, approver
):
    instance = Instance.objects.get(instance_id=HEALTHY)
    mine, theirs = (
        AccountRequest.objects.create(
            requester=user,
            instance=instance,
            account_name=name,
            account_privilege="RoleReadOnly",
            justification="reports",
            approvals_required=1,
        )
        for user, name in ((requester, "mine_ro"), (other_requester, "theirs_ro"))
    )
    url = reverse("instance_detail", args=[HEALTHY])

    html = signed_in(requester).get(url).content.decode()
    assert reverse("request_detail", args=[mine.pk]) in html
    assert reverse("request_detail", args=[theirs.pk]) not in html
    html = signed_in(approver).get(url).content.decode()
    assert reverse("request_detail", args=[theirs.pk]) in html


def test_an_unknown_instance_is_404(estate, requester):
    response = signed_in(requester).get(reverse("instance_detail", args=["r-nope"]))
    assert response.status_code == 404


def test_an_instance_id_with_a_nul_character_is_no_instance(db):
    from accounts_app.selectors.instances import instance_by_id

    assert instance_by_id("r-bp1\x00") is None


def test_the_instance_page_lists_the_requests_each_viewer_may_open_newest_first(
    estate, requester, other_requester, auditor
):
    from tests.builders import request_row

    instance = Instance.objects.get(instance_id=HEALTHY)
    mine = [request_row(requester, instance, f"mine_{n}") for n in range(2)]
    theirs = request_row(other_requester, instance, "theirs_0")

    def shown(user) -> list[int]:
        url = reverse("instance_detail", args=[HEALTHY])
        html = signed_in(user).get(url).content.decode()
        return [int(pk) for pk in re.findall(r'<tr><td><a href="/requests/(\d+)/"', html)]

    for _ in range(2):  # the query compiled once, then run again for each viewer
        assert shown(requester) == [mine[1].pk, mine[0].pk]
        assert shown(other_requester) == [theirs.pk]
        assert shown(auditor) == [theirs.pk, mine[1].pk, mine[0].pk]
