"""The HMAC chain: verify_audit_chain finds an edited, a deleted and an inserted event.

Rows are corrupted with raw SQL after switching the append-only triggers off,
as someone with the database's owner account could.
"""

from __future__ import annotations

import hashlib
import importlib
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from accounts_app.audit import Origin, VerifyReport, record_event, verifier, verify_chain
from accounts_app.audit.chain import chain_signer
from accounts_app.audit.testing import permit_test_flush
from accounts_app.audit.verifier import (
    MAX_BREAKS,
    _ChainWalker,
    _missing,
    _walk_in_parallel,
    _walk_split,
)
from accounts_app.models import AuditChainHead, AuditEvent
from tests.threads import run_together

migration = importlib.import_module("accounts_app.migrations.0003_audit_append_only_triggers")
TABLE = AuditEvent._meta.db_table
EVENTS = 60


def seed(events: int = EVENTS) -> None:
    call_command("seed_audit", events=events, batch_size=25, stdout=io.StringIO())


def switch_triggers(*, on: bool) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # ALTER TABLE refuses while this transaction's foreign key checks wait.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {TABLE} {'ENABLE' if on else 'DISABLE'} TRIGGER USER")
        else:
            for sql in migration.SQLITE_FORWARD if on else migration.SQLITE_BACKWARD:
                cursor.execute(sql)


@contextmanager
def triggers_off() -> Iterator:
    """What the database owner can do: switch the append-only triggers off."""
    switch_triggers(on=False)
    yield
    switch_triggers(on=True)


def tamper(sql: str, params=()) -> None:
    with triggers_off(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def edit_comment():
    tamper(f"UPDATE {TABLE} SET comment = 'nothing happened' WHERE seq = 20")  # noqa: S608


def edit_time():
    event = AuditEvent.objects.get(seq=20)
    earlier = event.created_at - timedelta(minutes=5)
    tamper(
        f"UPDATE {TABLE} SET created_at = %s WHERE seq = 20",  # noqa: S608
        [connection.ops.adapt_datetimefield_value(earlier)],
    )


def delete_one():
    tamper(f"DELETE FROM {TABLE} WHERE seq = 20")  # noqa: S608


def delete_three():
    tamper(f"DELETE FROM {TABLE} WHERE seq BETWEEN 20 AND 22")  # noqa: S608


def delete_newest():
    tamper(f"DELETE FROM {TABLE} WHERE seq = %s", [EVENTS])  # noqa: S608


def insert_in_the_middle():
    """Make room after seq 20 and slip a forged event in, linked to the real 20.

    Without the key the forger cannot sign it; a plain SHA-256 is their best try.
    """
    real = AuditEvent.objects.get(seq=20)
    with triggers_off(), connection.cursor() as cursor:
        # Two steps, so that no moment has two rows with the same seq.
        cursor.execute(f"UPDATE {TABLE} SET seq = -seq - 1 WHERE seq > 20")  # noqa: S608
        cursor.execute(f"UPDATE {TABLE} SET seq = -seq WHERE seq < 0")  # noqa: S608
    forged = AuditEvent(
        seq=21,
        created_at=real.created_at,
        actor_name="mallory",
        action=AuditEvent.Action.ACCOUNT_CREATED,
        outcome=AuditEvent.Outcome.SUCCESS,
        instance_id="r-bp1backdoor",
        account_name="backdoor",
        prev_hash=real.hash,
        hash=hashlib.sha256(b"account_created backdoor").hexdigest(),
    )
    with triggers_off():
        AuditEvent.objects.bulk_create([forged])


def append_forged():
    newest = AuditEvent.objects.get(seq=EVENTS)
    forged = AuditEvent(
        seq=EVENTS + 1,
        created_at=newest.created_at,
        actor_name="mallory",
        action=AuditEvent.Action.LOGIN,
        outcome=AuditEvent.Outcome.SUCCESS,
        prev_hash=newest.hash,
        hash="f" * 64,
    )
    AuditEvent.objects.bulk_create([forged])


def rewind_head():
    """Delete the newest event and move the chain head back to match it."""
    delete_newest()
    previous = AuditEvent.objects.get(seq=EVENTS - 1)
    AuditChainHead.objects.filter(pk=1).update(seq=previous.seq, hash=previous.hash)


TAMPERING: dict[str, tuple[Callable[[], None], int, str]] = {
    "edited comment": (edit_comment, 20, "does not match its HMAC"),
    "edited time": (edit_time, 20, "does not match its HMAC"),
    "deleted event": (delete_one, 20, "event 20 missing"),
    "three deleted events": (delete_three, 20, "events 20 to 22 missing"),
    "deleted newest event": (delete_newest, EVENTS, "newest were deleted"),
    "inserted event": (insert_in_the_middle, 21, "does not match its HMAC"),
    "appended forged event": (append_forged, EVENTS + 1, "does not match its HMAC"),
}


@pytest.mark.django_db
def test_a_seeded_chain_verifies():
    seed()

    report = verify_chain(batch_size=7)

    assert report.ok, report.breaks
    assert (report.checked, report.head_seq) == (EVENTS, EVENTS)


@pytest.mark.django_db
def test_seeded_and_recorded_events_make_one_chain():
    record_event(action="login", outcome="success", origin=Origin.system("before"))
    seed(30)
    record_event(action="logout", outcome="success", origin=Origin.system("after"))

    report = verify_chain(batch_size=10)

    assert report.ok, report.breaks
    assert report.checked == 32


@pytest.mark.django_db
def test_an_empty_log_verifies():
    assert verify_chain().ok


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(TAMPERING))
def test_verify_finds_the_first_broken_event(case):
    seed()
    corrupt, broken_seq, reason = TAMPERING[case]
    corrupt()

    report = verify_chain(batch_size=7)

    assert not report.ok
    assert report.first_break.seq == broken_seq, report.breaks
    assert reason in report.first_break.reason


