"""What the dashboard keeps: instances, account requests, decisions and the audit log.

No model has a field that could hold an account password: the password exists
only inside the HTTP request that calls CreateAccount (tests/test_no_password_fields.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import CharField, F, Func, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts_app import vpc_auth
from accounts_app.rules import PRIVILEGE_CHOICES


class Folded(Func):
    """A text in lower case, as an "any case" match compares it: indexed
    (Instance.Meta), such a match is a seek where a case-insensitive LIKE read every
    row. lower() folds what LIKE ignores the case of (ASCII on SQLite). On PostgreSQL
    under the "C" collation, so that a range on it means "starts with" (see
    selectors.audit._starts_with) and the index's expression is the query's."""

    function = "LOWER"
    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        template = '%(function)s(%(expressions)s COLLATE "C")'
        return self.as_sql(compiler, connection, template=template, **extra)


class Instance(models.Model):
    """One ApsaraDB for Redis instance as last seen by DescribeInstances."""

    instance_id = models.CharField(_("instance ID"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=128, blank=True)
    region_id = models.CharField(_("region"), max_length=32, db_index=True)
    engine_version = models.CharField(_("engine version"), max_length=16)
    architecture_type = models.CharField(_("architecture"), max_length=16)
    edition_type = models.CharField(_("edition"), max_length=32, blank=True)
    instance_type = models.CharField(_("type"), max_length=32, blank=True)
    status = models.CharField(_("status"), max_length=32)
    instance_class = models.CharField(_("class"), max_length=64, blank=True)
    connection_domain = models.CharField(_("connection domain"), max_length=255, blank=True)
    port = models.PositiveIntegerField(_("port"), null=True, blank=True)
    # DescribeInstanceAttribute's word, as the API says it: "Open" = a password is
    # required (the default), "Close" = password-free access from the VPC; empty until a
    # sync has asked (accounts_app/vpc_auth.py).
    vpc_auth_mode = models.CharField(_("VPC authentication mode"), max_length=16, blank=True)
    # Accounts a user created (AccountType Normal), the ones CreateAccount's limit of 18
    # counts; built-in Super accounts are not counted. None: not known (not synced since
    # the upgrade, or an engine older than 4.0, which has no accounts to list).
    account_count = models.PositiveSmallIntegerField(_("accounts"), null=True, blank=True)
    is_gone = models.BooleanField(_("gone"), default=False)
    synced_at = models.DateTimeField(_("last synced"))
    # When the account sweep last read this instance's accounts (services/drift.py).
    accounts_swept_at = models.DateTimeField(_("accounts last read"), null=True, blank=True)
    # The instance's tags, key -> value, as DescribeInstances lists them (Tags.Tag[]):
    # what teams label instances with (env, team, app), and what search matches.
    tags = models.JSONField(_("tags"), default=dict, blank=True)

    class Meta:
        verbose_name = _("instance")
        verbose_name_plural = _("instances")
        ordering = ["region_id", "instance_id"]
        # The filter choices (selectors.instances.filter_choices) step through the
        # indexes of status, engine_version, architecture_type and region_id.
        indexes = [
            models.Index(fields=["name"]),
            # The audit log's instance filter and search match names in any case.
            models.Index(Folded("name"), name="instance_name_folded"),
            models.Index(fields=["status"]),
            models.Index(fields=["engine_version"]),
            models.Index(fields=["architecture_type"]),
            # The list's order: the first page read from the index, not sorted from all.
            models.Index(fields=["region_id", "instance_id"], name="instance_list_order"),
            # The last sync (selectors.instances.inventory_summary): one index entry,
            # where MAX over an index that synced_at does not lead read every row.
            models.Index(fields=["-synced_at"], name="instance_newest_sync"),
        ]

    def __str__(self) -> str:
        return f"{self.instance_id} ({self.name})" if self.name else self.instance_id

    @property
    def password_free(self) -> bool:
        """Password-free access from the VPC is on (VpcAuthMode ``Close``)."""
        return vpc_auth.is_password_free(self.vpc_auth_mode)

    @property
    def vpc_auth_known(self) -> bool:
        return vpc_auth.is_known(self.vpc_auth_mode)


class RequestKind(models.TextChoices):
    """What a request asks for: each is one Alibaba operation (section 7 of the API reference)."""

    CREATE = "create", _("Create an account")
    DELETE = "delete", _("Delete an account")
    PRIVILEGE = "privilege", _("Change an account's privilege")
    RESET_PASSWORD = "reset_password", _("Reset an account's password")
    DESCRIPTION = "description", _("Change an account's description")
    # No Alibaba call: the dashboard records who owns an account made outside it.
    ADOPT = "adopt", _("Adopt an account made outside the dashboard")
    # No Alibaba call: a time-boxed account's expiry moves (services/expiry.py).
    EXTEND = "extend", _("Extend an account's expiry")


class ApprovalPolicy(models.Model):
    """How many distinct approvers a request for one privilege needs."""

    account_privilege = models.CharField(_("privilege"), max_length=32, choices=PRIVILEGE_CHOICES)
    approvals_required = models.PositiveSmallIntegerField(_("approvals required"), default=1)
    # Which kind of request the row is for. A change without a row of its own asks what
    # creating an account of that privilege asks (services/lifecycle.py).
    kind = models.CharField(
        _("kind of request"), max_length=16, choices=RequestKind, default=RequestKind.CREATE
    )
    # Fleet requests (one account on many instances): the most instances one request may
    # name, and the size above which one more approval is needed; empty: no limit.
    max_fleet_size = models.PositiveSmallIntegerField(_("largest fleet"), null=True, blank=True)
    extra_approval_above = models.PositiveSmallIntegerField(
        _("one more approval above"), null=True, blank=True
    )
    # Time-boxed accounts (read from the creation row of a privilege): the longest
    # lifetime a request may ask, in days from the request (empty: no maximum), and
    # whether an account may have no expiry at all.
    max_lifetime_days = models.PositiveSmallIntegerField(
        _("longest lifetime (days)"), null=True, blank=True
    )
    allow_no_expiry = models.BooleanField(_("no expiry allowed"), default=True)

    class Meta:
        verbose_name = _("approval policy")
        verbose_name_plural = _("approval policies")
        constraints = [
            models.CheckConstraint(
                condition=Q(approvals_required__gte=1), name="policy_needs_an_approver"
            ),
            models.UniqueConstraint(
                fields=["kind", "account_privilege"], name="one_policy_per_kind_and_privilege"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_kind_display()}, {self.get_account_privilege_display()}: "
            f"{self.approvals_required}"
        )

    def save(self, *args, **kwargs):
        # Enforced here too, not only in forms: a command or a shell cannot go below it.
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.approvals_required is not None and self.approvals_required < settings.MIN_APPROVALS:
            raise ValidationError(
                {
                    "approvals_required": _(
                        "At least %(floor)s approvals are required (MIN_APPROVALS): no "
                        "policy may ask for fewer."
                    )
                    % {"floor": settings.MIN_APPROVALS}
                }
            )


class RoleGrant(models.Model):
    """Someone was given a role, a permission, staff or superuser status, or an account.

    Written with the audit event of that change, so that policy can ask who made an
    approver an approver, and when (four eyes that survive an administrator).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_grants"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    what = models.CharField(max_length=150)  # "group Approvers", "superuser", "account"...
    granted_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.what} to user #{self.user_id}"


