"""The demo estate: ten instances across cn-hangzhou and cn-shanghai.

Every case a DBA meets when creating accounts (docs/alibaba-api.md):

- r-bp1ord5x0c9kq2m7wa  5.0 standard, healthy: the everyday case
- r-bp1ses6c1u8vh3n5tz  6.0 cluster, healthy
- r-bp1cat7r2w6jd4p8ye  7.0 rwsplit (read/write splitting), healthy
- r-bp1leg4s3f5kx7b1qa  4.0 standard: the one that allows RoleRepl
- r-bp1old2e4g8mz6c3hr  2.8: InvalidEngineVersion.Format, no accounts to list
- r-bp1inv5h5q9ta2d7ks  5.0, status Changing: IncorrectDBInstanceState
- r-uf6pay6s6w3rc8e1vn  6.0 standard, already 18 user accounts: AccountLimitExceeded
- r-uf6flg7s7y2nf5k9pb  7.0 standard, VpcAuthMode Close: password-free access from the
  VPC is on (the only one; every other instance is Open, the default: password required)
- r-uf6ana6c8j4xl1t6wd  6.0 cluster, Tair enterprise edition
- r-uf6rep4c9d7vg3s2me  4.0 cluster: 4.0 but not standard, so no RoleRepl

The first six are in cn-hangzhou (ids ``r-bp1...``), the rest in cn-shanghai (``r-uf6...``).
Instances with accounts have their built-in accounts (type Super), as on the real service:
one named after the instance, and on 6.0 and later also ``default``. They are not
counted in the limit of 18.
"""

from __future__ import annotations

from typing import Any

from .state import STATE_FORMAT, State

_CLASSES = {
    ("standard", "Community"): "redis.master.small.default",
    ("cluster", "Community"): "redis.shard.small.2.ce",
    ("rwsplit", "Community"): "redis.splitrw.small.2.ce",
    ("cluster", "Enterprise"): "tair.rdb.with.proxy.2g",
}