@pytest.mark.django_db
def test_an_inserted_event_also_breaks_the_next_link():
    seed()
    insert_in_the_middle()

    report = verify_chain()

    # Every later event moved up one seq, which its HMAC covers too.
    assert [b.seq for b in report.breaks[:3]] == [21, 22, 22]
    assert "prev_hash" in report.breaks[1].reason


@pytest.mark.django_db
def test_an_appended_forged_event_is_also_beyond_the_head():
    seed()
    append_forged()

    report = verify_chain()

    assert [(b.seq, "not in the chain head" in b.reason) for b in report.breaks] == [
        (EVENTS + 1, False),
        (EVENTS + 1, True),
    ]


@pytest.mark.django_db
def test_a_rewound_head_is_beyond_what_the_chain_alone_can_see():
    """The documented limit: delete the newest events *and* rewind the head.

    Only an outside copy of the head (verify_audit_chain's output) shows it.
    """
    seed()
    rewind_head()

    report = verify_chain()

    assert report.ok
    assert report.head_seq == EVENTS - 1


@pytest.mark.django_db
def test_an_anchor_kept_from_an_earlier_run_shows_the_rewound_head(capsys):
    seed()
    call_command("verify_audit_chain")
    anchor = capsys.readouterr().out.split("Chain head: ")[1].strip()
    rewind_head()

    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit_chain", anchor=anchor)

    assert exit_info.value.code == 1
    assert f"First break: seq {EVENTS}: the anchored event is gone" in capsys.readouterr().err
    call_command("verify_audit_chain", anchor=f"{EVENTS - 1}:{AuditChainHead.objects.get().hash}")


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(TAMPERING))
def test_a_walk_split_in_parts_finds_the_same_breaks(case):
    seed()
    TAMPERING[case][0]()
    sequential = verify_chain(batch_size=7).breaks

    for parts in (2, 3, 7):
        report = VerifyReport()
        walker = _ChainWalker(report, sign=chain_signer(), max_breaks=MAX_BREAKS)
        _walk_split(walker, head_seq=EVENTS, parts=parts, batch_size=4)
        head_seq, head_hash = AuditChainHead.objects.values_list("seq", "hash").get()
        if head_seq > report.last_seq:
            # What verify_chain() does next when the newest events are gone.
            gone = report.last_seq + 1
            walker.add(gone, _missing(gone, head_seq) + " (the newest were deleted)")
        else:
            walker.check_head(head_seq, head_hash)
        # The same places and the same reasons, a break at a seam included (3 parts:
        # event 20 is the last of the first part).
        assert report.breaks == sequential, parts


@pytest.mark.django_db
def test_the_command_reports_an_intact_chain(capsys):
    seed()

    call_command("verify_audit_chain")

    out = capsys.readouterr().out
    assert f"Checked {EVENTS} events" in out
    assert "intact" in out


@pytest.mark.django_db
def test_the_command_fails_and_names_the_edited_event(capsys):
    seed()
    edit_comment()

    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit_chain")

    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "First break: seq 20: content does not match its HMAC" in err