class CallWindow(models.Model):
    """Calls counted against one budget (a user's live Alibaba checks, an API token's
    calls) in one fixed window of time (accounts_app/services/call_budgets.py).

    In the database, like the circuit breaker: Django's default cache is per process, so
    several web servers would each allow the full rate.
    """

    key = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "window_start"], name="one_count_per_window")
        ]

    def __str__(self) -> str:
        return f"{self.key} from {self.window_start:%Y-%m-%d %H:%M:%S}: {self.calls}"


class RequestStatus(models.TextChoices):
    PENDING = "pending", _("Pending approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")
    EXECUTING = "executing", _("Creating")
    CREATED = "created", _("Created")
    FAILED = "failed", _("Failed")
    NEEDS_RECONCILIATION = "needs_reconciliation", _("Needs reconciliation")


# A request that may still lead to CreateAccount. One open request per account
# name and instance (the constraint below), and pre-flight counts these.
OPEN_STATUSES = [
    RequestStatus.PENDING,
    RequestStatus.APPROVED,
    RequestStatus.EXECUTING,
    RequestStatus.NEEDS_RECONCILIATION,
]
# Not created yet, and it still may be: pre-flight is worth showing, and the
# requester may cancel.
AWAITING_CREATION_STATUSES = [RequestStatus.PENDING, RequestStatus.APPROVED]


