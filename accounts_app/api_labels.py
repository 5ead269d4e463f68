"""Display names of the values the R-KVStore API returns (statuses, architectures...).

Pages show these instead of the raw API value, so a Chinese user reads 运行中 where the
API says `Normal`, as in the Alibaba Cloud console; the English names stay the API's own
words. A value not listed here (a status Alibaba adds later) is shown as it came.
The messages of accounts_app.rules keep the raw value: they name what the API checks.

Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-describeinstances-redis
(InstanceStatus, ArchitectureType, EditionType) and
https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-describeaccounts-redis
(AccountStatus, AccountType).
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import pgettext_lazy

from accounts_app.rules import ACCOUNT_TYPE_CHOICES, PRIVILEGE_CHOICES
from accounts_app.translations import translated

INSTANCE_STATUSES: dict[str, Promise] = {
    "Normal": pgettext_lazy("instance status", "Normal"),
    "Creating": pgettext_lazy("instance status", "Creating"),
    "Changing": pgettext_lazy("instance status", "Changing"),
    "Inactive": pgettext_lazy("instance status", "Inactive"),
    "Flushing": pgettext_lazy("instance status", "Flushing"),
    "Released": pgettext_lazy("instance status", "Released"),
    "Transforming": pgettext_lazy("instance status", "Transforming"),
    "Unavailable": pgettext_lazy("instance status", "Unavailable"),
    "Error": pgettext_lazy("instance status", "Error"),
    "Migrating": pgettext_lazy("instance status", "Migrating"),
    "BackupRecovering": pgettext_lazy("instance status", "BackupRecovering"),
    "MinorVersionUpgrading": pgettext_lazy("instance status", "MinorVersionUpgrading"),
    "MajorVersionUpgrading": pgettext_lazy("instance status", "MajorVersionUpgrading"),
    "NetworkModifying": pgettext_lazy("instance status", "NetworkModifying"),
    "SSLModifying": pgettext_lazy("instance status", "SSLModifying"),
}

ARCHITECTURES: dict[str, Promise] = {
    "standard": pgettext_lazy("architecture", "standard"),
    "cluster": pgettext_lazy("architecture", "cluster"),
    "rwsplit": pgettext_lazy("architecture", "rwsplit"),
}

EDITIONS: dict[str, Promise] = {
    "Community": pgettext_lazy("edition", "Community"),
    "Enterprise": pgettext_lazy("edition", "Enterprise"),
}

ACCOUNT_STATUSES: dict[str, Promise] = {
    "Available": pgettext_lazy("account status", "Available"),
    "Unavailable": pgettext_lazy("account status", "Unavailable"),
}

ACCOUNT_TYPES: dict[str, Promise] = {
    **dict(ACCOUNT_TYPE_CHOICES),
    "Super": pgettext_lazy("account type", "Super"),
}

PRIVILEGES: dict[str, Promise] = dict(PRIVILEGE_CHOICES)


def instance_status_label(value: str) -> str:
    return translated(INSTANCE_STATUSES, value)


def architecture_label(value: str) -> str:
    return translated(ARCHITECTURES, value)


def edition_label(value: str) -> str:
    return translated(EDITIONS, value)


def account_status_label(value: str) -> str:
    return translated(ACCOUNT_STATUSES, value)


def account_type_label(value: str) -> str:
    return translated(ACCOUNT_TYPES, value)


def privilege_label(value: str) -> str:
    return translated(PRIVILEGES, value)


# Region IDs and the names Alibaba gives them (English here, the console's Chinese names
# in the translation): "Common region IDs", https://help.aliyun.com/document_detail/140601.html
# (English: https://www.alibabacloud.com/help/doc-detail/140601.htm) and the ECS regions
# list, https://www.alibabacloud.com/help/en/ecs/product-overview/regions-and-zones/.
REGIONS: dict[str, Promise] = {
    "cn-qingdao": pgettext_lazy("region", "China (Qingdao)"),
    "cn-beijing": pgettext_lazy("region", "China (Beijing)"),
    "cn-zhangjiakou": pgettext_lazy("region", "China (Zhangjiakou)"),
    "cn-huhehaote": pgettext_lazy("region", "China (Hohhot)"),
    "cn-wulanchabu": pgettext_lazy("region", "China (Ulanqab)"),
    "cn-hangzhou": pgettext_lazy("region", "China (Hangzhou)"),
    "cn-shanghai": pgettext_lazy("region", "China (Shanghai)"),
    "cn-nanjing": pgettext_lazy("region", "China (Nanjing - Local Region)"),
    "cn-fuzhou": pgettext_lazy("region", "China (Fuzhou - Local Region)"),
    "cn-shenzhen": pgettext_lazy("region", "China (Shenzhen)"),
    "cn-heyuan": pgettext_lazy("region", "China (Heyuan)"),
    "cn-guangzhou": pgettext_lazy("region", "China (Guangzhou)"),
    "cn-chengdu": pgettext_lazy("region", "China (Chengdu)"),
    "cn-hongkong": pgettext_lazy("region", "China (Hong Kong)"),
    "ap-northeast-1": pgettext_lazy("region", "Japan (Tokyo)"),
    "ap-northeast-2": pgettext_lazy("region", "South Korea (Seoul)"),
    "ap-southeast-1": pgettext_lazy("region", "Singapore"),
    "ap-southeast-3": pgettext_lazy("region", "Malaysia (Kuala Lumpur)"),
    "ap-southeast-5": pgettext_lazy("region", "Indonesia (Jakarta)"),
    "us-west-1": pgettext_lazy("region", "US (Silicon Valley)"),
    "us-east-1": pgettext_lazy("region", "US (Virginia)"),
    "eu-central-1": pgettext_lazy("region", "Germany (Frankfurt)"),
    "eu-west-1": pgettext_lazy("region", "UK (London)"),
    "me-east-1": pgettext_lazy("region", "UAE (Dubai)"),
}


def region_name(value: str) -> str:
    return translated(REGIONS, value)


def region_label(value: str) -> str:
    """A region as pages show it: its name in the reader's language, then its ID (the
    value the API and the filters take); an ID not listed stays as it came."""
    return f"{translated(REGIONS, value)} · {value}" if value in REGIONS else value