# --- PostgreSQL: real processes and real concurrent writers -------------------


# serialized_rollback: the chain head row (and the groups) come from a data
# migration, which the flush after a transactional test removes.
committed = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def committed_db():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (CI runs the suite there too)")
    # The flush after a transactional test must pass the TRUNCATE trigger.
    permit_test_flush()


@pytest.mark.postgres
@committed
def test_forked_workers_verify_a_chain_and_find_a_break(committed_db):
    # Restoring the serialized rows is audited (issue 23): the seeded events follow those.
    before = AuditEvent.objects.count()
    seed(400)
    assert verify_chain(batch_size=25, workers=3).ok
    edited, deleted = (before + 134, before + 300), before + 201

    with connection.cursor() as cursor:
        # The database owner's way round the triggers, outside any transaction.
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
        cursor.execute(f"UPDATE {TABLE} SET comment = 'x' WHERE seq IN (%s, %s)", edited)  # noqa: S608
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = %s", [deleted])  # noqa: S608
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")

    report = verify_chain(batch_size=25, workers=3)

    assert [b.seq for b in report.breaks] == sorted([*edited, deleted])
    assert report.checked == before + 399


@pytest.mark.postgres
@committed
def test_forked_workers_never_speak_over_the_parents_connection(committed_db):
    """The parent's connection stays open through the walk, and stays the parent's.

    A forked child inherits the parent's socket: had the children queried over it,
    their queries and answers would interleave (in one CI run a connection left open
    failed a walk with "lost synchronization with server").
    """
    seed(400)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        parent_session = cursor.fetchone()[0]

    report = verify_chain(batch_size=25, workers=3)

    assert report.ok, report.breaks
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] == parent_session


@pytest.mark.postgres
@committed
def test_concurrent_writers_never_fork_the_chain(committed_db):
    writers, events_each = 8, 25
    # Restoring the serialized rows sets the groups' permissions again, which is audited
    # like any change to a group (issue 23): count from what is there.
    before = AuditEvent.objects.count()

    def write(index: int) -> None:
        for n in range(events_each):
            record_event(
                action=AuditEvent.Action.LOGIN,
                outcome=AuditEvent.Outcome.SUCCESS,
                origin=Origin.system(f"writer-{index}"),
                comment=str(n),
            )

    outcomes = run_together(write, writers)

    assert [kind for kind, _ in outcomes] == ["ok"] * writers
    report = verify_chain()
    assert report.ok, report.breaks
    assert report.checked == before + writers * events_each
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, before + writers * events_each + 1))


@pytest.mark.django_db
def test_forked_workers_walk_their_parts_and_find_the_same_breaks():
    """_walk_in_parallel() itself: each part walked in a forked process of the pool.

    On SQLite's in-memory database (CI's) a forked child reads the parent's memory, this
    test's uncommitted rows included, and closing connections leaves it open;
    verify_chain() never splits there (_can_split), so the walk is called directly. On a
    database with real connections, test_forked_workers_verify_a_chain_and_find_a_break.
    """
    if not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
        pytest.skip("children see this test's rows only on in-memory SQLite")
    seed()
    edit_comment()
    sequential = verify_chain(batch_size=7).breaks
    report = VerifyReport()
    walker = _ChainWalker(report, sign=chain_signer(), max_breaks=MAX_BREAKS)

    _walk_in_parallel(walker, head_seq=EVENTS, workers=3, batch_size=4)

    assert report.breaks == sequential
    assert [b.seq for b in report.breaks] == [20]
    assert (report.checked, report.last_seq) == (EVENTS, EVENTS)


def split_walk(parts: int, map=map) -> VerifyReport:
    report = VerifyReport()
    walker = _ChainWalker(report, sign=chain_signer(), max_breaks=MAX_BREAKS)
    _walk_split(walker, head_seq=EVENTS, parts=parts, batch_size=4, map=map)
    return report


@pytest.mark.django_db
def test_a_split_walk_has_as_many_parts_as_workers_and_counts_each_event_once():
    seed()
    parts_walked = []

    def recording_map(function, *columns):
        parts_walked.extend(zip(*columns[:2], strict=True))
        return map(function, *columns)

    report = split_walk(3, map=recording_map)

    assert parts_walked == [(None, 20), (20, 40), (40, None)]
    assert (report.checked, report.last_seq, report.breaks) == (EVENTS, EVENTS, [])