def stale_cutoffs(now: datetime) -> dict[str, tuple[str, datetime]]:
    """Status -> (the field its time runs from, the oldest value still fresh).

    A pending request lives REQUEST_TTL_DAYS from its submission, an approval
    APPROVAL_TTL_HOURS from the last approval. The Python predicate
    (AccountRequest.is_stale) and the query (AccountRequestQuerySet.stale) both
    read this one table.
    """
    return {
        RequestStatus.PENDING: ("created_at", now - timedelta(days=settings.REQUEST_TTL_DAYS)),
        RequestStatus.APPROVED: (
            "approved_at",
            now - timedelta(hours=settings.APPROVAL_TTL_HOURS),
        ),
    }


class AccountRequestQuerySet(models.QuerySet):
    def open(self) -> AccountRequestQuerySet:
        return self.filter(status__in=OPEN_STATUSES)

    def stale(self, now: datetime) -> AccountRequestQuerySet:
        condition = Q(pk__in=[])
        for status, (field, cutoff) in stale_cutoffs(now).items():
            condition |= Q(status=status, **{f"{field}__lt": cutoff})
        return self.filter(condition)


class AccountRequest(models.Model):
    """A request for one account. Its parameters are frozen once submitted."""

    Status = RequestStatus
    OPEN_STATUSES = OPEN_STATUSES
    # Not a column: the seq of the audit event this process last wrote for this object
    # (audit.writer.record_event); its notifications are keyed by it.
    last_event_seq: int | None = None

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="account_requests",
        verbose_name=_("requester"),
    )
    instance = models.ForeignKey(
        Instance, on_delete=models.PROTECT, related_name="requests", verbose_name=_("instance")
    )
    account_name = models.CharField(_("account name"), max_length=16)
    account_privilege = models.CharField(_("privilege"), max_length=32, choices=PRIVILEGE_CHOICES)
    account_description = models.CharField(_("description"), max_length=256, blank=True)
    account_type = models.CharField(_("account type"), max_length=16, default="Normal")
    justification = models.TextField(_("justification"), max_length=2000)
    status = models.CharField(
        _("status"), max_length=32, choices=Status, default=Status.PENDING, db_index=True
    )
    approvals_required = models.PositiveSmallIntegerField(_("approvals required"))
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    executing_since = models.DateTimeField(_("executing since"), null=True, blank=True)
    # A change Alibaba is still applying (the account is Unavailable): set when the call
    # succeeds, cleared once DescribeAccounts shows it settled (background/follow.py).
    settling_since = models.DateTimeField(_("settling since"), null=True, blank=True)
    executed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("executed by"),
    )
    alibaba_request_id = models.CharField(_("Alibaba RequestId"), max_length=64, blank=True)
    error_code = models.CharField(_("error code"), max_length=128, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    copied_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="copies",
        verbose_name=_("copied from"),
    )
    # How many instances a fleet request names (its FleetTarget rows); 0: a request for
    # one account on `instance` alone. A fleet request's `instance` is its first target.
    fleet_size = models.PositiveSmallIntegerField(_("instances"), default=0)
    # A change to an existing account instead of a creation; account_privilege is then
    # the privilege asked for (a grant) or the account's own, and current_privilege
    # the account's privilege when the change was requested.
    kind = models.CharField(
        _("kind of request"), max_length=16, choices=RequestKind, default=RequestKind.CREATE
    )
    current_privilege = models.CharField(
        _("privilege before"), max_length=32, choices=PRIVILEGE_CHOICES, blank=True, default=""
    )
    # Time-boxed accounts (services/expiry.py). A creation or an adoption: when the
    # account is deleted (moved by extensions); an extension: the new expiry it asks.
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    # When the account's expiry was carried out (deleted, or found gone); empty while
    # the account lives, and while an expiry's deletion fails (overdue).
    expiry_done_at = models.DateTimeField(_("expiry carried out"), null=True, blank=True)
    # The request that made the account this one is about: an expiry's deletion, an
    # extension.
    about = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="follow_ups",
        verbose_name=_("about the account of"),
    )

    objects = AccountRequestQuerySet.as_manager()

    class Meta:
        verbose_name = _("account request")
        verbose_name_plural = _("account requests")
        ordering = ["-created_at"]
        permissions = [
            ("request_account", _("Can request and create accounts")),
            ("approve_request", _("Can approve and reject requests")),
            ("view_everything", _("Can read every request and the audit log")),
        ]
        constraints = [
            # One open request per account name and instance: two approvals of
            # the same name would race each other to CreateAccount.
            models.UniqueConstraint(
                fields=["instance", "account_name"],
                condition=Q(status__in=OPEN_STATUSES),
                name="one_open_request_per_account",
            ),
        ]
        indexes = [
            models.Index(fields=["requester", "-created_at"]),
            models.Index(fields=["status", "-created_at"]),
            # "Recently created accounts" on the dashboard.
            models.Index(fields=["status", "-finished_at"]),
            # Expiries due, and reminders (services/expiry.py).
            models.Index(fields=["status", "expires_at"]),
            # The request list's order, newest first: a search walks it and stops at a
            # page's rows (selectors/request_list.py); the instance makes it covering.
            models.Index(fields=["created_at", "id", "instance"], name="request_list_order"),
        ]

    def __str__(self) -> str:
        # Shown by the admin, in the reader's language.
        return gettext("#%(pk)s %(name)s on %(instance)s") % {
            "pk": self.pk,
            "name": self.account_name,
            "instance": self.instance.instance_id,
        }

    Kind = RequestKind

    @property
    def is_change(self) -> bool:
        """A change to an existing account, not a creation."""
        return self.kind != RequestKind.CREATE

    @property
    def needs_password(self) -> bool:
        """The requester types a password at execution (creation, password reset)."""
        return self.kind in (RequestKind.CREATE, RequestKind.RESET_PASSWORD)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_fleet(self) -> bool:
        return self.fleet_size > 0

    @property
    def is_pending(self) -> bool:
        return self.status == RequestStatus.PENDING

    @property
    def is_approved(self) -> bool:
        return self.status == RequestStatus.APPROVED

    @property
    def is_created(self) -> bool:
        return self.status == RequestStatus.CREATED

    @property
    def needs_reconciliation(self) -> bool:
        return self.status == RequestStatus.NEEDS_RECONCILIATION

    @property
    def awaits_creation(self) -> bool:
        return self.status in AWAITING_CREATION_STATUSES

    @property
    def is_cancellable(self) -> bool:
        return self.awaits_creation

    @property
    def makes_account(self) -> bool:
        """The request that made (or adopted) an account: the one its expiry is kept on."""
        return self.kind in (RequestKind.CREATE, RequestKind.ADOPT)

    @property
    def account_expires_at(self) -> datetime | None:
        """When the account this request made is deleted; None: no expiry (or gone)."""
        if not (self.makes_account and self.is_created) or self.expiry_done_at:
            return None
        return self.expires_at

    def is_overdue(self, now: datetime) -> bool:
        """Its expiry has passed and the account is not deleted yet (services/expiry.py)."""
        expires = self.account_expires_at
        return expires is not None and expires <= now

    def is_stale(self, now: datetime) -> bool:
        field, cutoff = stale_cutoffs(now).get(self.status, (None, None))
        value = getattr(self, field) if field else None
        return value is not None and value < cutoff

    @property
    def approval_count(self) -> int:
        """Distinct approvals so far (decisions are unique per approver); reads
        prefetched decisions when the caller loaded them."""
        return sum(1 for d in self.decisions.all() if d.verdict == Decision.Verdict.APPROVE)


