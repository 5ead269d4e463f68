"""The sentences the system writes into the audit log: one catalogue, one identifier each.

An event keeps the identifier and its parameters (both covered by the HMAC chain, see
chain.py), never the sentence, so the audit page, the export and the API say it in the
reader's language. What a user typed stays in the event's comment, as typed.

An identifier is kept for ever once events carry it: reword its English text (and its
translation) freely, but never reuse an identifier for another meaning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from accounts_app.alibaba.errors import human_message_for
from accounts_app.translations import translated

UNAVAILABLE = _(
    "The Alibaba Cloud API is unavailable right now: its last calls failed, so the "
    "dashboard stopped calling it for a moment. Nothing was sent and nothing was created. "
    "Try again in a minute."
)

# Identifier -> its English text under gettext, with %(name)s for each parameter.
MESSAGES = {
    # The workflow.
    "request.expired_pending": _("Expired while waiting for approval."),
    "request.expired_approved": _("Expired after approval, before the account was created."),
    "execution.unavailable": UNAVAILABLE,
    "execution.stopped": _("The execution stopped before its outcome was known."),
    "reconcile.found": _("Found by DescribeAccounts: the account exists."),
    "reconcile.not_found": _(
        "Not found by DescribeAccounts: nothing was created; the approval stands."
    ),
    "reconcile.change_made": _("Seen by DescribeAccounts: the change was made."),
    "reconcile.change_not_made": _(
        "Not seen by DescribeAccounts: nothing was changed; the approval stands."
    ),
    # Refusals.
    "denied.needs": _("%(method)s %(path)s refused: it needs %(needs)s."),
    "denied.needs_because": _("%(method)s %(path)s refused: it needs %(needs)s (%(reason)s)."),
    "chat.refused": _("Refused from %(where)s: %(reason)s"),
    "chat.not_linked": _("the chat user is not linked"),
    "chat.own_request": _("their own request"),
    "chat.not_approver": _("not an approver"),
    "chat.needs_page": _("this privilege is decided on the dashboard's page"),
    "chat.refused_no_request": _("Refused from %(where)s: there is no request %(request_id)s."),
    # A chat refusal's reasons, said inside chat.refused.
    "chat.stale": _("timestamp missing or older than five minutes"),
    "chat.bad_signature": _("signature does not match"),
    "chat.no_signature": _("signature missing"),
    "chat.unknown_action": _("unknown action"),
    "chat.bad_token": _("verification token does not match"),
    "chat.replayed": _("replayed"),
    "chat.secret_not_set": _("the platform's signing secret is not set"),
    "chat.cannot_decrypt": _("cannot decrypt"),
    "chat.malformed": _("malformed callback"),
    "chat.not_decidable": _("the request cannot be decided in its current state"),
    # Fleet requests.
    "fleet.submitted": _("Fleet request on %(count)s instances."),
    "fleet.run": _("Run over the fleet's %(count)s instances."),
    # The inventory.
    "sync.summary": _(
        "%(seen)s instances in %(regions_ok)s of %(regions)s regions: %(created)s new, "
        "%(updated)s changed, %(unchanged)s unchanged, %(gone)s gone."
    ),
    "sync.summary_failed": _(
        "%(seen)s instances in %(regions_ok)s of %(regions)s regions: %(created)s new, "
        "%(updated)s changed, %(unchanged)s unchanged, %(gone)s gone. "
        "Failed (%(failed)s): %(failures)s"
    ),
    # The account sweep (services/drift.py): each new drift, and a sweep asked for by hand.
    "drift.unmanaged": _("Not made through the dashboard: found by the account sweep."),
    "drift.gone": _("Made through the dashboard, and no longer listed by DescribeAccounts."),
    "drift.privilege": _("Privilege changed outside the dashboard: %(privilege)s now."),
    "drift.description": _("Description changed outside the dashboard."),
    "drift.undeleted": _("Deleted through the dashboard, and still listed by DescribeAccounts."),
    "accounts.read_again": _(
        "Accounts read again by hand: %(accounts)s listed, %(new_drift)s new drift."
    ),
    # Signing in.
    "login.local": _("Local password."),
    "login.break_glass": _("Break-glass local password."),
    "login.idp": _("Through the identity provider: issuer %(issuer)s, subject %(subject)s."),
    "login.idp_mfa": _(
        "Through the identity provider: issuer %(issuer)s, subject %(subject)s; second "
        "factor asserted (amr %(amr)s)."
    ),
    "login.reauthenticated": _("Re-authenticated."),
    "login.failed": _("Username: %(username)s."),
    "login.failed_local_off": _(
        "Username: %(username)s (local sign-in is off but for break-glass users)."
    ),
    "login.locked_out": _("Locked out after %(limit)s failed sign-ins: username %(username)s."),
    "login.idp_refused": _("Sign-in refused by %(provider)s (%(error)s): %(reason)s"),
    "roles.from_idp": _(
        "From the identity provider: issuer %(issuer)s, subject %(subject)s; added: "
        "%(added)s; removed: %(removed)s; groups: %(groups)s."
    ),
    "mfa.enrolled": _("TOTP and recovery codes turned on."),
    "mfa.enrolment_refused": _("Enrolment code refused."),
    "mfa.used": _("Second factor used: %(kind)s."),
    "mfa.refused": _("Second-factor code refused."),
    "mfa.throttled": _("Too many refused codes: this one was not checked."),
    # Changes to users, groups and policies (the admin, the commands).
    "admin.user_created": _("User %(user)s created (%(flags)s)."),
    "admin.user_changed": _("User %(user)s: %(changes)s."),
    "admin.user_changed_password": _("User %(user)s: %(changes)s; password changed."),
    "admin.user_deleted": _("User %(user)s deleted."),
    "admin.user_groups": _("User %(user)s: groups %(change)s."),
    "admin.user_permissions": _("User %(user)s: permissions %(change)s."),
    "admin.group_permissions": _("Group %(group)s: permissions %(change)s."),
    "admin.group_created": _("Group %(group)s created."),
    "admin.group_renamed": _("Group renamed: %(before)s -> %(group)s."),
    "admin.group_deleted": _("Group %(group)s deleted."),
    "admin.policy_changed": _(
        "Approval policy %(privilege)s: approvals required %(was)s -> %(now)s."
    ),
    "admin.policy_deleted": _(
        "Approval policy %(privilege)s deleted (it required %(was)s; the default applies)."
    ),
    "admin.policy_lifetime_changed": _(
        "Approval policy %(privilege)s: longest lifetime %(was)s -> %(now)s days, no expiry "
        "allowed %(was_open)s -> %(now_open)s."
    ),
    # Time-boxed accounts (services/expiry.py).
    "expiry.due": _(
        "The expiry of the account made by request #%(maker)s came (%(expires)s): the "
        "dashboard deletes it."
    ),
    "expiry.deleted": _("Deleted at its expiry (%(expires)s)."),
    "expiry.gone": _("Its expiry came (%(expires)s) and the account was already gone."),
    "expiry.extended": _("Expiry moved %(was)s -> %(now)s."),
    "expiry.fleet_approval_ended": _(
        "Its expiry came (%(expires)s) before every instance ran: the approval ends, and "
        "the accounts it made are deleted."
    ),
    # The audit log itself.
    "export.filtered": _("%(format)s export of the events matching %(filters)s."),
    "export.all": _("%(format)s export of all events."),
    "export.created_filtered": _("%(format)s export of the created accounts matching %(filters)s."),
    "export.created_all": _("%(format)s export of all created accounts."),
}

# A message whose sentence another catalogue already words: the API's errors.
RENDERERS: dict[str, Callable[[dict], str]] = {
    "execution.api_error": lambda params: str(human_message_for(params["code"])),
}


@dataclass(frozen=True)
class AuditMessage:
    """A catalogue identifier and its parameters (strings and numbers)."""

    id: str
    params: dict = field(default_factory=dict)

    def params_text(self) -> str:
        """The parameters as the event stores and hashes them: canonical JSON."""
        return canonical_params(self.params)


def message(message_id: str, **params) -> AuditMessage:
    """The message to record; an identifier outside the catalogue is a bug, caught here."""
    if message_id not in MESSAGES and message_id not in RENDERERS:
        raise KeyError(f"{message_id!r} is not in the audit message catalogue")
    return AuditMessage(message_id, params)


def canonical_params(params: dict) -> str:
    if not params:
        return ""
    return json.dumps(params, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def render(message_id: str, params_text: str) -> str:
    """The message in the active language ("" for an event without one)."""
    if not message_id:
        return ""
    params = json.loads(params_text) if params_text else {}
    # A parameter that is itself an identifier (a chat refusal's reason) is said too.
    params = {
        name: render(value, "") if isinstance(value, str) and value in MESSAGES else value
        for name, value in params.items()
    }
    if message_id in RENDERERS:
        return RENDERERS[message_id](params)
    if message_id not in MESSAGES:
        # Written by a newer version of the dashboard: say what is known.
        return f"{message_id} {params_text}".strip()
    text = translated(MESSAGES, message_id)
    return text % params if params else text


def event_text(event) -> str:
    """What an event says: its message in the reader's language, then its comment."""
    said = render(event.message_id, event.message_params)
    return f"{said} {event.comment}".strip() if said else event.comment
