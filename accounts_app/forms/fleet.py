"""The fleet request form: the request form's fields, with a list of instances."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts_app import rules
from accounts_app.forms.instance_picker import InstanceField
from accounts_app.forms.requests import AccountRequestForm, ExecuteForm
from accounts_app.models import Instance, RequestKind
from accounts_app.selectors.fleet import FleetSelector, instances_by_id

# Every kind but adopting (services/fleet.py runs each per instance).
FLEET_KINDS = [kind for kind in RequestKind.values if kind != RequestKind.ADOPT]


class InstanceListField(forms.Field):
    """Instance IDs (checkboxes on the page, a JSON list in the API) -> the instances,
    in the order given; an ID the inventory does not know is an error, named."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[Instance]:
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        ids = [str(item).strip() for item in value or [] if str(item).strip()]
        if not ids:
            raise forms.ValidationError(_("Choose at least one instance."), code="required")
        malformed = [i for i in ids if rules.validate("InstanceId", i)]
        instances, unknown = instances_by_id([i for i in ids if i not in malformed])
        if malformed or unknown:
            raise forms.ValidationError(
                _("Not in the inventory: %(ids)s."),
                code="unknown_instance",
                params={"ids": ", ".join([*malformed, *unknown][:10])},
            )
        return instances

    def validate(self, value) -> None:
        """to_python said it all (required included)."""


class FleetRequestForm(AccountRequestForm):
    """The request form without its one instance: `instance_ids` names them all."""

    instance_ids = InstanceListField(label=_("Instances"), required=False)
    add_instance = InstanceField(label=_("Add an instance"), required=False, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["instance_id"]

    def listed_ids(self) -> list[str]:
        """The instances the page lists: those still ticked, then the one just added."""
        if not self.is_bound:
            return []
        ticked = self.data.getlist("instance_ids") if hasattr(self.data, "getlist") else []
        added = self.data.get("add_instance", "").strip()
        return list(dict.fromkeys([*ticked, *([added] if added else [])]))

    def clean_kind(self):
        # A fleet creates, deletes or changes the account of one name on each instance;
        # adopting an unmanaged account is one instance at a time.
        kind = super().clean_kind()
        if kind not in FLEET_KINDS:
            raise forms.ValidationError(
                _("A request on several instances cannot adopt accounts: adopt them one by one.")
            )
        return kind

    def clean(self):
        cleaned = super().clean()  # no instance field: only the kind's own checks below
        kind = cleaned.get("kind")
        if kind and kind != RequestKind.CREATE:
            self._clean_change(kind, cleaned)
        return cleaned

    def submission(self) -> dict:
        """The cleaned values, as fleet.fleet_submit() takes them."""
        data = self.cleaned_data
        return {
            "instances": data["instance_ids"],
            "account_name": data["account_name"],
            "account_privilege": data["account_privilege"],
            "account_description": data["account_description"],
            "account_type": data["account_type"],
            "justification": data["justification"],
            "expires_at": data.get("expires"),
            "kind": data["kind"],
        }


class FleetSelectorForm(forms.Form):
    """Search for the instances of a fleet: every field given must match."""

    name = forms.CharField(label=_("Name, ID or tag (key:value)"), required=False, max_length=64)
    region = forms.CharField(label=_("Region"), required=False, max_length=32)
    engine = forms.CharField(label=_("Engine version"), required=False, max_length=16)

    def selector(self) -> FleetSelector:
        data = self.cleaned_data if self.is_valid() else {}
        return FleetSelector(
            name=data.get("name", ""), region=data.get("region", ""), engine=data.get("engine", "")
        )


class FleetExecuteForm(ExecuteForm):
    """The fleet's execute form: one typed password for every instance, or one per
    instance generated in the browser before the run (static/js/fleet.js fills a
    ``password-<instance ID>`` field for each instance that will run, shown once in the
    page with a copy button); a change without a password has no field at all.

    Without JavaScript the choice stays hidden: a typed password only. No `required`
    attribute in the page: the browser would insist on a password the per-instance choice
    does not need; the server asks for it when it is needed. Never rendered back: an
    error empties every password field.
    """

    use_required_attribute = False
    one_password_each = forms.BooleanField(
        label=_("Generate a different password for each instance"), required=False
    )

    def __init__(self, *args, instance_ids: list[str], needs_password: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance_ids = instance_ids
        self.fields["account_password"].widget.attrs.pop("required", None)  # the rules' own
        if not needs_password:
            self.fields.clear()  # a change without a password: the button is the form
        elif self.is_bound and self.data.get("one_password_each"):
            for name in ("account_password", "account_password_confirm"):
                self.fields[name].required = False

    def clean(self):
        cleaned = super().clean() if self.fields else {}
        if cleaned.get("one_password_each"):
            cleaned["passwords"] = self._each_password()
        return cleaned

    def _each_password(self) -> dict[str, str]:
        passwords = {i: self.data.get(f"password-{i}", "") for i in self.instance_ids}
        if not all(passwords.values()) or any(
            rules.validate("AccountPassword", password) for password in passwords.values()
        ):
            raise forms.ValidationError(
                _(
                    "The passwords for each instance are generated in the page, with "
                    "JavaScript: generate them again, or type one password for all."
                ),
                code="passwords_per_instance",
            )
        return passwords

    def password_for(self, target) -> str | None:
        """The password of one target of the run: its own, the typed one, or "" (a change
        without one); None for an instance the page did not list (it waits)."""
        data = self.cleaned_data
        if "passwords" in data:
            return data["passwords"].get(target.instance.instance_id)
        return data.get("account_password", "")
