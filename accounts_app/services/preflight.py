"""Pre-flight: would CreateAccount succeed now, and if not, why.

Checks what the API checks before it creates an account (docs/alibaba-api.md,
"CreateAccount"): the instance is running, runs Redis 4.0 or later, has fewer than 18
accounts a user created (built-in Super accounts are not counted) and no account of
that name, no account on it is still being created (the API refuses the next
CreateAccount with IncorrectDBInstanceState meanwhile), and the privilege is allowed
there; plus what only this dashboard knows (another open request for the same name)
and what the API does not refuse but should worry an approver (password-free access
from the VPC, VpcAuthMode ``Close``, which makes a new account isolate nothing).

The instance's facts come live from DescribeInstanceAttribute and DescribeAccounts.
When the API cannot answer, the last synced facts are used and the result says so;
what cannot be known without the API (the account names) becomes a warning, not a
pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts_app import api_labels, policy, rules, vpc_auth, wording
from accounts_app.alibaba.client import KVStoreClient
from accounts_app.alibaba.errors import AlibabaApiError, InstanceNotFound
from accounts_app.models import Instance
from accounts_app.selectors.requests import open_rivals
from accounts_app.services import live_calls
from accounts_app.services.breaker import get_guarded_client
from accounts_app.services.inventory import refresh_instance

OK = "ok"
BLOCKED = "blocked"
WARNING = "warning"

# For open_request_check(rival=...): not read yet, the check reads it.
UNREAD = object()

# The answer of an instance that no longer exists (the Terraform provider handles it).
NOT_FOUND_CODE = "InvalidInstanceId.NotFound"


@dataclass(frozen=True)
class Check:
    key: str  # instance, status, engine, account_count, account_name, open_request, ...
    status: str  # "ok" | "blocked" | "warning"
    message: str  # translated


@dataclass(frozen=True)
class PreflightResult:
    checks: list[Check]
    live: bool  # False when the API could not be reached and synced data was used
    note: str

    @property
    def blockers(self) -> list[Check]:
        return [check for check in self.checks if check.status == BLOCKED]

    @property
    def warnings(self) -> list[Check]:
        return [check for check in self.checks if check.status == WARNING]

    @property
    def can_proceed(self) -> bool:
        return not self.blockers

    def check(self, key: str) -> Check | None:
        return next((check for check in self.checks if check.key == key), None)


class _Throttled(Exception):
    """The viewer's budget of live calls is spent: use the synced facts."""


@dataclass(frozen=True)
class _Facts:
    status: str
    engine_version: str
    architecture_type: str
    vpc_auth_mode: str
    account_count: int | None  # Normal accounts only
    account_names: frozenset[str] | None  # None: not known (API unreachable)
    being_created: frozenset[str] | None = None  # accounts still Unavailable; None: unknown


def run_preflight(
    *,
    instance: Instance,
    account_name: str = "",
    privilege: str = "",
    exclude_request_id: int | None = None,
    client: KVStoreClient | None = None,
    at_execute: bool = False,
    viewer=None,
    live: bool = True,
    open_rival=UNREAD,
) -> PreflightResult:
    """The checks, live when the API answers.

    ``at_execute``: the account is about to be created, so an account still being
    created on the instance blocks (elsewhere it is a warning: it passes in a minute).
    ``viewer``: who reads the result; another open request is named by its number only
    to someone who may see it. ``live=False`` (the viewer's live-call budget is spent):
    the synced facts, and a note that says why. ``open_rival``: see open_request_check.
    """
    if instance.is_gone:
        return PreflightResult(
            checks=[Check("instance", BLOCKED, str(wording.INSTANCE_GONE))],
            live=False,
            note=_("The last sync, at %(time)s, did not find this instance.")
            % {"time": _when(instance)},
        )
    try:
        if not live:
            raise _Throttled
        details = refresh_instance(instance, client=client or get_guarded_client())
    except _Throttled:
        facts, live = _synced_facts(instance), False
        note = str(live_calls.THROTTLED_MESSAGE)
    except AlibabaApiError as error:
        if isinstance(error, InstanceNotFound) or error.code == NOT_FOUND_CODE:
            return PreflightResult(
                checks=[Check("instance", BLOCKED, str(wording.INSTANCE_GONE))],
                live=True,
                note=_("Checked live with Alibaba Cloud."),
            )
        facts = _synced_facts(instance)
        live = False
        note = _(
            "Alibaba Cloud could not be reached (%(reason)s); these checks use the data "
            "synced at %(time)s and may be out of date."
        ) % {"reason": error.human_message, "time": _when(instance)}
    else:
        attribute = details.attribute
        normal = details.normal_accounts
        facts = _Facts(
            status=attribute.instance_status,
            engine_version=attribute.engine_version,
            architecture_type=attribute.architecture_type,
            vpc_auth_mode=attribute.vpc_auth_mode,
            account_count=None if normal is None else len(normal),
            # Built-in names count too: CreateAccount refuses a duplicate of any account.
            account_names=frozenset(a.account_name for a in details.accounts or []),
            being_created=frozenset(a.account_name for a in details.accounts_being_created),
        )
        live = True
        note = _("Checked live with Alibaba Cloud.")
    exists = _("The instance exists.") if live else _("The last sync listed the instance.")
    checks = [Check("instance", OK, exists), *_instance_checks(facts)]
    if facts.being_created:
        checks.append(_being_created_check(facts.being_created, at_execute))
    if account_name:
        checks.append(_name_check(facts, account_name))
        checks.append(
            open_request_check(instance, account_name, exclude_request_id, viewer, rival=open_rival)
        )
    if privilege:
        checks.append(_privilege_check(facts, privilege))
    checks.append(_vpc_check(facts))
    return PreflightResult(checks=checks, live=live, note=note)


