"""Lazy labels translated once per language and process.

A page of a hundred rows asked gettext several hundred times for the same few labels
(docs/benchmarks.md): each ask looks the language up in a thread-local and searches the
catalogue. The catalogues are loaded once per process and never change while it runs,
so a label's text in a language can be kept.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import get_language

_TRANSLATED: dict[tuple[str | None, int, str], str] = {}
_ALL_TRANSLATED: dict[tuple[str | None, int], dict[str, str]] = {}


def translated(labels: dict[str, Promise], value: str) -> str:
    """labels[value] in the current language (value itself when not listed). `labels`
    must live as long as the process (a module's constant): it is known by its id."""
    if value not in labels:
        return value
    key = (get_language(), id(labels), value)
    if key not in _TRANSLATED:
        _TRANSLATED[key] = str(labels[value])
    return _TRANSLATED[key]


def all_translated(labels: dict[str, Promise]) -> dict[str, str]:
    """Every label of `labels` in the current language (the same rule as translated())."""
    key = (get_language(), id(labels))
    if key not in _ALL_TRANSLATED:
        _ALL_TRANSLATED[key] = {value: str(label) for value, label in labels.items()}
    return _ALL_TRANSLATED[key]