class Decision(models.Model):
    """One approver's approval or rejection of a request."""

    class Verdict(models.TextChoices):
        APPROVE = "approve", _("Approved")
        REJECT = "reject", _("Rejected")

    request = models.ForeignKey(
        AccountRequest,
        on_delete=models.PROTECT,
        related_name="decisions",
        verbose_name=_("request"),
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="decisions",
        verbose_name=_("approver"),
    )
    # A copy of request.requester, so that the database itself can refuse a
    # decision by the requester (four eyes), superusers included.
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requester"),
    )
    verdict = models.CharField(_("decision"), max_length=16, choices=Verdict)
    comment = models.TextField(_("comment"), max_length=2000, blank=True)
    created_at = models.DateTimeField(_("decided at"), auto_now_add=True)

    class Meta:
        verbose_name = _("decision")
        verbose_name_plural = _("decisions")
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(approver=F("requester")), name="nobody_decides_their_own_request"
            ),
            models.UniqueConstraint(
                fields=["request", "approver"], name="one_decision_per_approver"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} of request #{self.request_id} by user #{self.approver_id}"


class UserPreference(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    time_zone = models.CharField(_("time zone"), max_length=64)

    def __str__(self) -> str:
        return f"preferences of user #{self.user_id}"


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit events cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Audit events cannot be deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Audit events cannot be updated.")


class AuditEvent(models.Model):
    """One line of the append-only, HMAC-chained audit log.

    Written only by accounts_app.audit.record_event(), inside the transaction of
    the change it records. Updates and deletes are refused here, by the
    queryset and by database triggers (migration 0003).
    """

    class Action(models.TextChoices):
        REQUEST_SUBMITTED = "request_submitted", _("Request submitted")
        REQUEST_APPROVED = "request_approved", _("Request approved")
        REQUEST_REJECTED = "request_rejected", _("Request rejected")
        REQUEST_CANCELLED = "request_cancelled", _("Request cancelled")
        REQUEST_EXPIRED = "request_expired", _("Request expired")
        EXECUTION_STARTED = "execution_started", _("Execution started")
        ACCOUNT_CREATED = "account_created", _("Account created")
        EXECUTION_FAILED = "execution_failed", _("Execution failed")
        OUTCOME_UNKNOWN = "outcome_unknown", _("Outcome unknown")
        RECONCILED = "reconciled", _("Reconciled")
        ACCOUNT_DELETED = "account_deleted", _("Account deleted")
        PRIVILEGE_GRANTED = "privilege_granted", _("Account privilege changed")
        PASSWORD_RESET = "password_reset", _("Account password reset")
        DESCRIPTION_CHANGED = "description_changed", _("Account description changed")
        DRIFT_FOUND = "drift_found", _("Drift found")
        ACCOUNT_ADOPTED = "account_adopted", _("Account adopted")
        ACCOUNTS_SWEPT = "accounts_swept", _("Accounts read again")
        EXPIRY_EXTENDED = "expiry_extended", _("Account expiry extended")
        ACCOUNT_EXPIRED = "account_expired", _("Account expired")
        LOGIN = "login", _("Signed in")
        LOGIN_FAILED = "login_failed", _("Sign-in failed")
        LOGOUT = "logout", _("Signed out")
        PERMISSION_DENIED = "permission_denied", _("Permission denied")
        INSTANCES_SYNCED = "instances_synced", _("Instances synced")
        EXPORT_DOWNLOADED = "export_downloaded", _("Export downloaded")
        POLICY_CHANGED = "policy_changed", _("Approval policy changed")
        USER_CHANGED = "user_changed", _("User changed")
        ROLE_CHANGED = "role_changed", _("Roles changed")
        GROUP_CHANGED = "group_changed", _("Group changed")
        CHECKPOINT_PUBLISHED = "checkpoint_published", _("Audit checkpoint published")
        ROLES_CHANGED = "roles_changed", _("Roles changed by the identity provider")
        MFA_ENROLLED = "mfa_enrolled", _("Two-factor authentication turned on")
        MFA_USED = "mfa_used", _("Second factor used")
        MFA_FAILED = "mfa_failed", _("Second factor refused")

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("Success")
        FAILURE = "failure", _("Failure")
        UNKNOWN = "unknown", _("Unknown")
        DENIED = "denied", _("Denied")

    # Position in the chain: 1, 2, 3... with no gaps. Also the pagination key.
    seq = models.BigIntegerField(_("sequence number"), unique=True)
    created_at = models.DateTimeField(_("time"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    actor_name = models.CharField(_("actor"), max_length=150, blank=True)
    source_ip = models.GenericIPAddressField(_("source IP"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    action = models.CharField(_("action"), max_length=32, choices=Action)
    request = models.ForeignKey(
        AccountRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("request"),
    )
    instance_id = models.CharField(_("instance ID"), max_length=64, blank=True)
    region_id = models.CharField(_("region"), max_length=32, blank=True)
    account_name = models.CharField(_("account name"), max_length=64, blank=True)
    account_privilege = models.CharField(_("privilege"), max_length=32, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome)
    alibaba_request_id = models.CharField(_("Alibaba RequestId"), max_length=64, blank=True)
    error_code = models.CharField(_("error code"), max_length=128, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64)
    # A sentence the system wrote, as its identifier in accounts_app/audit/messages.py and
    # its parameters (canonical JSON), said in the reader's language. Hashed only when
    # set, so events written before these fields existed verify as they always did.
    # (db_default too: bulk writers such as seed_audit insert rows without them.)
    message_id = models.CharField(
        _("message"), max_length=64, blank=True, default="", db_default=""
    )
    message_params = models.TextField(
        _("message parameters"), blank=True, default="", db_default=""
    )

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["action", "-seq"]),
            models.Index(fields=["actor", "-seq"]),
            models.Index(fields=["actor_name", "-seq"]),
            models.Index(fields=["instance_id", "-seq"]),
            models.Index(fields=["account_name", "-seq"]),
            models.Index(fields=["outcome", "-seq"]),
            models.Index(fields=["request", "-seq"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_name or '-'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events cannot be deleted.")


class AuditChainHead(models.Model):
    """The newest event's position and hash: one row, locked by every writer.

    Locking this row (SELECT ... FOR UPDATE on PostgreSQL, the IMMEDIATE write
    lock on SQLite) makes concurrent writers take turns, so the chain cannot fork.
    """

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)
    # The newest event's time, so that a writer need not read that event to keep time
    # from going backwards along the chain. Empty on a head written before it existed.
    last_event_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"audit chain head at #{self.seq}"


class CircuitBreaker(models.Model):
    """Shared state of the circuit breaker around the Alibaba client.

    In the database, not in process memory: every app server behind the load
    balancer sees the same state (accounts_app/services/breaker.py).
    """

    name = models.CharField(max_length=64, unique=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    open_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


# The background engine's tables (accounts_app/background/models.py).
from accounts_app.background.models import (  # noqa: E402, F401
    NotificationDelivery,
    PeriodicRun,
    SyncRegionCount,
    SyncRun,
    TaskFailure,
    WorkerHeartbeat,
)


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 digest is kept (the token is 32 random
    bytes: a slow hash buys nothing), with a short prefix the owner recognises it by."""

    SCOPES = ("read", "request", "approve", "execute", "audit")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("user"),
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16)
    digest = models.CharField(_("digest"), max_length=64, unique=True)
    scopes = models.CharField(_("scopes"), max_length=64)  # space-separated SCOPES
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


class ApiIdempotencyKey(models.Model):
    """The first outcome of an execute call under one Idempotency-Key.

    body_digest is an HMAC (keyed with SECRET_KEY) of the request's id and the body's
    fields other than the password: the password is never hashed into anything kept.
    response holds what the API answered, which never includes the password.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    body_digest = models.CharField(max_length=64)
    request = models.ForeignKey(AccountRequest, on_delete=models.CASCADE, related_name="+")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # None: running
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="one_idempotency_key_per_user")
        ]

    def __str__(self) -> str:
        return f"idempotency key of user #{self.user_id} for request #{self.request_id}"


# Chat channels (accounts_app/chat/models.py).
from accounts_app.chat.models import ChatChannel, ChatIdentity, ChatNonce  # noqa: E402, F401


class FleetTarget(models.Model):
    """One instance of a fleet request, frozen at submission, with its own outcome.

    The request's approval covers every target; each target is claimed
    (waiting or failed -> creating) by a compare-and-set before its CreateAccount,
    so concurrent runs call it at most once per claim (accounts_app/services/fleet.py).
    """

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        CREATING = "creating", _("Creating")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Unknown")

    request = models.ForeignKey(AccountRequest, on_delete=models.PROTECT, related_name="targets")
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="fleet_targets")
    position = models.PositiveSmallIntegerField()  # the order the requester confirmed
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.WAITING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error_code = models.CharField(_("error code"), max_length=128, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    alibaba_request_id = models.CharField(_("Alibaba RequestId"), max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request", "position"]
        constraints = [
            models.UniqueConstraint(fields=["request", "instance"], name="one_target_per_instance")
        ]

    def __str__(self) -> str:
        return f"request #{self.request_id} on instance #{self.instance_id}: {self.status}"


class AccountDrift(models.TextChoices):
    """How an account differs from what the dashboard did (services/drift.py)."""

    UNMANAGED = "unmanaged", _("Not made through the dashboard")
    GONE = "gone", _("Gone")
    PRIVILEGE = "privilege", _("Privilege changed outside the dashboard")
    DESCRIPTION = "description", _("Description changed outside the dashboard")
    UNDELETED = "undeleted", _("Should have been deleted")


class KnownAccount(models.Model):
    """An account on an instance as the last sweep saw it (DescribeAccounts), whoever
    made it, with how it differs from what the dashboard did (``drift``, empty: none)."""

    Drift = AccountDrift

    instance = models.ForeignKey(
        Instance,
        on_delete=models.CASCADE,
        related_name="known_accounts",
        verbose_name=_("instance"),
    )
    account_name = models.CharField(_("account name"), max_length=64)
    account_type = models.CharField(_("account type"), max_length=16, blank=True)
    privilege = models.CharField(_("privilege"), max_length=32, blank=True)
    status = models.CharField(_("status"), max_length=16, blank=True)
    description = models.CharField(_("description"), max_length=256, blank=True)
    is_gone = models.BooleanField(_("gone"), default=False)
    # The request that created it, when the dashboard did.
    created_by = models.ForeignKey(
        AccountRequest,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created through"),
    )
    drift = models.CharField(_("drift"), max_length=16, choices=AccountDrift, blank=True)
    first_seen_at = models.DateTimeField(_("first seen"))
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    swept_at = models.DateTimeField(_("last swept"))

    class Meta:
        ordering = ["instance_id", "account_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "account_name"], name="one_known_account_per_name"
            )
        ]
        indexes = [models.Index(fields=["drift", "instance"])]

    def __str__(self) -> str:
        return f"{self.account_name} on {self.instance_id}"
