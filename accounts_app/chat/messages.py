"""A request's event as each platform's rich message, in the channel's language.

DingTalk ActionCard, Feishu interactive card, WeCom markdown, Slack Block Kit. The
facts are the request's own fields and names: no message is ever given a password or
a channel's secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts_app.background.delivery import site_url
from accounts_app.models import AccountDrift, AccountRequest


@dataclass(frozen=True)
class Message:
    title: str
    fields: list[tuple[str, str]]
    link_label: str
    link: str
    # Pending: Slack and Feishu cards carry Approve and Reject buttons (accounts_app/
    # services/chat_approvals.py answers them).
    request_id: int = 0
    channel_id: int | None = None  # in the buttons' value: the audit log names the channel
    decidable: bool = False
    approve_label: str = ""
    reject_label: str = ""


def compose(
    event: str,
    account_request: AccountRequest,
    language: str,
    *,
    note: str = "",
    channel_id: int | None = None,
) -> Message:
    """The message about `event`; `note` (a chat decision, said already translated) last."""
    instance = account_request.instance
    approvers = [
        decision.approver.get_username()
        for decision in account_request.decisions.select_related("approver")
        if decision.verdict == decision.Verdict.APPROVE
    ]
    with translation.override(language):
        headline = {
            "submitted": _("Request #%(id)s for %(account)s awaits approval"),
            "approved": _("Request #%(id)s for %(account)s was approved"),
            "rejected": _("Request #%(id)s for %(account)s was rejected"),
            "created": _("Account %(account)s was created (request #%(id)s)"),
            "failed": _("Creating %(account)s failed (request #%(id)s)"),
            "outcome_unknown": _("Creating %(account)s has an unknown outcome (request #%(id)s)"),
            "expired": _("Request #%(id)s for %(account)s expired"),
        }[event]
        fields = [
            (
                _("Instance"),
                f"{instance.name or instance.instance_id} ({instance.instance_id}, "
                f"{instance.region_id})",
            ),
            (_("Instance status"), instance.status),
            (_("Account"), account_request.account_name),
            (_("Privilege"), account_request.account_privilege),
            (_("Requested by"), account_request.requester.get_username()),
            (_("Justification"), account_request.justification[:500]),
            (
                _("Approvals"),
                _("%(done)s of %(needed)s (%(names)s)")
                % {
                    "done": len(approvers),
                    "needed": account_request.approvals_required,
                    "names": ", ".join(approvers) or "-",
                },
            ),
        ]
        if account_request.expires_at:
            # Time-boxed: approvers see when the account goes (UTC: a card has no reader's zone).
            label = _("New expiry") if account_request.kind == "extend" else _("Expires")
            expires = account_request.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            fields.insert(4, (label, expires))
        if note:
            fields.append((_("Decision"), note))
        return Message(
            title=headline % {"id": account_request.pk, "account": account_request.account_name},
            fields=fields,
            link_label=_("Open the request"),
            link=site_url(reverse("request_detail", args=[account_request.pk])),
            request_id=account_request.pk,
            channel_id=channel_id,
            decidable=account_request.is_pending,
            approve_label=_("Approve"),
            reject_label=_("Reject"),
        )


def compose_drift(summary: dict, language: str) -> Message:
    """A sweep's drift summary: how many of each kind, the first few accounts, a link to
    the drift page (notifications.drift_summary says what ``summary`` holds)."""
    labels = dict(AccountDrift.choices)
    with translation.override(language):
        fields = [
            (str(labels.get(kind, kind)), str(count))
            for kind, count in sorted(summary["counts"].items())
        ]
        fields += [
            (_("Account"), f"{account} @ {instance_id}: {labels.get(kind, kind)}")
            for instance_id, account, kind in summary["items"][:MAX_DRIFT_LINES]
        ]
        return Message(
            title=ngettext(
                "The account sweep found %(count)s account that drifted",
                "The account sweep found %(count)s accounts that drifted",
                summary["total"],
            )
            % {"count": summary["total"]},
            fields=fields,
            link_label=_("Open the drift page"),
            link=site_url(reverse("drift")),
        )


# Slack shows ten fields at most: the counts (five kinds at most) and a few accounts.
MAX_DRIFT_LINES = 5


def _markdown(message: Message) -> str:
    lines = [f"**{label}**: {value}" for label, value in message.fields]
    return "\n\n".join([f"### {message.title}", *lines, f"[{message.link_label}]({message.link})"])


def payload(kind: str, message: Message) -> dict:
    """The JSON body of each platform's rich message."""
    if kind == "dingtalk":
        # Reference: https://open.dingtalk.com/document/orgapp/custom-robot-access
        return {
            "msgtype": "actionCard",
            "actionCard": {
                "title": message.title,
                "text": _markdown(message),
                "singleTitle": message.link_label,
                "singleURL": message.link,
            },
        }
    if kind == "feishu":
        # Reference: https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot
        return {
            "msg_type": "interactive",
            "card": {
                "header": {"title": {"tag": "plain_text", "content": message.title}},
                "elements": [
                    {
                        "tag": "div",
                        "fields": [
                            {
                                "is_short": False,
                                "text": {"tag": "lark_md", "content": f"**{label}**: {value}"},
                            }
                            for label, value in message.fields
                        ],
                    },
                    {
                        "tag": "action",
                        "actions": [
                            {
                                "tag": "button",
                                "text": {"tag": "plain_text", "content": message.link_label},
                                "type": "default",
                                "url": message.link,
                            },
                            *_feishu_buttons(message),
                        ],
                    },
                ],
            },
        }
    if kind == "wecom":
        # Reference: https://developer.work.weixin.qq.com/document/path/91770
        return {"msgtype": "markdown", "markdown": {"content": _markdown(message)}}
    # Slack. Reference: https://api.slack.com/messaging/webhooks and
    # https://api.slack.com/reference/block-kit/blocks
    return {
        "text": message.title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{label}*\n{value}"}
                    for label, value in message.fields
                ][:10],
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "open",
                        "text": {"type": "plain_text", "text": message.link_label},
                        "url": message.link,
                    },
                    *_slack_buttons(message),
                ],
            },
        ],
    }


def _slack_buttons(message: Message) -> list[dict]:
    # Reference: https://api.slack.com/reference/block-kit/block-elements#button
    # Without the app's signing secret no click could be verified: no buttons.
    if not message.decidable or not settings.SLACK_SIGNING_SECRET:
        return []
    return [
        {
            "type": "button",
            "action_id": verdict,
            "style": style,
            "value": f"{message.request_id}:{message.channel_id or ''}",
            "text": {"type": "plain_text", "text": label},
        }
        for verdict, style, label in (
            ("approve", "primary", message.approve_label),
            ("reject", "danger", message.reject_label),
        )
    ]


def _feishu_buttons(message: Message) -> list[dict]:
    # A button with a value calls the app's card callback URL back.
    # Reference: https://open.feishu.cn/document/uAjLw4CM/ukzMukzMukzM/feishu-cards/card-callback-communication
    # Without the app's Encrypt Key no click could be verified: no buttons.
    if not message.decidable or not settings.FEISHU_ENCRYPT_KEY:
        return []
    return [
        {
            "tag": "button",
            "type": kind,
            "text": {"tag": "plain_text", "content": label},
            "value": {
                "action": verdict,
                "request_id": message.request_id,
                "channel": message.channel_id,
            },
        }
        for verdict, kind, label in (
            ("approve", "primary", message.approve_label),
            ("reject", "danger", message.reject_label),
        )
    ]
