"""The API's error answers: one shape, a stable machine code, a message in the caller's language.

{"code": "...", "message": "...", "errors": {field: [{"code", "rule", "message"}]}, ...}
"""

from __future__ import annotations

from django.http import JsonResponse

# The Alibaba error code for a parameter whose rules a value breaks (docs/alibaba-api.md).
ALIBABA_CODES = {
    "account_name": "InvalidAccountName.Format",
    "account_password": "InvalidAccountPassword.Format",
    "account_description": "InvalidAccountDescription.Format",
    "account_privilege": "InvalidAccountPrivilege.Malformed",
    "instance_id": "InvalidInstanceId.NotFound",
}
# Rules the server reports under a code of its own.
RULE_CODES = {("account_name", "reserved"): "InvalidAccountName.Forbid"}


class ApiError(Exception):
    def __init__(self, http_status: int, code: str, message, *, headers=None, **extra):
        super().__init__(str(message))
        self.http_status = http_status
        self.code = code
        self.message = str(message)
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JsonResponse:
        body = {"code": self.code, "message": self.message, **self.extra}
        response = JsonResponse(body, status=self.http_status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def field_error(field: str, rule: str, message) -> dict:
    code = RULE_CODES.get((field, rule)) or (
        ALIBABA_CODES.get(field, "InvalidParameter") if rule != "required" else "MissingParameter"
    )
    return {"code": code, "rule": rule, "message": str(message)}


def form_errors(form) -> dict[str, list[dict]]:
    """Every field's errors at once, as the page shows them, with their codes."""
    return {
        field: [field_error(field, error.code or "invalid", " ".join(error)) for error in errors]
        for field, errors in form.errors.as_data().items()
    }
