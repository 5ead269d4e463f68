"""The product's own sentences that several places say: each fact worded once.

A fact said by one module stays next to the code that says it; one said by services,
selectors and templates alike lives here (the password-free warning: vpc_auth.py; the
API's parameter rules: rules.py; Alibaba's error codes: alibaba/errors.py).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# An instance the last sync did not list, or one the API says does not exist.
INSTANCE_GONE = _("The instance no longer exists in Alibaba Cloud (it was probably released).")
