"""The request form and the execute form, validated with accounts_app.rules.

The same rules are rendered into the page (rules.browser_spec) for the browser
to check as the user types; these forms check them again on the server.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy as _

from accounts_app import policy, rules
from accounts_app.forms.instance_picker import InstanceField
from accounts_app.forms.rendering import WIDGET_WRITER
from accounts_app.models import AccountRequest, RequestKind
from accounts_app.selectors.expiry import account_maker
from accounts_app.selectors.instances import blocker_messages

# The quick choices of "expires in" (days), offered in the page.
EXPIRY_CHOICES = (7, 30, 90)
# The kinds that carry an expiry: what makes an account, and an extension (which needs one).
EXPIRY_KINDS = (RequestKind.CREATE, RequestKind.ADOPT, RequestKind.EXTEND)


class ExpiryField(forms.CharField):
    """An expiry as ISO 8601: a date (the account is deleted when that day begins, in the
    user's time zone) or a date-time (without an offset: the user's time zone)."""

    widget = forms.DateInput(attrs={"type": "date"})

    def to_python(self, value) -> datetime | None:
        value = super().to_python(value).strip()
        if not value:
            return None
        try:
            moment = parse_datetime(value)
            day = None if moment else parse_date(value)
        except ValueError:
            moment = day = None
        if day is not None:
            moment = datetime.combine(day, time())
        if moment is None:
            raise forms.ValidationError(
                _("Give a date (2026-12-31) or a date and time (2026-12-31T18:00)."),
                code="invalid",
            )
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        return moment


class DescribedFieldsMixin:
    """Points every input at its message and help elements (aria-describedby),
    so screen readers read the rule that a value breaks."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field_id = self.auto_id % name
            field.widget.attrs["aria-describedby"] = f"{field_id}-rule-msg {field_id}_helptext"