@pytest.mark.django_db
def test_a_relinked_event_at_a_seam_is_found_as_in_a_sequential_walk():
    """Seq 21 opens the second of three parts: its link is checked at the seam."""
    seed()
    tamper(f"UPDATE {TABLE} SET prev_hash = %s WHERE seq = 21", ["e" * 64])  # noqa: S608
    sequential = verify_chain(batch_size=7).breaks

    report = split_walk(3)

    assert report.breaks == sequential
    assert (21, "prev_hash is not the previous event's hash (inserted or relinked)") in [
        (b.seq, b.reason) for b in report.breaks
    ]


@pytest.mark.django_db
def test_a_part_whose_events_are_all_deleted_is_an_empty_part_not_an_error():
    seed()
    tamper(f"DELETE FROM {TABLE} WHERE seq BETWEEN 21 AND 40")  # noqa: S608

    report = split_walk(3)

    assert [(b.seq, b.reason) for b in report.breaks] == [(21, "events 21 to 40 missing (deleted)")]
    assert report.checked == EVENTS - 20


@pytest.mark.django_db
def test_the_report_stops_at_max_breaks():
    seed()
    tamper(f"UPDATE {TABLE} SET comment = 'x' WHERE seq IN (10, 20, 30, 40)")  # noqa: S608

    assert [b.seq for b in verify_chain(max_breaks=3).breaks] == [10, 20, 30]


class OtherConnection:
    """What the verifier asks of its database connection, as another database answers."""

    def __init__(self, vendor: str, *, in_memory: bool = False, in_atomic_block: bool = False):
        self.vendor = vendor
        self.in_memory = in_memory
        self.in_atomic_block = in_atomic_block

    def is_in_memory_db(self) -> bool:
        return self.in_memory


@pytest.mark.parametrize(
    ("other", "workers", "head_seq", "splits"),
    [
        (OtherConnection("postgresql"), 2, 8, True),  # one batch (4) or more per part
        (OtherConnection("sqlite"), 2, 8, True),  # a database file: each child opens it
        (OtherConnection("postgresql"), 2, 7, False),  # less than a batch per part
        (OtherConnection("postgresql"), 1, 800, False),  # one worker: nothing to split
        (OtherConnection("sqlite", in_memory=True), 2, 800, False),  # lives in this process
        (OtherConnection("postgresql", in_memory=True), 2, 8, True),  # only SQLite's is
        (OtherConnection("postgresql", in_atomic_block=True), 2, 800, False),  # rows unseen
    ],
)
def test_the_walk_splits_only_where_forked_children_read_the_same_chain(
    monkeypatch, other, workers, head_seq, splits
):
    monkeypatch.setattr(verifier, "connection", other)
    assert verifier._can_split(workers, head_seq, 4) is splits


def test_the_time_is_formatted_in_utc_by_postgresql_and_an_unknown_database_is_named(
    monkeypatch,
):
    monkeypatch.setattr(verifier, "connection", OtherConnection("postgresql"))
    assert verifier._canonical_time_sql("t").startswith("to_char(t AT TIME ZONE 'UTC'")
    monkeypatch.setattr(verifier, "connection", OtherConnection("oracle"))
    with pytest.raises(NotImplementedError, match="does not support oracle"):
        verifier._canonical_time_sql("t")


@pytest.mark.django_db
def test_verify_chain_gives_a_split_walk_its_head_workers_and_batches(monkeypatch):
    """Where the walk splits (PostgreSQL, a database file), verify_chain() hands the
    forked walk the chain's head, the workers and the batch size: the same report."""
    if not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
        pytest.skip("children see this test's rows only on in-memory SQLite")
    seed()
    edit_comment()
    sequential = verify_chain(batch_size=7)
    monkeypatch.setattr(verifier, "_can_split", lambda workers, head_seq, batch_size: True)

    split = verify_chain(workers=3, batch_size=4)

    assert split.breaks == sequential.breaks
    assert [b.seq for b in split.breaks] == [20]
    assert (split.checked, split.last_seq) == (EVENTS, EVENTS)


@pytest.mark.django_db
def test_seeding_starts_a_chain_whose_head_row_a_flush_took():
    """After a transactional test's flush the chain head's row is gone (migration 0002
    made it); record_event() starts the chain again, and so does seed_audit."""
    AuditChainHead.objects.all().delete()

    call_command("seed_audit", events=30, batch_size=10, stdout=io.StringIO())

    assert AuditChainHead.objects.get().seq == 30
    assert verify_chain().ok
