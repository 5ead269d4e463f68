"""On PostgreSQL: concurrent clicks never make a second CreateAccount call.

Each trial starts 8 threads, each with its own database connection, that all
try to execute (or approve) the same request at once.
"""

from __future__ import annotations

from accounts_app.audit import Origin
from accounts_app.models import AccountRequest, Decision, Instance
from accounts_app.services import workflow
from tests import threads
from tests.builders import request_row
from tests.conftest import empty_instance
from tests.demo_instances import HEALTHY

pytestmark = threads.ON_POSTGRESQL_IN_TRANSACTIONS

THREADS = 8
TRIALS = 100


def run_together(target, count=THREADS):
    return threads.run_together(target, count, refused=workflow.TransitionError)


def test_concurrent_executions_make_exactly_one_call(estate, requester, approver):
    client = estate.client()
    origin = Origin(actor=requester, actor_name=requester.username)
    for trial in range(TRIALS):
        account_request = request_row(
            requester, empty_instance(estate, f"r-bp1load{trial:04d}"), "load_user"
        )
        workflow.request_approve(
            request_id=account_request.pk, approver=approver, comment="", origin=origin
        )
        estate.clear_calls()
        outcomes = run_together(
            lambda _i, pk=account_request.pk: workflow.request_execute(
                request_id=pk,
                user=requester,
                account_password="Str0ng-Passw0rd",
                origin=origin,
                client=client,
            )
        )
        assert len(estate.calls("CreateAccount")) == 1, f"trial {trial}"
        assert sum(1 for kind, _ in outcomes if kind == "ok") == 1
        account_request.refresh_from_db()
        assert account_request.status == AccountRequest.Status.CREATED


def test_concurrent_approvals_by_one_approver_count_once(estate, requester, approver):
    for trial in range(TRIALS):
        account_request = request_row(
            requester,
            Instance.objects.get(instance_id=HEALTHY),
            f"repl_{trial}",
            privilege="RoleRepl",
            approvals_required=2,
        )
        run_together(
            lambda _i, pk=account_request.pk: workflow.request_approve(
                request_id=pk,
                approver=approver,
                comment="",
                origin=Origin(actor=approver, actor_name=approver.username),
            )
        )
        account_request.refresh_from_db()
        assert Decision.objects.filter(request=account_request).count() == 1
        assert account_request.status == AccountRequest.Status.PENDING
        account_request.status = AccountRequest.Status.CANCELLED
        account_request.save(update_fields=["status"])


def test_concurrent_approvals_by_different_approvers_approve_exactly_once(
    estate, requester, make_user
):
    approvers = [make_user(f"approver{i}", "Approvers") for i in range(THREADS)]
    instance = Instance.objects.get(instance_id=HEALTHY)
    for trial in range(TRIALS // 2):
        account_request = request_row(
            requester, instance, f"pair_{trial}", privilege="RoleRepl", approvals_required=2
        )
        outcomes = run_together(
            lambda i, pk=account_request.pk: workflow.request_approve(
                request_id=pk,
                approver=approvers[i],
                comment="",
                origin=Origin(actor=approvers[i], actor_name=approvers[i].username),
            )
        )
        account_request.refresh_from_db()
        # Two approvals are needed; the others arrive after the request left "pending".
        assert account_request.status == AccountRequest.Status.APPROVED
        assert Decision.objects.filter(request=account_request).count() == 2
        assert sum(1 for kind, _ in outcomes if kind == "ok") == 2
        account_request.status = AccountRequest.Status.CANCELLED
        account_request.save(update_fields=["status"])
