"""The request form's fields written out in Python (forms/rendering.py, the form_field
tag) are byte for byte what Django's widget templates and templates/forms/_field.html
write, in every state a field can be drawn in."""

from __future__ import annotations

import re

import pytest
from django import forms
from django.forms.renderers import get_default_renderer
from django.template.loader import render_to_string
from django.utils import translation

from accounts_app.forms.audit import AuditFilterForm
from accounts_app.forms.preferences import PreferencesForm
from accounts_app.forms.rendering import WIDGET_WRITER
from accounts_app.forms.requests import AccountRequestForm
from accounts_app.templatetags.form_fields import form_field
from accounts_app.templatetags.rows import select_field

pytestmark = pytest.mark.django_db


def both(form_class, *args, **kwargs):
    """The form drawn by Django's templates, and by the writer."""
    return (
        form_class(*args, renderer=get_default_renderer(), **kwargs),
        form_class(*args, renderer=WIDGET_WRITER, **kwargs),
    )


STATES = {
    "blank": ((), {}),
    "copied": ((), {"initial": {"kind": "privilege", "account_privilege": "RoleReadWrite"}}),
    "invalid": (
        (
            {
                "instance_id": "r-<none>",
                "account_name": 'Bad"Name',
                "account_privilege": "nope",
                "account_description": "<b>x</b> & 'y'",
                "justification": "",
                "expires_in_days": "-3",
                "expires_at": "tomorrow",
                "kind": "create",
            },
        ),
        {},
    ),
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("state", STATES)
def test_each_field_is_drawn_as_the_templates_draw_it(state, language):
    args, kwargs = STATES[state]
    with translation.override(language):
        templated, written = both(AccountRequestForm, *args, **kwargs)
        if args:
            templated.is_valid()
            written.is_valid()
        for name in templated.fields:
            expected = render_to_string("forms/_field.html", {"field": templated[name]})
            assert str(written[name]) == str(templated[name]), name
            assert form_field(written[name]) == expected, name


class EveryWidget(forms.Form):
    text = forms.CharField(required=False, widget=forms.TextInput(attrs={"data-x": True}))
    number = forms.IntegerField(required=False)
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    hidden_attr = forms.CharField(widget=forms.TextInput(attrs={"disabled": False}))
    choice = forms.ChoiceField(choices=[("", "—"), ("a", "A & <b>"), ("b", "B")])
    grouped = forms.ChoiceField(choices=[("Group", [("g", "G")])])
    multiple = forms.MultipleChoiceField(choices=[("a", "A"), ("b", "B")])
    text_area = forms.CharField(widget=forms.Textarea)
    check = forms.BooleanField(required=False)


@pytest.mark.parametrize(
    "data",
    [
        None,
        {
            "text": '"quoted" <tag>',
            "number": "7",
            "choice": "a",
            "grouped": "g",
            "multiple": ["a", "b"],
            "text_area": "line\n<two>",
            "check": "on",
        },
    ],
)
def test_every_widget_kind_is_drawn_as_the_templates_draw_it(data):
    templated, written = both(EveryWidget, data)
    for name in templated.fields:
        assert str(written[name]) == str(templated[name]), name


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_form_page_carries_the_rules_of_its_language(requester, language):
    from django.test import Client
    from django.urls import reverse
    from django.utils.html import json_script

    from accounts_app import rules

    client = Client(headers={"accept-language": language})
    client.force_login(requester)
    html = client.get(reverse("request_new")).content.decode()
    with translation.override(language):
        expected = json_script(rules.browser_spec(), "kvstore-rules")
    assert expected in html
    # The spec of that language ("生成", Generate, as JSON writes it).
    assert ("\\u751f\\u6210" in expected) == (language == "zh-hans")


def _between_tags_removed(html) -> str:
    return re.sub(r">\s+<", "><", str(html).strip())


@pytest.mark.parametrize(
    ("form_class", "data", "field", "shown"),
    [
        (PreferencesForm, None, "time_zone", ' value="Asia/Shanghai" selected>'),
        (PreferencesForm, {"time_zone": "Asia/Tokyo"}, "time_zone", '"Asia/Tokyo" selected>'),
        # Required, and refused: marked invalid, nothing selected.
        (PreferencesForm, {"time_zone": "Mars/Olympus"}, "time_zone", ' aria-invalid="true"'),
        (AuditFilterForm, {"action": "execution_failed"}, "action", '"execution_failed" selected>'),
        (AuditFilterForm, {"outcome": "nope"}, "outcome", ' aria-invalid="true"'),
    ],
)
def test_a_select_written_by_the_rows_tag_is_djangos_own(form_class, data, field, shown):
    """The same attributes (required, aria-invalid) and options, the current one selected;
    only the line breaks between the options differ."""
    form = form_class(data, initial={"time_zone": "Asia/Shanghai"})
    if data:
        form.is_valid()
    written = _between_tags_removed(select_field(form[field]))
    assert written == _between_tags_removed(form[field].as_widget())
    assert shown in written


@pytest.mark.parametrize("field", ["action", "outcome"])
def test_options_written_once_are_each_languages_own(field):
    """A cached function's choices are written once per language and process
    (rows._options): each language still gets its own labels, and each form its own
    selected option."""
    for language, selected in [("en", ""), ("zh-hans", "denied"), ("en", "success")]:
        with translation.override(language):
            form = AuditFilterForm({field: selected} if selected else None)
            written = _between_tags_removed(select_field(form[field]))
            assert written == _between_tags_removed(form[field].as_widget()), language
    with translation.override("zh-hans"):
        assert "全部" in str(select_field(AuditFilterForm(None)[field]))
