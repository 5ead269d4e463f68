"""The simulated service: the R-KVStore operations and the state they change.

Operations: CreateAccount, DescribeAccounts, DescribeInstances (RegionId, InstanceIds,
InstanceStatus, PageNumber, PageSize up to 50; the only one with EditionType),
DescribeInstanceAttribute (with VpcAuthMode, no EditionType; an empty list for an
unknown instance), DeleteAccount, ResetAccountPassword, GrantAccountPrivilege and
ModifyAccountDescription.

New accounts are ``Unavailable`` for ``activation_delay`` seconds (``--activation-seconds``,
60 by default, like the real service), then ``Available``; meanwhile the instance refuses
the next CreateAccount with ``IncorrectDBInstanceState``. Every change (delete, reset,
grant, description) leaves the account ``Unavailable`` for the same delay (a deleted one
is still listed until then); a change to an account that is not ``Available`` is refused
(``OperationDenied.AccountStatus``; ``TaskExists`` for a reset), and a change to another
account of a busy instance with ``IncorrectDBInstanceState``. DescribeAccounts lists the
built-in ``Super`` accounts; they are not counted in the limit of 18 and cannot be
deleted, reset or re-privileged (``IncorrectAccount``). DescribeAccounts of an engine
older than 4.0 answers ``InvalidEngineVersion.Format``.
No password is ever kept: not in the state file, the call log, or a log line.
The parameter rules are the simulator's own copy (checks.py), on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import checks
from .checks import ApiError
from .demo_estate import make_account, make_instance

DEFAULT_ACTIVATION_DELAY = 60.0  # about a minute, like the real service
NEVER = 4102444800.0  # 2100-01-01: an account set up as Unavailable stays so
MUTATING_ACTIONS = frozenset(
    {
        "CreateAccount",
        "DeleteAccount",
        "ResetAccountPassword",
        "GrantAccountPrivilege",
        "ModifyAccountDescription",
    }
)


class Operations:
    """The operations of a Simulator, on its ``store``."""

    def add_instance(self, **fields: Any) -> dict[str, Any]:
        """Add or replace an instance; API field names, defaults for the rest."""
        if not fields.get("InstanceId") or not fields.get("RegionId"):
            raise ValueError("InstanceId and RegionId are required.")
        base = make_instance(
            fields["InstanceId"],
            fields.get("InstanceName", fields["InstanceId"]),
            fields["RegionId"],
            fields.get("ZoneId", f"{fields['RegionId']}-a"),
            fields.get("EngineVersion", "6.0"),
            fields.get("ArchitectureType", "standard"),
        )
        base.update(fields)
        self.store.put_instance(base)
        return base

    def add_account(
        self,
        *,
        instance_id: str,
        account_name: str,
        privilege: str = "RoleReadWrite",
        account_type: str = "Normal",
        description: str = "",
        status: str = "Available",
    ) -> dict[str, Any]:
        """Add an account directly, bypassing the API's checks (to set up a scenario)."""
        if self.store.instance(instance_id) is None:
            raise ValueError(f"No instance {instance_id}.")
        available_at = 0.0 if status == "Available" else NEVER
        account = make_account(
            instance_id, account_name, privilege, description,
            account_type=account_type, available_at=available_at,
        )  # fmt: skip
        self.store.add_account(instance_id, account)
        return account

    def accounts(self, instance_id: str) -> list[dict[str, Any]]:
        """DescribeAccounts' view of an instance's accounts, status included."""
        return [self._account_view(a, instance_id) for a in self._live_accounts(instance_id)]

    def _dispatch(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        operations: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "CreateAccount": self._create_account,
            "DeleteAccount": self._delete_account,
            "DescribeAccounts": self._describe_accounts,
            "DescribeInstances": self._describe_instances,
            "DescribeInstanceAttribute": self._describe_instance_attribute,
            "ResetAccountPassword": self._reset_account_password,
            "GrantAccountPrivilege": self._grant_account_privilege,
            "ModifyAccountDescription": self._modify_account_description,
        }
        operation = operations.get(action)
        if operation is None:
            raise checks.error("InvalidAction.NotFound")
        return operation(params)

    @staticmethod
    def _require(params: Mapping[str, str], name: str) -> str:
        value = params.get(name)
        if not value:
            raise checks.missing_parameter(name)
        return value

    def _instance(self, params: Mapping[str, str]) -> dict[str, Any]:
        instance = self.store.instance(self._require(params, "InstanceId"))
        region_id = params.get("RegionId")
        # An instance of another region is as unknown as a missing one.
        if instance is None or (region_id and region_id != instance["RegionId"]):
            raise checks.error("InvalidInstanceId.NotFound")
        return instance

    def _create_account(self, params: dict[str, str]) -> dict[str, Any]:
        # Parameter formats first, then the instance's state (docs/alibaba-api.md).
        instance_id = self._require(params, "InstanceId")
        name = self._require(params, "AccountName")
        password = self._require(params, "AccountPassword")
        privilege = params.get("AccountPrivilege") or "RoleReadWrite"
        description = params.get("AccountDescription") or ""
        checks.check_account_name(name)
        checks.check_account_password(password)
        checks.check_account_privilege(privilege)
        if description:
            checks.check_account_description(description)
        checks.check_account_type(params.get("AccountType") or "Normal")
        with self.store.lock:
            instance = self._instance(params)
            checks.check_instance_accepts_accounts(instance)
            checks.check_privilege_on_instance(privilege, instance)
            existing = self._live_accounts(instance_id)
            if any(self.clock() < account["AvailableAt"] for account in existing):
                # The previous account is still being created: the instance is busy.
                raise checks.error("IncorrectDBInstanceState")
            checks.check_room_for(name, existing)
            account = make_account(
                instance_id, name, privilege, description,
                available_at=self.clock() + self.activation_delay,
            )  # fmt: skip
            self.store.add_account(instance_id, account)
        # "AcountName" is the API's historical misspelling; newer answers carry both.
        return {"InstanceId": instance_id, "AcountName": name, "AccountName": name}

    def _live_accounts(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's accounts; a deleted one stays listed (``Unavailable``) until its
        deletion settles, then it is gone for good."""
        accounts = []
        for account in self.store.accounts(instance_id):
            if account.get("GoneAt") is not None and self.clock() >= account["GoneAt"]:
                self.store.remove_account(instance_id, account["AccountName"])
            else:
                accounts.append(account)
        return accounts

    def _account_to_change(
        self, params: Mapping[str, str], *, busy_code: str = "OperationDenied.AccountStatus"
    ) -> tuple[str, dict[str, Any]]:
        """The account a change names, after the checks every change makes, in the order
        Alibaba's pages list them; the caller holds the store's lock."""
        name = self._require(params, "AccountName")
        instance = self._instance(params)
        if not checks.accounts_supported(instance):
            raise checks.error("InvalidEngineVersion.Format")
        if instance["InstanceStatus"] != "Normal":
            raise checks.error("IncorrectDBInstanceState")
        accounts = {a["AccountName"]: a for a in self._live_accounts(instance["InstanceId"])}
        account = accounts.get(name)
        if account is None:
            # A built-in name (the instance ID) is not of the user format, so the format
            # is judged only for a name that matches nothing.
            checks.check_account_name_format(name)
            raise checks.error("InvalidAccountName.NotFound")
        checks.check_changeable(account)
        if self.clock() < account["AvailableAt"]:
            # This account is still being created or changed.
            raise checks.error(busy_code)
        if any(self.clock() < other["AvailableAt"] for other in accounts.values()):
            # Another account of the instance is: the instance is busy, as for creation.
            raise checks.error("IncorrectDBInstanceState")
        return instance["InstanceId"], account

    def _settle_later(self, instance_id: str, name: str, **fields: Any) -> None:
        """Every change leaves the account ``Unavailable`` for the activation delay."""
        self.store.update_account(
            instance_id, name, AvailableAt=self.clock() + self.activation_delay, **fields
        )

    def _delete_account(self, params: dict[str, str]) -> dict[str, Any]:
        with self.store.lock:
            instance_id, account = self._account_to_change(params)
            gone_at = self.clock() + self.activation_delay
            self._settle_later(instance_id, account["AccountName"], GoneAt=gone_at)
        return {}

    def _reset_account_password(self, params: dict[str, str]) -> dict[str, Any]:
        # The new password's format is checked and then forgotten: never kept.
        checks.check_account_password(self._require(params, "AccountPassword"))
        with self.store.lock:
            # A reset while the account is still changing: ResetAccountPassword's own code.
            instance_id, account = self._account_to_change(params, busy_code="TaskExists")
            self._settle_later(instance_id, account["AccountName"])
        return {}

    def _grant_account_privilege(self, params: dict[str, str]) -> dict[str, Any]:
        privilege = self._require(params, "AccountPrivilege")
        checks.check_granted_privilege(privilege)
        with self.store.lock:
            instance_id, account = self._account_to_change(params)
            self._settle_later(instance_id, account["AccountName"], AccountPrivilege=privilege)
        return {}

    def _modify_account_description(self, params: dict[str, str]) -> dict[str, Any]:
        description = self._require(params, "AccountDescription")
        checks.check_account_description(description)
        with self.store.lock:
            instance_id, account = self._account_to_change(params)
            self._settle_later(instance_id, account["AccountName"], AccountDescription=description)
        return {}

    def _describe_accounts(self, params: dict[str, str]) -> dict[str, Any]:
        instance = self._instance(params)
        if not checks.accounts_supported(instance):
            raise checks.error("InvalidEngineVersion.Format")
        wanted = params.get("AccountName")
        accounts = [
            self._account_view(account, instance["InstanceId"])
            for account in self._live_accounts(instance["InstanceId"])
            if not wanted or account["AccountName"] == wanted
        ]
        return {"Accounts": {"Account": accounts}}

    def _account_view(self, account: Mapping[str, Any], instance_id: str) -> dict[str, Any]:
        available = self.clock() >= account["AvailableAt"]
        return {
            "AccountName": account["AccountName"],
            "AccountStatus": "Available" if available else "Unavailable",
            "AccountType": account["AccountType"],
            "AccountDescription": account["AccountDescription"],
            "InstanceId": instance_id,
            "DatabasePrivileges": {
                "DatabasePrivilege": [{"AccountPrivilege": account["AccountPrivilege"]}]
            },
        }

    def _describe_instances(self, params: dict[str, str]) -> dict[str, Any]:
        region_id = self._require(params, "RegionId")
        items = [i for i in self.store.instances() if i["RegionId"] == region_id]
        if params.get("InstanceIds"):
            wanted = [i.strip() for i in params["InstanceIds"].split(",") if i.strip()]
            if len(wanted) > 30:
                raise checks.invalid_parameter("InstanceIds")
            items = [i for i in items if i["InstanceId"] in wanted]
        if params.get("InstanceStatus"):
            items = [i for i in items if i["InstanceStatus"] == params["InstanceStatus"]]
        page_number = _int_param(params, "PageNumber", default=1, low=1, high=10**6)
        page_size = _int_param(params, "PageSize", default=30, low=1, high=50)
        page = items[(page_number - 1) * page_size : page_number * page_size]
        # DescribeInstances does not report VpcAuthMode; DescribeInstanceAttribute does.
        summaries = [{k: v for k, v in i.items() if k != "VpcAuthMode"} for i in page]
        return {
            "Instances": {"KVStoreInstance": summaries},
            "TotalCount": len(items),
            "PageNumber": page_number,
            "PageSize": page_size,
        }

    def _describe_instance_attribute(self, params: dict[str, str]) -> dict[str, Any]:
        # No EditionType here (only DescribeInstances has it), and an unknown instance is
        # an empty list, not an error.
        try:
            instance = self._instance(params)
        except ApiError as error:
            if error.code != "InvalidInstanceId.NotFound":
                raise
            return {"Instances": {"DBInstanceAttribute": []}}
        attribute = {k: v for k, v in instance.items() if k != "EditionType"}
        return {"Instances": {"DBInstanceAttribute": [attribute]}}


def _int_param(params: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise checks.invalid_parameter(name) from None
    if not low <= value <= high:
        raise checks.invalid_parameter(name)
    return value
