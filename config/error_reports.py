"""Error reports that hide what is marked sensitive even under DEBUG.

Django's SafeExceptionReporterFilter applies sensitive_variables and
sensitive_post_parameters only when DEBUG is off; under DEBUG its debug page shows every
local variable and POST parameter, the account password of an execute included. This
filter applies them always.
"""

from __future__ import annotations

from django.views.debug import SafeExceptionReporterFilter


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request) -> bool:
        return True
