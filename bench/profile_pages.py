"""Where each page's time goes: CPU time and cProfile of each page of `make bench`.

Run from the repository root: ``.venv/bin/python bench/profile_pages.py`` (``--help``).
A fresh SQLite database (or ``DATABASE_URL``'s server) is seeded as `make bench` does,
at the sizes given; each page is then requested through Django's test client (the
whole middleware stack, production settings) ``--repeat`` times: its CPU time is
measured, and its ratio to the ceiling's request by request (the figure that stays put
while a shared machine's speed drifts); then, under cProfile, its time is split into
what the templates, the database, the forms and the context processors cost
(cumulative, so the database's time within a template counts in both).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import Children, bench_environment, fresh_database, manage  # noqa: E402

# Where a page's time goes: the cumulative time of these functions (file, name).
BUCKETS = [
    ("templates", ("django/template/base.py", "render")),
    ("database", ("django/db/backends/utils.py", "_execute_with_wrappers")),
    ("forms", ("django/forms/forms.py", "full_clean")),
    ("context", ("django/template/context.py", "bind_template")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--instances", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--top", type=int, default=0, help="print the N costliest functions")
    parser.add_argument("--sort", default="tottime", help="their order (pstats: cumulative…)")
    parser.add_argument("--sql", action="store_true", help="print each page's queries")
    parser.add_argument(
        "--only", default="", help="profile only the pages whose key has one of these (a,b,…)"
    )
    args = parser.parse_args()

    from bench.results import Timing
    from bench.run import start_simulator

    children = Children()
    scratch = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
        database_url, _vendor, drop = fresh_database(
            os.environ.get("DATABASE_URL", ""), stamp, scratch
        )
        env = bench_environment(database_url, scratch)
        timing = Timing(rounds=1, seconds=1, saturation_seconds=1, connections=1, iterations=4)
        from bench.processes import Cores

        _, endpoint, execution_instances = start_simulator(
            children, env, Cores(None, None), scratch, timing
        )
        env["KVSTORE_ENDPOINT"] = endpoint
        manage(env, "migrate", "--no-input")
        manage(env, "collectstatic", "--no-input")
        os.environ.update(env)
        sys.path.insert(0, env["PYTHONPATH"].split(os.pathsep)[0])
        import django

        django.setup()
        try:
            profile(args, env, execution_instances)
        finally:
            from django.db import connections

            connections.close_all()
            drop()
    finally:
        children.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)


def profile(args, env, execution_instances) -> None:
    import logging

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.measure import build_pages
    from bench.run import detail_requests
    from bench.seeding import seed_instances, seed_known_accounts, seed_requests, seed_users

    for name in ("accounts_app", "axes"):
        logging.getLogger(name).setLevel(logging.WARNING)
    rng = random.Random(9)
    seed_instances(args.instances, rng, execution_instances)
    manage(env, "seed_audit", "--events", str(args.events))
    actors = seed_users()
    seed_requests(args.requests, rng, actors)
    seed_known_accounts(rng)
    from accounts_app.models import AuditChainHead

    head = AuditChainHead.objects.get(pk=1).seq
    wanted = args.only.split(",")
    pages = [
        page
        for page in build_pages(head, *detail_requests(actors))
        if any(part in page.key for part in wanted)
    ]
    clients = {}
    for role, user in actors.bench.items():
        clients[role] = Client(HTTP_HOST="127.0.0.1")
        clients[role].force_login(user)
    clients[None] = Client(HTTP_HOST="127.0.0.1")
    ceiling = clients["auditor"]
    header = f"{'page':46} {'CPU ms':>7} {'× ceiling':>9} {'queries':>7}  "
    print(header + "  ".join(f"{b:>9}" for b, _ in BUCKETS))
    for page in pages:
        client = clients[page.role]
        for _ in range(3):
            assert client.get(page.path).status_code == 200, page.path
        with CaptureQueriesContext(connection) as queries:
            client.get(page.path)
        count = len(queries)  # now: the next request empties the connection's log
        if args.sql:
            for query in queries.captured_queries:
                print("   ", query["sql"][:160])
        # CPU time without the profiler first: on a shared machine, wall time measures
        # the neighbours. Each request follows one of the ceiling (signed-in /livez), and
        # the page's figure is the median of its ratios to the ceiling just before it: a
        # shared virtual machine's speed drifts (the same page measured 4.8 and 8.1 ms
        # minutes apart), and the ratio stayed within a few per cent.
        spent, ratios = [], []
        for _ in range(args.repeat):
            started = time.process_time()
            ceiling.get("/livez")
            between = time.process_time()
            client.get(page.path)
            ended = time.process_time()
            spent.append(ended - between)
            ratios.append((ended - between) / (between - started))
        elapsed = statistics.median(spent) * 1000
        ratio = statistics.median(ratios)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.repeat):
            client.get(page.path)
        profiler.disable()
        stats = pstats.Stats(profiler)
        shares = attribute(stats, args.repeat)
        print(
            f"{page.label:46} {elapsed:7.2f} {ratio:8.2f}× {count:7d}  "
            + "  ".join(f"{shares[bucket]:7.2f}ms" for bucket, _ in BUCKETS)
        )
        if args.top:
            stats.sort_stats(args.sort).print_stats(args.top)


def attribute(stats: pstats.Stats, repeat: int) -> dict[str, float]:
    """Cumulative time of each bucket's function, in ms per request."""
    shares = {bucket: 0.0 for bucket, _ in BUCKETS}
    for (filename, _, name), (_, _, _, cumtime, _) in stats.stats.items():
        for bucket, (path, function) in BUCKETS:
            if filename.endswith(path) and name == function:
                shares[bucket] = max(shares[bucket], cumtime * 1000 / repeat)
    return shares


if __name__ == "__main__":
    main()
