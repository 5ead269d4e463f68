"""What a run measured: the sizes it seeded, its timing, its figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.measure import Flow, Page
    from bench.processes import Cores


@dataclass(frozen=True)
class Sizes:
    events: int
    instances: int
    requests: int


FULL = Sizes(events=1_000_000, instances=5_000, requests=50_000)
QUICK = Sizes(events=20_000, instances=500, requests=2_000)


@dataclass
class Timing:
    rounds: int
    seconds: int
    saturation_seconds: int
    connections: int
    iterations: int


@dataclass
class Results:
    vendor: str
    database_version: str
    sizes: Sizes
    timing: Timing
    cores: Cores
    started: datetime
    others_share: float = 0.0  # of all CPUs, used by other processes during the pages
    seed_seconds: dict[str, float] = field(default_factory=dict)
    pages: list[Page] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    form: dict = field(default_factory=dict)
    signing: dict = field(default_factory=dict)
    client: dict = field(default_factory=dict)
    verify: dict = field(default_factory=dict)  # --workers 1
    verify_shipped: dict = field(default_factory=dict)  # --workers as shipped
    export: dict = field(default_factory=dict)
    total_seconds: float = 0.0


def pages_by_key(results: Results) -> dict[str, Page]:
    return {page.key: page for page in results.pages}