class AccountRequestForm(DescribedFieldsMixin, forms.Form):
    default_renderer = WIDGET_WRITER

    instance_id = InstanceField(label=_("Instance"), max_length=64)
    account_name = forms.CharField(
        label=_("Account name"),
        validators=[rules.django_validator("AccountName")],
        help_text=_("1 to 16 characters: lowercase letters, digits and _, starting with a letter."),
        strip=False,
    )
    account_privilege = forms.ChoiceField(
        label=_("Privilege"), choices=rules.PRIVILEGE_CHOICES, initial=rules.DEFAULT_PRIVILEGE
    )
    account_description = forms.CharField(
        label=_("Description"),
        required=False,
        validators=[rules.django_validator("AccountDescription")],
        help_text=_(
            "Optional. 2 to 256 characters: letters, Chinese characters, digits, _ and -, "
            "starting with a letter."
        ),
        strip=False,
    )
    account_type = forms.ChoiceField(
        label=_("Account type"),
        choices=rules.ACCOUNT_TYPE_CHOICES,
        initial=rules.DEFAULT_ACCOUNT_TYPE,
    )
    justification = forms.CharField(
        label=_("Justification"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Why is this account needed, by whom, and for how long? Approvers read this."),
    )
    # A time-boxed account: in days from now, or on a date; neither: no expiry (when the
    # policy of the privilege allows it). An extension gives its new expiry here too.
    expires_in_days = forms.IntegerField(
        label=_("Expires in (days)"),
        required=False,
        min_value=1,
        max_value=3650,
        widget=forms.NumberInput(attrs={"list": "expiry-choices"}),
        help_text=_("The account is deleted then. Leave both empty for no expiry."),
    )
    expires_at = ExpiryField(
        label=_("Or expires on"),
        required=False,
        help_text=_("The account is deleted when this day begins (your time zone)."),
    )
    # What the request asks for; a change names an existing account, and only the fields
    # of its kind count (KIND_FIELDS).
    kind = forms.ChoiceField(
        label=_("What to do"),
        choices=RequestKind.choices,
        initial=RequestKind.CREATE,
        required=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A creation's policy (approvals, lifetime), once the expiry's check has read it.
        self.creation_rules: tuple[int, policy.Lifetime] | None = None
        for name, param in FIELD_RULES.items():
            self.fields[name].widget.attrs.update(rules.widget_attrs(param))
        self.fields["instance_id"].widget.attrs.update(rules.widget_attrs("InstanceId"))
        self.fields["account_privilege"].widget.attrs["data-instance-select"] = "id_instance_id"
        tomorrow = timezone.localdate() + timedelta(days=1)
        self.fields["expires_at"].widget.attrs["min"] = tomorrow.isoformat()

    @staticmethod
    def initial_from(source: AccountRequest | None) -> dict:
        """The values of an earlier request, for "copy into a new request"."""
        if source is None:
            return {}
        return {
            "instance_id": source.instance.instance_id,
            "account_name": source.account_name,
            "account_privilege": source.account_privilege,
            "account_description": source.account_description,
            "account_type": source.account_type,
            "justification": source.justification,
            "kind": source.kind,
        }

    @staticmethod
    def initial_for(copied_from, query) -> dict:
        """Copied from an earlier request, or prefilled from a link (an instance's page,
        the drift page)."""
        return AccountRequestForm.initial_from(
            copied_from
        ) or AccountRequestForm.initial_from_query(query)

    @staticmethod
    def initial_from_query(query) -> dict:
        """A request prefilled from a link (the drift page's "adopt", "request its deletion")."""
        names = ("kind", "instance_id", "account_name", "account_privilege")
        return {name: query[name] for name in names if query.get(name)}

    def submission(self) -> dict:
        """The cleaned values, as workflow.request_submit() takes them."""
        data = self.cleaned_data
        return {
            "instance": data["instance_id"],
            "account_name": data["account_name"],
            "account_privilege": data["account_privilege"],
            "account_description": data["account_description"],
            "account_type": data["account_type"],
            "justification": data["justification"],
            "kind": data["kind"],
            "expires_at": data.get("expires"),
            "creation_rules": self.creation_rules,
        }

    def clean_kind(self):
        return self.cleaned_data["kind"] or RequestKind.CREATE

    def clean_account_type(self):
        value = self.cleaned_data["account_type"]
        for violation in rules.validate("AccountType", value):
            raise forms.ValidationError(violation.message, code=violation.key)
        return value

    def clean(self):
        cleaned = super().clean()
        instance = cleaned.get("instance_id")
        kind = cleaned.get("kind")
        self._clean_expiry(kind, cleaned, instance)
        if instance is None:
            return cleaned
        for message in blocker_messages(instance):
            self.add_error("instance_id", message)
        if kind and kind != RequestKind.CREATE:
            self._clean_change(kind, cleaned)
            return cleaned
        privilege = cleaned.get("account_privilege")
        if privilege and not rules.privilege_allowed(
            privilege,
            architecture_type=instance.architecture_type,
            engine_version=instance.engine_version,
        ):
            self.add_error(
                "account_privilege",
                rules.privilege_reason(
                    privilege,
                    architecture_type=instance.architecture_type,
                    engine_version=instance.engine_version,
                ),
            )
        return cleaned

    def _clean_expiry(self, kind, cleaned: dict, instance) -> None:
        """cleaned["expires"]: the expiry asked (None: none), checked against the policy
        of the privilege (an adoption's privilege is the account's: checked at submission)."""
        days, on = cleaned.get("expires_in_days"), cleaned.get("expires_at")
        field = "expires_at" if on is not None else "expires_in_days"
        cleaned["expires"] = on
        if days is not None and on is not None:
            self.add_error("expires_at", _("Give a number of days or a date, not both."))
            return
        if days is not None:
            cleaned["expires"] = timezone.now() + timedelta(days=days)
        if self.errors.get("expires_at") or self.errors.get("expires_in_days"):
            return
        expires = cleaned["expires"]
        if kind not in EXPIRY_KINDS:
            if expires is not None:
                self.add_error(field, _("Only a new or adopted account carries an expiry."))
            return
        privilege = cleaned.get("account_privilege")
        if kind == RequestKind.EXTEND:
            if instance is None:
                return
            maker = account_maker(instance, cleaned.get("account_name", ""))
            if maker is None:
                self.add_error(
                    "account_name",
                    _("The dashboard made no account of this name on this instance."),
                )
                return
            if expires is None:
                self.add_error(field, _("Give the new expiry."))
                return
            privilege = maker.account_privilege
        if kind == RequestKind.ADOPT:
            return  # the account's own privilege is known at submission, checked there
        if privilege:
            approvals, lifetime = policy.creation_rules(privilege)
            if kind == RequestKind.CREATE:
                # Passed on with the submission: request_submit need not read it again.
                self.creation_rules = (approvals, lifetime)
            refusal = policy.expiry_refusal(lifetime, expires, timezone.now())
            if refusal:
                self.add_error(field, refusal)

    def _clean_change(self, kind: str, cleaned: dict) -> None:
        if kind == RequestKind.PRIVILEGE and cleaned.get("account_privilege") not in (
            rules.GRANTABLE_PRIVILEGES
        ):
            self.add_error(
                "account_privilege",
                _("An account's privilege can be changed to read-only or read/write only."),
            )
        if kind == RequestKind.DESCRIPTION and not cleaned.get("account_description"):
            self.add_error("account_description", _("Type the new description."))


def expiry_browser_spec(lifetimes: dict[str, policy.Lifetime]) -> dict:
    """What static/js/expiry.js checks: each privilege's lifetime rules
    (policy.creation_policy_by_privilege), and the server's own messages (the same
    translations; %(days)s filled in the browser)."""
    return {
        "kinds": [str(kind) for kind in EXPIRY_KINDS],
        "choices": list(EXPIRY_CHOICES),
        "lifetimes": {
            privilege: {"max_days": rules.max_days, "allow_no_expiry": rules.allow_no_expiry}
            for privilege, rules in lifetimes.items()
        },
        "messages": {
            "too_long": str(
                _("The approval policy allows at most %(days)s days for this privilege.")
            ),
            "needs_days": str(
                _("This privilege needs an expiry, at most %(days)s days from today.")
            ),
            "needs": str(_("This privilege needs an expiry.")),
            "past": str(_("The expiry must be in the future.")),
            "both": str(_("Give a number of days or a date, not both.")),
            "only": str(_("Only a new or adopted account carries an expiry.")),
            "give_new": str(_("Give the new expiry.")),
        },
    }


FIELD_RULES = {
    "account_name": "AccountName",
    "account_description": "AccountDescription",
    "account_privilege": "AccountPrivilege",
}


class ExecuteForm(DescribedFieldsMixin, forms.Form):
    """The password, typed (or generated in the browser) on the execute page.

    render_value=False: after an error the user types it again; it is never
    written back into the page.
    """

    account_password = forms.CharField(
        label=_("Password"),
        strip=False,
        validators=[rules.django_validator("AccountPassword")],
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "spellcheck": "false"}
        ),
    )
    account_password_confirm = forms.CharField(
        label=_("Confirm password"),
        strip=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account_password"].widget.attrs.update(rules.widget_attrs("AccountPassword"))
        self.fields["account_password_confirm"].widget.attrs.update(
            {"data-confirm-for": "id_account_password", "maxlength": 32}
        )

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("account_password")
        confirm = cleaned.get("account_password_confirm")
        if password and confirm is not None and password != confirm:
            self.add_error("account_password_confirm", rules.passwords_do_not_match_message())
        return cleaned


class ConfirmChangeForm(forms.Form):
    """Executing a change that needs no password: the button is the whole form."""


def execute_form(account_request: AccountRequest, data=None) -> forms.Form:
    """The execute page's form: a password for a creation or a reset, else a confirmation."""
    form_class = ExecuteForm if account_request.needs_password else ConfirmChangeForm
    return form_class(data)


class DecisionForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
