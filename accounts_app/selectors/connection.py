"""How to reach a created account: the endpoint and the lines to sign in with.

Built from the synced instance only; the password is never part of them, a placeholder
stands where it goes.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from accounts_app.models import AccountRequest

DEFAULT_PORT = 6379
# Redis 6 added ACL users, and with them AUTH <username> <password>; Alibaba's
# "user:password" form works on every version that has accounts.
# Reference: https://www.alibabacloud.com/help/en/redis/user-guide/logon-methods
ACL_AUTH_SINCE = 6


@dataclass(frozen=True)
class ConnectionHints:
    endpoint: str  # empty until a sync has seen the connection domain
    redis_cli: str
    auth_any_version: str
    auth_acl: str  # empty before Redis 6


def connection_hints(account_request: AccountRequest) -> ConnectionHints:
    instance = account_request.instance
    host = instance.connection_domain
    port = instance.port or DEFAULT_PORT
    name = account_request.account_name
    placeholder = _("<password>")
    shown_host = host or _("<host>")
    acl = _major(instance.engine_version) >= ACL_AUTH_SINCE
    return ConnectionHints(
        endpoint=f"{host}:{port}" if host else "",
        redis_cli=f"redis-cli -h {shown_host} -p {port}",
        auth_any_version=f"AUTH {name}:{placeholder}",
        auth_acl=f"AUTH {name} {placeholder}" if acl else "",
    )


def _major(engine_version: str) -> int:
    head = engine_version.split(".", 1)[0]
    return int(head) if head.isascii() and head.isdigit() else 0
