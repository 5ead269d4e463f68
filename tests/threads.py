"""Running test code in threads at once, each with its own database connection."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

# Concurrency is proven on PostgreSQL (CI runs the suite there too). Decided before any
# database work: a skipped transactional test would still flush the database on its way
# out; serialized_rollback, so that the flush after these tests does not leave later
# tests without the groups, policies and content types the migrations created.
ON_POSTGRESQL_IN_TRANSACTIONS = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="concurrency is proven on PostgreSQL (CI runs the suite there too)",
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def run_together(
    work: Callable[[int], Any], count: int, *, refused: type[Exception] | None = None
) -> list[tuple[str, Any]]:
    """``work(0)`` to ``work(count - 1)``, each in a thread, released together by a
    barrier. The outcomes in finishing order: ("ok", result), ("refused", error) for an
    error of the ``refused`` type, ("failed", error) for any other."""
    barrier = threading.Barrier(count)
    outcomes: list[tuple[str, Any]] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            outcomes.append(("ok", work(index)))
        except Exception as error:
            kind = "refused" if refused and isinstance(error, refused) else "failed"
            outcomes.append((kind, error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