def _synced_facts(instance: Instance) -> _Facts:
    return _Facts(
        status=instance.status,
        engine_version=instance.engine_version,
        architecture_type=instance.architecture_type,
        vpc_auth_mode=instance.vpc_auth_mode,
        account_count=instance.account_count,
        account_names=None,
    )


def _when(instance: Instance) -> str:
    return timezone.localtime(instance.synced_at).strftime("%Y-%m-%d %H:%M %Z")


def _instance_checks(facts: _Facts) -> list[Check]:
    """Status, engine and account limit, worded by rules.instance_blockers()."""
    blockers = {
        violation.key: violation.message
        for violation in rules.instance_blockers(
            instance_status=facts.status,
            engine_version=facts.engine_version,
            account_count=facts.account_count or 0,
        )
    }
    passed = {
        # The status as the instance list names it (运行中 in Chinese), not the API's word.
        "status": _("The instance is running (status %(status)s).")
        % {"status": api_labels.instance_status_label(facts.status)},
        "engine": _("Redis %(engine)s supports accounts.") % {"engine": facts.engine_version},
        "account_count": _("%(count)s of %(max)s accounts are used.")
        % {"count": facts.account_count, "max": rules.MAX_ACCOUNTS_PER_INSTANCE},
    }
    checks = []
    for key, what, _message in rules.INSTANCE_BLOCKERS:
        if key in blockers:
            checks.append(Check(what, BLOCKED, blockers[key]))
        elif what == "account_count" and "engine_too_old" in blockers:
            continue  # no accounts below Redis 4.0: the engine check says why
        elif what == "account_count" and facts.account_count is None:
            checks.append(
                Check(what, WARNING, _("The number of accounts on the instance is not known."))
            )
        else:
            checks.append(Check(what, OK, passed[what]))
    return checks


def _name_check(facts: _Facts, account_name: str) -> Check:
    params = {"name": account_name}
    if facts.account_names is None:
        return Check(
            "account_name",
            WARNING,
            _("Whether “%(name)s” already exists on the instance could not be checked.") % params,
        )
    # Compared as the API compares (InvalidAccountName.Duplicate): exactly.
    if account_name in facts.account_names:
        return Check(
            "account_name",
            BLOCKED,
            _("An account named “%(name)s” already exists on this instance.") % params,
        )
    return Check("account_name", OK, _("No account named “%(name)s” exists yet.") % params)


def open_request_check(
    instance: Instance,
    account_name: str,
    exclude_request_id: int | None,
    viewer=None,
    *,
    rival=UNREAD,
) -> Check:
    """``rival``: the other open request (or None), when the caller read it already
    (selectors.visible_request reads it with the request's page)."""
    params = {"name": account_name}
    other = rival
    if other is UNREAD:
        other = (
            open_rivals(
                instance=instance,
                account_name=account_name,
                exclude_request_id=exclude_request_id,
            )
            .only("pk", "requester_id")
            .first()
        )
    if other is not None and viewer is not None and policy.may_see_request(viewer, other):
        return Check(
            "open_request",
            BLOCKED,
            _("Request #%(pk)s for “%(name)s” on this instance is still open.")
            % {**params, "pk": other.pk},
        )
    if other is not None:
        # Another user's request: that it exists, not its number (nor who made it).
        return Check(
            "open_request",
            BLOCKED,
            _("Another open request for “%(name)s” on this instance already exists.") % params,
        )
    return Check("open_request", OK, _("No other open request is for “%(name)s”.") % params)


def _privilege_check(facts: _Facts, privilege: str) -> Check:
    violation = rules.privilege_violation(
        privilege, architecture_type=facts.architecture_type, engine_version=facts.engine_version
    )
    if violation is not None:
        return Check("privilege", BLOCKED, violation.message)
    label = dict(rules.PRIVILEGE_CHOICES).get(privilege, privilege)
    return Check(
        "privilege", OK, _("%(privilege)s is available on this instance.") % {"privilege": label}
    )


def _being_created_check(names: frozenset[str], at_execute: bool) -> Check:
    message = _(
        "Another account is being created on this instance (%(names)s). Alibaba Cloud "
        "refuses a new account until it is available, in about a minute: wait, then try "
        "again."
    ) % {"names": ", ".join(sorted(names))}
    return Check("account_in_progress", BLOCKED if at_execute else WARNING, message)


def _vpc_check(facts: _Facts) -> Check:
    if vpc_auth.is_password_free(facts.vpc_auth_mode):
        return Check("vpc_auth_mode", WARNING, str(vpc_auth.PASSWORD_FREE_WARNING))
    if vpc_auth.is_known(facts.vpc_auth_mode):
        return Check("vpc_auth_mode", OK, str(vpc_auth.PASSWORD_REQUIRED_NOTE))
    return Check("vpc_auth_mode", WARNING, str(vpc_auth.UNKNOWN_NOTE))


def with_name_not_checked(result: PreflightResult) -> PreflightResult:
    """The result, with the name checks said to have not run: the account name breaks
    the naming rules, so it was not looked for on the instance or in open requests."""
    check = Check(
        "account_name",
        BLOCKED,
        _(
            "The name checks did not run: the account name breaks the naming rules "
            "(the form says which)."
        ),
    )
    return replace(result, checks=[*result.checks, check])
