"""selectors/prepared.py: a query compiled once gives, for every viewer and value, the
rows its queryset gives when built and run directly."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts_app import policy
from accounts_app.models import AccountRequest, Decision, RoleGrant
from accounts_app.selectors import requests as selectors
from accounts_app.selectors.approvals import approval_progress
from accounts_app.selectors.prepared import Prepared
from tests.builders import instance_row, request_row

pytestmark = pytest.mark.django_db


def waiting(requester, count: int, instance_id: str = "r-bp1prepared") -> list[AccountRequest]:
    instance = instance_row(instance_id)
    return AccountRequest.objects.bulk_create(
        AccountRequest(
            requester=requester,
            instance=instance,
            account_name=f"prep_{instance_id[-3:]}_{number}",
            account_privilege="RoleReadOnly",
            justification="reports",
            approvals_required=1,
        )
        for number in range(count)
    )


def test_each_viewer_gets_their_own_rows_from_one_compiled_query(
    requester, approver, second_approver, auditor
):
    waiting(requester, 3)
    waiting(approver, 2, "r-bp1preparedb")
    for viewer in (requester, approver, second_approver, auditor, requester, approver):
        lists = selectors.dashboard_lists(viewer, 10)
        assert lists == direct_dashboard_lists(viewer, 10), viewer.username
    # The approver does not wait for their own two; the second approver waits for all five.
    assert len(selectors.dashboard_lists(approver, 10)["waiting"]) == 3
    assert len(selectors.dashboard_lists(second_approver, 10)["waiting"]) == 5
    assert selectors.waiting_count(approver, 100) == 3
    assert selectors.waiting_count(second_approver, 4) == 4  # capped
    assert selectors.waiting_count(requester, 100) == 0


def direct_dashboard_lists(user, size: int) -> dict[str, list[AccountRequest]]:
    """The lists as each selector gives them, built and run one by one."""
    lists = {}
    for name, (selector, order) in selectors.DASHBOARD_LISTS.items():
        if name == "waiting" and not policy.may_approve(user):
            lists[name] = []
            continue
        rows = list(selector(user).order_by(f"-{order}", "-pk")[:size])
        lists[name] = rows
    return lists


def test_the_approver_wait_is_asked_with_the_time_of_each_run(settings, requester, second_approver):
    settings.APPROVER_WAIT_HOURS = 24
    waiting(requester, 2)
    grants = RoleGrant.objects.filter(user=second_approver)
    RoleGrant.objects.create(user=second_approver, what="group Approvers")
    assert selectors.waiting_count(second_approver, 100) == 0
    assert selectors.dashboard_lists(second_approver, 10)["waiting"] == []
    # The same compiled query, a day later: the grant no longer holds the approver back.
    grants.update(granted_at=timezone.now() - timedelta(hours=25))
    assert selectors.waiting_count(second_approver, 100) == 2
    assert len(selectors.dashboard_lists(second_approver, 10)["waiting"]) == 2


def test_a_second_run_compiles_nothing_and_takes_one_query(requester, approver):
    waiting(requester, 2)
    selectors.dashboard_lists(approver, 10)
    selectors.waiting_count(approver, 100)
    with (
        mock.patch.object(
            SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql
        ) as compiled,
        CaptureQueriesContext(connection) as queries,
    ):
        lists = selectors.dashboard_lists(approver, 10)
        count = selectors.waiting_count(approver, 100)
    assert compiled.call_count == 0
    assert len(queries) == 2
    assert [row.account_name for row in lists["waiting"]] == ["prep_red_1", "prep_red_0"]
    assert lists["waiting"][0].instance.instance_id == "r-bp1prepared"  # select_related
    assert lists["waiting"][0].requester == requester
    assert count == 2


def test_a_value_written_into_the_sql_rather_than_passed_is_refused(approver):
    def build(viewer, *, limit):
        return AccountRequest.objects.extra(where=[f"id > {limit}"])  # noqa: S610

    with pytest.raises(ValueError, match="stand-in"):
        Prepared(build, limit=int).rows(approver, limit=3)


def test_a_run_must_give_every_value_its_builder_needs_and_no_other(approver):
    prepared = Prepared(
        lambda viewer, *, since: AccountRequest.objects.filter(requester=viewer, pk__gt=since),
        since=int,
    )
    with pytest.raises(TypeError):
        prepared.rows(approver)
    with pytest.raises(TypeError, match="declared"):
        prepared.rows(approver, since=1, until=2)


def test_which_values_a_run_gives_is_part_of_its_shape(requester):
    low, high = waiting(requester, 2)

    def build(viewer, *, since=None, until=None):
        requests = AccountRequest.objects.order_by("pk")
        requests = requests.filter(pk__gt=since) if since is not None else requests
        return requests.filter(pk__lt=until) if until is not None else requests

    prepared = Prepared(build, since=int, until=int)
    assert prepared.rows(None, since=low.pk) == [high]
    assert prepared.rows(None, until=high.pk) == [low]
    assert prepared.rows(None) == [low, high]
    assert prepared.rows(None, since=low.pk, until=high.pk) == []


def test_a_key_the_query_does_not_ask_is_refused(approver):
    # The ORM leaves out a comparison it knows cannot hold (as it does with a value out of
    # its column's range): the run's value would never be asked.
    prepared = Prepared(lambda viewer: AccountRequest.objects.exclude(requester__in=[]))
    with pytest.raises(ValueError, match="does not ask viewer"):
        prepared.rows(approver)


def test_who_may_still_decide_is_asked_of_each_request(other_requester, approver, second_approver):
    # An approver's own request (keys unlike the users'), and another's one approver
    # has decided on.
    own = waiting(approver, 7)[-1]
    theirs = waiting(other_requester, 3, "r-bp1preparedc")[-1]
    Decision.objects.create(
        request=theirs, approver=approver, requester_id=other_requester.pk, verdict="approve"
    )
    for account_request in (own, theirs, own):
        shown = approval_progress(account_request).waiting_for
        direct = [user.username for user in policy.approvers_who_may_decide(account_request)]
        assert shown == direct
    assert approval_progress(own).waiting_for == [second_approver.username]
    assert approval_progress(theirs).waiting_for == [second_approver.username]


def test_a_viewer_the_query_shows_nothing_gets_no_rows_and_no_query(
    requester, approver, django_assert_num_queries
):
    """none() for a viewer without the permission: the ORM has no SQL for it (EmptyResultSet);
    the run answers empty, as the queryset would, while others still get their rows."""

    def build(viewer):
        if not viewer.has_perm("accounts_app.approve_request"):
            return AccountRequest.objects.none()
        return AccountRequest.objects.filter(decisions__approver=viewer)

    prepared = Prepared(build)
    assert build(requester).count() == 0
    with django_assert_num_queries(0):
        assert prepared.rows(requester) == []
        assert prepared.values(requester) == []
        assert prepared.count(requester) == 0
    assert prepared.rows(approver) == list(build(approver))


def test_the_request_page_compiled_once_answers_each_viewer_request_and_time(
    settings, requester, other_requester, approver, second_approver
):
    """visible_request(with_decisions=True) is one prepared query: each viewer gets their
    own conflict columns, each request its own decisions, and the approver wait is asked
    with the time of each run. (Its rival: test_workflow_guarantees.)"""
    settings.APPROVER_WAIT_HOURS = 24
    instance = instance_row("r-bp1prepared")
    first = request_row(requester, instance, "prep_page", approvals_required=2)
    other = request_row(other_requester, instance, "prep_other")
    Decision.objects.create(
        request=first, requester=requester, approver=approver, verdict="approve", comment="fine"
    )
    RoleGrant.objects.create(user=second_approver, granted_by=other_requester, what="account")
    RoleGrant.objects.create(user=approver, what="group Approvers")
    RoleGrant.objects.filter(user=second_approver).update(
        granted_at=timezone.now() - timedelta(days=2)
    )

    def page_of(viewer, account_request) -> AccountRequest:
        return selectors.visible_request(viewer, account_request.pk, with_decisions=True)

    for viewer in (approver, second_approver, approver, second_approver):
        for account_request in (first, other):
            row = page_of(viewer, account_request)
            assert policy.approver_conflict_of(row) == policy.approver_conflict(
                viewer, account_request.requester_id
            ), (viewer.username, account_request.account_name)
    assert policy.approver_conflict_of(page_of(second_approver, other)) != ""  # by requester
    assert policy.approver_conflict_of(page_of(approver, other)) != ""  # too recent
    assert [d.comment for d in page_of(second_approver, first).decisions.all()] == ["fine"]
    assert list(page_of(second_approver, other).decisions.all()) == []

    # The same compiled query, a day later: the grant no longer holds the approver back.
    a_day_later = timezone.now() + timedelta(hours=25)
    with mock.patch.object(timezone, "now", return_value=a_day_later):
        assert policy.approver_conflict_of(page_of(approver, other)) == ""


@pytest.mark.parametrize("number", [2**31, 2**62, 2**80, -(2**70)])
def test_a_request_number_no_column_holds_is_no_request(approver, number):
    """As the ORM answers it: no such request (the page's 404), not the database's error."""
    with pytest.raises(AccountRequest.DoesNotExist):
        selectors.visible_request(approver, number, with_decisions=True)


def test_a_text_value_is_asked_as_each_run_gives_it():
    from accounts_app.models import Instance

    for instance_id in ("r-bp1textone", "r-bp1texttwo", "r-bp1text'; --"):
        instance_row(instance_id)
    prepared = Prepared(
        lambda viewer, *, instance_id: Instance.objects.filter(instance_id=instance_id),
        instance_id=str,
    )
    for instance_id in ("r-bp1textone", "r-bp1texttwo", "r-bp1text'; --"):
        (found,) = prepared.rows(None, instance_id=instance_id)
        assert found.instance_id == instance_id
    assert prepared.rows(None, instance_id="r-bp1textnone") == []


def test_a_text_the_query_would_change_is_refused():
    # icontains asks for "%text%": the run's text would never be asked.
    from accounts_app.models import Instance

    prepared = Prepared(
        lambda viewer, *, text: Instance.objects.filter(name__icontains=text), text=str
    )
    with pytest.raises(ValueError, match="does not ask text"):
        prepared.rows(None, text="orders")


def test_a_list_of_keys_goes_as_one_json_text(requester):
    """JsonKeys: any number of keys in one parameter, so one compiled query serves them."""
    import json

    from accounts_app.selectors.prepared import JsonKeys

    made = waiting(requester, 252)
    prepared = Prepared(
        lambda viewer, *, keys: AccountRequest.objects.filter(pk__in=JsonKeys(keys)), keys=str
    )
    for count in (0, 1, 3, 250):
        wanted = sorted(row.pk for row in made[:count])
        with CaptureQueriesContext(connection) as queries:
            found = prepared.rows(None, keys=json.dumps(wanted))
        assert sorted(row.pk for row in found) == wanted
        assert len(queries) == 1
    assert len(prepared._compiled) == 1  # compiled once for every number of keys


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"action": "account_created"},
        {"outcome": "failure", "hide_sign_ins": True},
        {"actor": "bob", "account_name": "app_orders"},
        {"instance_id": "r-bp1orders"},
        {"instance_id": "Orders-Cache", "q": "app"},
        {"q": "app_"},
        {"date_from": "today", "date_to": "today"},
    ],
)
def test_the_audit_page_compiled_once_gives_what_its_query_run_directly_gives(filters):
    """Every page size kept compiled, both directions, with and without a cursor."""
    from accounts_app.audit import Origin, record_event
    from accounts_app.models import AuditEvent
    from accounts_app.selectors import audit

    instance_row("r-bp1orders", name="orders-cache")
    for number in range(30):
        record_event(
            action=("account_created", "login", "execution_failed")[number % 3],
            outcome=("success", "failure")[number % 2],
            origin=Origin(actor_name=("alice", "bob")[number % 2]),
            instance_id=("r-bp1orders", "r-bp1other", "")[number % 3],
            account_name=("app_orders", "app_billing", "bi_reports")[number % 3],
        )
    today = timezone.localdate()
    given = {name: today if value == "today" else value for name, value in filters.items()}
    audit_filter = audit.AuditFilter(**given)
    values = audit.filter_values(audit_filter)
    middle = AuditEvent.objects.order_by("seq").values_list("seq", flat=True)[15]
    shown = set()
    for size in audit.PREPARED_SIZES:
        for order in ("-seq", "seq"):
            for cursor in (None, middle):
                run = {**values, **({"cursor": cursor} if cursor else {})}
                shape = (audit_filter.hide_sign_ins, order, size + 1)
                direct = list(audit._page_query(None, *shape, **run))
                assert audit._EVENT_PAGE.tuples(None, shape=shape, **run) == direct
                shown.update(row[0] for row in direct)
    assert shown  # every case matches some of the events


def test_the_apis_request_list_compiled_once_answers_each_viewer_and_filter(
    requester, other_requester, auditor
):
    from accounts_app.selectors import api_pages

    mine = waiting(requester, 3)
    theirs = waiting(other_requester, 2, "r-bp1preparedc")
    newest_first = sorted(mine + theirs, key=lambda row: -row.pk)
    for _ in range(2):  # compiled, then run again
        assert api_pages.request_page(
            requester, status="", instance_id="", mine=False, before=None, limit=10
        ) == (sorted(mine, key=lambda row: -row.pk), None)
        assert api_pages.request_page(
            auditor, status="", instance_id="", mine=False, before=None, limit=10
        ) == (newest_first, None)
        assert api_pages.request_page(
            auditor,
            status="pending",
            instance_id="r-bp1preparedc",
            mine=False,
            before=None,
            limit=1,
        ) == ([newest_first[0]], newest_first[0].pk)
        assert api_pages.request_page(
            auditor, status="", instance_id="", mine=False, before=newest_first[1].pk, limit=10
        ) == (newest_first[2:], None)
        assert api_pages.request_page(
            auditor, status="", instance_id="", mine=True, before=None, limit=10
        ) == ([], None)
