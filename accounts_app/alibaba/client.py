"""The R-KVStore (ApsaraDB for Redis / Tair) API, 2015-01-01: one method per remote
operation, each with the page of Alibaba's reference it follows.

Signing, sending and reading the envelope are the transport's (transport.py); whether
a failed attempt is tried again is the retry policy's (retry.py). The API facts this
module relies on, with Alibaba's pages: docs/alibaba-api.md.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from django.views.decorators.debug import sensitive_variables

from . import errors
from .errors import InstanceNotFound
from .retry import RetryPolicy
from .transport import Transport, endpoint_for_region, parse_endpoint, shared_session

__all__ = [
    "Account",
    "AccountChangeResult",
    "CreateAccountResult",
    "InstanceAttribute",
    "InstanceSummary",
    "KVStoreClient",
    "endpoint_for_region",
    "get_client",
    "parse_endpoint",
    "shared_session",
]

PAGE_SIZE = 50  # DescribeInstances allows up to 50 per page.
MAX_PAGES = 1000


# --- Results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateAccountResult:
    request_id: str
    instance_id: str
    account_name: str


@dataclass(frozen=True)
class AccountChangeResult:
    """DeleteAccount, GrantAccountPrivilege, ResetAccountPassword and
    ModifyAccountDescription answer only a RequestId: the change itself is followed with
    DescribeAccounts (the account is ``Unavailable`` meanwhile)."""

    request_id: str


@dataclass(frozen=True)
class Account:
    account_name: str
    account_status: str  # Available / Unavailable
    account_type: str  # Normal / Super
    account_description: str
    instance_id: str
    privilege: str  # RoleReadOnly / RoleReadWrite / RoleRepl


@dataclass(frozen=True)
class InstanceSummary:
    instance_id: str
    instance_name: str = ""
    region_id: str = ""
    zone_id: str = ""
    engine_version: str = ""
    architecture_type: str = ""  # standard / cluster / rwsplit
    edition_type: str = ""  # DescribeInstances only
    instance_type: str = ""
    instance_status: str = ""  # Normal, Changing, ...
    instance_class: str = ""
    connection_domain: str = ""
    port: int | None = None
    network_type: str = ""
    capacity: int | None = None  # MB
    # DescribeInstances' Tags.Tag[] (Key, Value), in the answer's order.
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class InstanceAttribute(InstanceSummary):
    # "Open": a password is required (the default); "Close": password-free access from
    # the VPC is on (docs/alibaba-api.md, "VpcAuthMode"). DescribeInstanceAttribute has
    # no EditionType: edition_type stays empty here.
    # What each value means is the app's business: accounts_app/vpc_auth.py.
    vpc_auth_mode: str = ""


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _instance_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    def text(key: str) -> str:
        value = item.get(key)
        return "" if value is None else str(value)

    return {
        "instance_id": text("InstanceId"),
        "instance_name": text("InstanceName"),
        "region_id": text("RegionId"),
        "zone_id": text("ZoneId"),
        "engine_version": text("EngineVersion"),
        "architecture_type": text("ArchitectureType"),
        "edition_type": text("EditionType"),
        "instance_type": text("InstanceType"),
        "instance_status": text("InstanceStatus"),
        "instance_class": text("InstanceClass"),
        "connection_domain": text("ConnectionDomain"),
        "port": _int_or_none(item.get("Port")),
        "network_type": text("NetworkType"),
        "capacity": _int_or_none(item.get("Capacity")),
        "tags": _tags(item),
    }


def _tags(item: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-describeinstances-redis
    # (Instances.KVStoreInstance[].Tags.Tag[].Key / .Value)
    tags = (item.get("Tags") or {}).get("Tag") or []
    return tuple(
        (str(tag.get("Key") or ""), str(tag.get("Value") or ""))
        for tag in tags
        if isinstance(tag, Mapping) and tag.get("Key")
    )


def _account_from(item: Mapping[str, Any], instance_id: str) -> Account:
    privileges = (item.get("DatabasePrivileges") or {}).get("DatabasePrivilege") or []
    privilege = str(privileges[0].get("AccountPrivilege", "")) if privileges else ""
    return Account(
        account_name=str(item.get("AccountName", "")),
        account_status=str(item.get("AccountStatus", "")),
        account_type=str(item.get("AccountType", "")),
        account_description=str(item.get("AccountDescription") or ""),
        instance_id=str(item.get("InstanceId") or instance_id),
        privilege=privilege,
    )


# --- The client -------------------------------------------------------------------------------


class KVStoreClient:
    """Calls R-KVStore operations through the transport, under the retry policy."""

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        endpoint: str | None = None,
        signature_version: str,
        connect_timeout: float,
        read_timeout: float,
        deadline: float,
        max_attempts: int,
        backoff_base: float = RetryPolicy.backoff_base,
        max_backoff: float = RetryPolicy.max_backoff,
        max_retry_after: float = RetryPolicy.max_retry_after,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
    ) -> None:
        self.transport = Transport(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
            endpoint=endpoint,
            signature_version=signature_version,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            deadline=deadline,
            session=session,
        )
        self.retry = RetryPolicy(
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
            sleep=sleep,
            jitter=jitter,
        )

    def __repr__(self) -> str:
        return f"KVStoreClient({self.transport!r})"

    # --- Operations ---------------------------------------------------------------------

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-createaccount-redis
    @sensitive_variables()
    def create_account(
        self,
        *,
        region_id: str,
        instance_id: str,
        account_name: str,
        account_password: str,
        account_privilege: str = "RoleReadWrite",
        account_description: str = "",
        account_type: str = "Normal",
    ) -> CreateAccountResult:
        params = {
            "RegionId": region_id,
            "InstanceId": instance_id,
            "AccountName": account_name,
            "AccountPassword": account_password,
            "AccountPrivilege": account_privilege,
            "AccountType": account_type,
        }
        if account_description:
            params["AccountDescription"] = account_description
        data = self._call(
            "CreateAccount",
            region_id,
            params,
            expects=lambda d: bool(d.get("AccountName") or d.get("AcountName")),
            secrets=(account_password,),
        )
        # "AcountName" is misspelled in every generation of the API; newer answers also
        # carry "AccountName" (docs/alibaba-api.md, "CreateAccount").
        return CreateAccountResult(
            request_id=str(data.get("RequestId", "")),
            instance_id=str(data.get("InstanceId") or instance_id),
            account_name=str(data.get("AccountName") or data.get("AcountName")),
        )

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-deleteaccount-redis
    def delete_account(
        self, *, region_id: str, instance_id: str, account_name: str
    ) -> AccountChangeResult:
        params = {"RegionId": region_id, "InstanceId": instance_id, "AccountName": account_name}
        return self._change("DeleteAccount", region_id, params)

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-grantaccountprivilege-redis
    def grant_account_privilege(
        self, *, region_id: str, instance_id: str, account_name: str, account_privilege: str
    ) -> AccountChangeResult:
        """Sets the account's privilege; a downgrade is a grant of ``RoleReadOnly`` (the API
        has no revoke)."""
        params = {
            "RegionId": region_id,
            "InstanceId": instance_id,
            "AccountName": account_name,
            "AccountPrivilege": account_privilege,
        }
        return self._change("GrantAccountPrivilege", region_id, params)

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-resetaccountpassword-redis
    @sensitive_variables()
    def reset_account_password(
        self, *, region_id: str, instance_id: str, account_name: str, account_password: str
    ) -> AccountChangeResult:
        params = {
            "RegionId": region_id,
            "InstanceId": instance_id,
            "AccountName": account_name,
            "AccountPassword": account_password,
        }
        return self._change("ResetAccountPassword", region_id, params, secrets=(account_password,))

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-modifyaccountdescription-redis
    def modify_account_description(
        self, *, region_id: str, instance_id: str, account_name: str, account_description: str
    ) -> AccountChangeResult:
        params = {
            "RegionId": region_id,
            "InstanceId": instance_id,
            "AccountName": account_name,
            "AccountDescription": account_description,
        }
        return self._change("ModifyAccountDescription", region_id, params)

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-describeaccounts-redis
    def describe_accounts(
        self, *, region_id: str, instance_id: str, account_name: str | None = None
    ) -> list[Account]:
        params = {"RegionId": region_id, "InstanceId": instance_id}
        if account_name:
            params["AccountName"] = account_name
        data = self._call("DescribeAccounts", region_id, params, expects=lambda d: "Accounts" in d)
        items = (data.get("Accounts") or {}).get("Account") or []
        return [_account_from(item, instance_id) for item in items]

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-describeinstances-redis
    def describe_instances(
        self,
        *,
        region_id: str,
        instance_ids: Sequence[str] | None = None,
        instance_status: str | None = None,
    ) -> list[InstanceSummary]:
        """Every instance of the region, all pages."""
        instances: list[InstanceSummary] = []
        for page in range(1, MAX_PAGES + 1):
            params = {"RegionId": region_id, "PageNumber": str(page), "PageSize": str(PAGE_SIZE)}
            if instance_ids:
                params["InstanceIds"] = ",".join(instance_ids)
            if instance_status:
                params["InstanceStatus"] = instance_status
            data = self._call(
                "DescribeInstances", region_id, params, expects=lambda d: "Instances" in d
            )
            items = (data.get("Instances") or {}).get("KVStoreInstance") or []
            instances.extend(InstanceSummary(**_instance_fields(item)) for item in items)
            total = _int_or_none(data.get("TotalCount"))
            if not items:
                break
            if total is not None and len(instances) >= total:
                break
            if total is None and len(items) < PAGE_SIZE:
                break
        return instances

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-describeinstanceattribute-redis
    def describe_instance_attribute(self, *, region_id: str, instance_id: str) -> InstanceAttribute:
        """Raises InstanceNotFound when the answer lists no instance."""
        params = {"RegionId": region_id, "InstanceId": instance_id}
        data = self._call(
            "DescribeInstanceAttribute",
            region_id,
            params,
            expects=lambda d: isinstance(
                (d.get("Instances") or {}).get("DBInstanceAttribute"), list
            ),
        )
        items = data["Instances"]["DBInstanceAttribute"]
        if not items:
            # An empty list is how the API says the instance does not exist: an answer,
            # not an outage (docs/alibaba-api.md, "DescribeInstanceAttribute").
            raise InstanceNotFound(
                errors.INSTANCE_NOT_FOUND,
                "DescribeInstanceAttribute listed no instance.",
                request_id=_text(data.get("RequestId")),
                action="DescribeInstanceAttribute",
            )
        item = items[0]
        fields = _instance_fields(item)
        fields["edition_type"] = ""
        return InstanceAttribute(**fields, vpc_auth_mode=str(item.get("VpcAuthMode") or ""))

    @sensitive_variables()
    def _change(
        self,
        action: str,
        region_id: str,
        params: dict[str, str],
        *,
        secrets: Sequence[str] = (),
    ) -> AccountChangeResult:
        data = self._call(
            action, region_id, params, expects=lambda d: "RequestId" in d, secrets=secrets
        )
        return AccountChangeResult(request_id=str(data["RequestId"]))

    @sensitive_variables()
    def _call(
        self,
        action: str,
        region_id: str,
        params: dict[str, str],
        *,
        expects: Callable[[dict[str, Any]], bool],
        secrets: Sequence[str] = (),
    ) -> dict[str, Any]:
        @sensitive_variables()
        def attempt() -> dict[str, Any]:
            return self.transport.send(action, region_id, params, expects=expects, secrets=secrets)

        return self.retry.run(action, params, attempt)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def get_client() -> KVStoreClient:
    """A client configured from Django settings (read at each call, so tests can override)."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    if not settings.ALIBABA_CLOUD_ACCESS_KEY_ID or not settings.ALIBABA_CLOUD_ACCESS_KEY_SECRET:
        raise ImproperlyConfigured(
            "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET must be set to "
            "call the Alibaba Cloud API."
        )
    return KVStoreClient(
        access_key_id=settings.ALIBABA_CLOUD_ACCESS_KEY_ID,
        access_key_secret=settings.ALIBABA_CLOUD_ACCESS_KEY_SECRET,
        security_token=settings.ALIBABA_CLOUD_SECURITY_TOKEN,
        endpoint=settings.KVSTORE_ENDPOINT,
        signature_version=settings.KVSTORE_SIGNATURE_VERSION.lower(),
        connect_timeout=settings.KVSTORE_CONNECT_TIMEOUT,
        read_timeout=settings.KVSTORE_READ_TIMEOUT,
        deadline=settings.KVSTORE_DEADLINE,
        max_attempts=settings.KVSTORE_MAX_ATTEMPTS,
    )
