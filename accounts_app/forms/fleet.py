"""The fleet request form: the request form's fields, with a list of instances."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts_app import rules
from accounts_app.forms.instance_picker import InstanceField
from accounts_app.forms.requests import AccountRequestForm, ExecuteForm
from accounts_app.models import Instance, RequestKind
from accounts_app.selectors.fleet import FleetSelector, instances_by_id


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
        # A fleet creates accounts; changing existing accounts is one instance at a time.
        kind = super().clean_kind()
        if kind != RequestKind.CREATE:
            raise forms.ValidationError(
                _(
                    "A request on several instances creates accounts: ask for a change "
                    "on one instance at a time."
                )
            )
        return kind

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
    """The execute form, or no password at all: one generated per instance instead.

    No `required` attribute in the page: the browser would insist on a password the
    "generate one each" choice does not need; the server asks for it when it is needed.
    """

    use_required_attribute = False
    one_password_each = forms.BooleanField(
        label=_("Generate a different password for each instance"), required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account_password"].widget.attrs.pop("required", None)  # the rules' own
        if self.is_bound and self.data.get("one_password_each"):
            for name in ("account_password", "account_password_confirm"):
                self.fields[name].required = False