def make_instance(
    instance_id: str,
    name: str,
    region_id: str,
    zone_id: str,
    engine_version: str,
    architecture_type: str = "standard",
    *,
    status: str = "Normal",
    edition_type: str = "Community",
    instance_type: str = "Redis",
    vpc_auth_mode: str = "Open",
    capacity: int = 1024,
    tags: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An instance record with the API's field names (DescribeInstances' and
    DescribeInstanceAttribute's together: each answer leaves out what it lacks)."""
    instance = {
        "InstanceId": instance_id,
        "InstanceName": name,
        "RegionId": region_id,
        "ZoneId": zone_id,
        "EngineVersion": engine_version,
        "ArchitectureType": architecture_type,
        "EditionType": edition_type,
        "InstanceType": instance_type,
        "InstanceStatus": status,
        "InstanceClass": _CLASSES.get(
            (architecture_type, edition_type), "redis.master.small.default"
        ),
        "ConnectionDomain": f"{instance_id}.redis.rds.aliyuncs.com",
        "Port": 6379,
        "NetworkType": "VPC",
        "VpcId": f"vpc-{region_id.split('-')[-1]}demo01",
        "VSwitchId": f"vsw-{zone_id.split('-')[-1]}demo01",
        "PrivateIp": "172.16.0.10",
        "Capacity": capacity,
        "ChargeType": "PrePaid",
        "CreateTime": "2024-03-18T02:14:51Z",
        "VpcAuthMode": vpc_auth_mode,
        # As DescribeInstances lists them: Tags.Tag[] of Key and Value.
        "Tags": {"Tag": [{"Key": k, "Value": v} for k, v in (tags or _tags_of(name)).items()]},
    }
    instance.update(extra)
    return instance


def _tags_of(name: str) -> dict[str, str]:
    """Tags a team would put on an instance named like this one: its environment, team
    and application, read from the name (orders-cache: team orders, app orders-cache)."""
    team = name.split("-")[0]
    env = "staging" if "staging" in name or "test" in name else "prod"
    return {"env": env, "team": team, "app": name}


def make_account(
    instance_id: str,
    name: str,
    privilege: str = "RoleReadWrite",
    description: str = "",
    *,
    account_type: str = "Normal",
    available_at: float = 0.0,
) -> dict[str, Any]:
    return {
        "AccountName": name,
        "AccountType": account_type,
        "AccountDescription": description,
        "AccountPrivilege": privilege,
        "InstanceId": instance_id,
        "AvailableAt": available_at,
    }


def builtin_accounts(instance_id: str, engine_version: str) -> list[dict[str, Any]]:
    """The instance's built-in accounts: none below 4.0, two from 6.0 on."""
    version = tuple(int(part) for part in engine_version.split("."))
    if version < (4, 0):
        return []
    names = [instance_id, "default"] if version >= (6, 0) else [instance_id]
    return [
        make_account(instance_id, name, "RoleReadWrite", account_type="Super") for name in names
    ]


def demo_estate() -> State:
    hz, sh = "cn-hangzhou", "cn-shanghai"
    instances = [
        make_instance("r-bp1ord5x0c9kq2m7wa", "orders-cache", hz, "cn-hangzhou-h", "5.0"),
        make_instance(
            "r-bp1ses6c1u8vh3n5tz",
            "session-store",
            hz,
            "cn-hangzhou-i",
            "6.0",
            "cluster",
            capacity=4096,
        ),
        make_instance(
            "r-bp1cat7r2w6jd4p8ye", "catalog-rwsplit", hz, "cn-hangzhou-h", "7.0", "rwsplit"
        ),
        make_instance("r-bp1leg4s3f5kx7b1qa", "legacy-queue", hz, "cn-hangzhou-i", "4.0"),
        make_instance("r-bp1old2e4g8mz6c3hr", "ancient-cache", hz, "cn-hangzhou-h", "2.8"),
        make_instance(
            "r-bp1inv5h5q9ta2d7ks", "inventory", hz, "cn-hangzhou-i", "5.0", status="Changing"
        ),
        make_instance("r-uf6pay6s6w3rc8e1vn", "payments-cache", sh, "cn-shanghai-e", "6.0"),
        make_instance(
            "r-uf6flg7s7y2nf5k9pb",
            "feature-flags",
            sh,
            "cn-shanghai-f",
            "7.0",
            vpc_auth_mode="Close",
        ),
        make_instance(
            "r-uf6ana6c8j4xl1t6wd",
            "analytics",
            sh,
            "cn-shanghai-e",
            "6.0",
            "cluster",
            edition_type="Enterprise",
            instance_type="Tair",
            capacity=8192,
        ),
        make_instance(
            "r-uf6rep4c9d7vg3s2me", "report-cache", sh, "cn-shanghai-f", "4.0", "cluster"
        ),
    ]
    accounts: dict[str, list[dict[str, Any]]] = {item["InstanceId"]: [] for item in instances}
    for item in instances:
        accounts[item["InstanceId"]].extend(
            builtin_accounts(item["InstanceId"], item["EngineVersion"])
        )

    def add(instance_id: str, name: str, privilege: str, description: str = "") -> None:
        accounts[instance_id].append(make_account(instance_id, name, privilege, description))

    add("r-bp1ord5x0c9kq2m7wa", "orders_app", "RoleReadWrite", "orders-service")
    add("r-bp1ord5x0c9kq2m7wa", "reporting_ro", "RoleReadOnly", "BI-dashboards")
    add("r-bp1ses6c1u8vh3n5tz", "sessions_rw", "RoleReadWrite", "web-sessions")
    add("r-bp1cat7r2w6jd4p8ye", "catalog_ro", "RoleReadOnly", "catalog-readers")
    add("r-bp1leg4s3f5kx7b1qa", "queue_repl", "RoleRepl", "replication-to-dr")
    add("r-bp1inv5h5q9ta2d7ks", "inventory_rw", "RoleReadWrite")
    add("r-uf6flg7s7y2nf5k9pb", "flags_ro", "RoleReadOnly", "feature-flag-readers")
    add("r-uf6ana6c8j4xl1t6wd", "analyst_ro", "RoleReadOnly", "数据分析")
    for number in range(1, 19):  # 18 user accounts, the limit (Super ones not counted)
        add("r-uf6pay6s6w3rc8e1vn", f"payments_svc{number:02d}", "RoleReadWrite")
    return {
        "format": STATE_FORMAT,
        "instances": {item["InstanceId"]: item for item in instances},
        "accounts": accounts,
    }


# A bigger estate on demand (seed_demo --instances N): regions, with the ID prefixes
# Alibaba gives instances there, and the teams, applications and environments that
# names and tags are made of, so that searching by any of them finds a handful.
BIG_ESTATE_REGIONS = {
    "cn-hangzhou": ("r-bp1", "cn-hangzhou-h"),
    "cn-shanghai": ("r-uf6", "cn-shanghai-e"),
    "cn-beijing": ("r-2ze", "cn-beijing-g"),
    "cn-shenzhen": ("r-wz9", "cn-shenzhen-e"),
    "ap-southeast-1": ("r-t4n", "ap-southeast-1-a"),
}
_TEAMS = ("orders", "payments", "search", "ads", "risk", "growth", "logistics", "billing")
_APPS = ("cache", "sessions", "queue", "ratelimit", "feed", "leaderboard")
_ENVS = ("prod", "staging", "test")
_ENGINES = ("5.0", "6.0", "7.0", "4.0")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def bigger_estate(count: int) -> State:
    """The demo estate and generated instances up to `count` in all, the same every time."""
    state = demo_estate()
    regions = list(BIG_ESTATE_REGIONS.items())
    for number in range(max(0, count - len(state["instances"]))):
        region_id, (prefix, zone_id) = regions[number % len(regions)]
        team = _TEAMS[number % len(_TEAMS)]
        app = _APPS[(number // len(_TEAMS)) % len(_APPS)]
        env = _ENVS[number % len(_ENVS)]
        engine = _ENGINES[number % len(_ENGINES)]
        instance_id = prefix + _id_suffix(number, 20 - len(prefix))
        instance = make_instance(
            instance_id,
            f"{team}-{app}-{env}-{number:03d}",
            region_id,
            zone_id,
            engine,
            "cluster" if number % 5 == 0 else "standard",
            tags={"env": env, "team": team, "app": f"{team}-{app}"},
        )
        state["instances"][instance_id] = instance
        state["accounts"][instance_id] = builtin_accounts(instance_id, engine)
    return state


def _id_suffix(number: int, length: int) -> str:
    # Deterministic, spread over the alphabet like real IDs, unique per number.
    digits, value = [], number * 7919 + 104729
    for _ in range(length):
        value, digit = divmod(value * 31 + 17, len(_ID_ALPHABET))
        digits.append(_ID_ALPHABET[digit])
    return "".join(digits)
