"""The check of the chain: verify_chain() walks every event in seq order."""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from django.db import connection, connections

from accounts_app.audit.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    MESSAGE_FIELDS,
    Signer,
    canonical_json,
    chain_signer,
)
from accounts_app.models import AuditChainHead, AuditEvent


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.reason}"


@dataclass
class VerifyReport:
    checked: int = 0
    last_seq: int = 0
    head_seq: int = 0
    head_hash: str = ""
    seconds: float = 0.0
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> ChainBreak | None:
        return self.breaks[0] if self.breaks else None


# How many breaks one run lists: past the first few, more detail rarely helps.
MAX_BREAKS = 20


def verify_chain(
    *, batch_size: int = 20_000, workers: int = 1, max_breaks: int = MAX_BREAKS
) -> VerifyReport:
    """Walk every event in seq order and check its HMAC, its link and its place.

    - a missing seq means an event was deleted;
    - a prev_hash that is not the previous event's hash means an event was
      inserted (or the previous one rewritten together with its hash);
    - a hash that does not match the content means the event was edited;
    - the last event must be the one AuditChainHead names, or the newest
      events were deleted (or forged ones appended).

    Reads in keyset batches of raw rows (no model instances). With workers > 1
    the seq range is split between forked processes, each with its own
    connection, and the seams are checked here. Events appended while it runs
    are checked too.
    """
    started = time.perf_counter()
    report = VerifyReport()
    walker = _ChainWalker(report, sign=chain_signer(), max_breaks=max_breaks)
    head_seq, _ = _chain_head()
    if _can_split(workers, head_seq, batch_size):
        _walk_in_parallel(walker, head_seq=head_seq, workers=workers, batch_size=batch_size)
    else:
        walker.walk(_raw_batches(after=None, batch_size=batch_size))
    while True:
        head_seq, head_hash = _chain_head()
        if head_seq <= report.last_seq:
            walker.check_head(head_seq, head_hash)
            break
        # The head is ahead: either writers appended while we walked (an event
        # and the head move in one transaction, so its events are visible now:
        # walk on), or the newest events are gone.
        before = report.last_seq
        walker.walk(_raw_batches(after=before, batch_size=batch_size))
        if report.last_seq == before:
            walker.add(before + 1, _missing(before + 1, head_seq) + " (the newest were deleted)")
            break
    report.head_seq, report.head_hash = head_seq, head_hash
    report.seconds = time.perf_counter() - started
    return report


def _chain_head() -> tuple[int, str]:
    return AuditChainHead.objects.filter(pk=1).values_list("seq", "hash").get()


def _missing(first: int, last: int) -> str:
    return f"event {first} missing" if first == last else f"events {first} to {last} missing"


class _ChainWalker:
    """Checks rows in seq order, carrying the expected seq and previous hash along."""

    def __init__(self, report: VerifyReport, *, sign: Signer, max_breaks: int) -> None:
        self.report = report
        self.sign = sign
        self.max_breaks = max_breaks
        self.prev_hash = GENESIS_HASH
        self.expected = 1

    def add(self, seq: int, reason: str) -> None:
        if len(self.report.breaks) < self.max_breaks:
            self.report.breaks.append(ChainBreak(seq, reason))

    def walk(self, rows: Iterable[tuple]) -> None:
        report, sign = self.report, self.sign.sign_encoded
        expected, prev_hash = self.expected, self.prev_hash
        checked, last_seq = 0, report.last_seq
        # Plain comparisons and locals: this loop runs once per event of the log.
        for seq, hashed_json, stored_prev, stored_hash in rows:
            # A gap or a misplaced row explains a broken link: report it once.
            if seq == expected and stored_prev == prev_hash:
                pass
            elif seq > expected:
                self.add(expected, _missing(expected, seq - 1) + " (deleted)")
            elif seq < expected:
                self.add(seq, "event out of place (inserted)")
            else:
                self.add(seq, "prev_hash is not the previous event's hash (inserted or relinked)")
            # The hashed values as the chain's JSON (_raw_batches).
            if sign(hashed_json, stored_prev) != stored_hash:
                self.add(seq, "content does not match its HMAC (edited, or forged without the key)")
            prev_hash = stored_hash
            if seq >= expected:
                expected = seq + 1
            if seq > last_seq:
                last_seq = seq
            checked += 1
        report.checked += checked
        report.last_seq = last_seq
        self.expected, self.prev_hash = expected, prev_hash

    def check_head(self, head_seq: int, head_hash: str) -> None:
        if head_seq < self.report.last_seq:
            self.add(head_seq + 1, f"events after {head_seq} are not in the chain head (inserted)")
        elif head_hash != self.prev_hash:
            self.add(head_seq, "the chain head's hash is not the last event's hash")

    def join(self, segment: _Segment) -> None:
        """Continue the walk with a segment another process has checked.

        That process checked every row of it against the one before, except
        the first row's place and link: the seam, checked here.
        """
        if segment.first_row is None:
            return
        seq, stored_prev = segment.first_row[0], segment.first_row[-2]
        if seq > self.expected:
            self.add(self.expected, _missing(self.expected, seq - 1) + " (deleted)")
        elif seq < self.expected:
            self.add(seq, "event out of place (inserted)")
        elif stored_prev != self.prev_hash:
            self.add(seq, "prev_hash is not the previous event's hash (inserted or relinked)")
        for chain_break in segment.breaks:
            self.add(chain_break.seq, chain_break.reason)
        self.report.checked += segment.checked
        self.report.last_seq = max(self.report.last_seq, segment.last_seq)
        self.expected, self.prev_hash = segment.expected, segment.last_hash


@dataclass
class _Segment:
    first_row: tuple | None = None
    breaks: list[ChainBreak] = field(default_factory=list)
    checked: int = 0
    last_seq: int = 0
    expected: int = 0
    last_hash: str = ""


def _can_split(workers: int, head_seq: int, batch_size: int) -> bool:
    return (
        workers > 1
        and head_seq >= workers * batch_size
        and "fork" in multiprocessing.get_all_start_methods()
        # A forked child cannot share an in-memory database or the parent's transaction.
        and not (connection.vendor == "sqlite" and connection.is_in_memory_db())
        and not connection.in_atomic_block
    )


def _walk_in_parallel(walker: _ChainWalker, *, head_seq: int, workers: int, batch_size: int):
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_open_own_connections
    ) as pool:
        _walk_split(walker, head_seq=head_seq, parts=workers, batch_size=batch_size, map=pool.map)


def _open_own_connections() -> None:
    """In a forked child: set aside the connections inherited from the parent.

    An inherited connection's socket (or SQLite file handle) is the parent's and
    every sibling's too: queries sent over it from several processes interleave, and
    each reads the others' answers ("lost synchronization with server"). Closing it
    could end the parent's session, so the child keeps the inherited wrappers untouched
    until it exits and gives Django new ones, which connect on the first query.
    """
    for alias in connections:
        inherited = connections[alias]
        if inherited.vendor == "sqlite" and inherited.is_in_memory_db():
            # That database is in the memory the child inherited: only the inherited
            # connection reads it as the parent left it (tests walk it so).
            continue
        _INHERITED_CONNECTIONS.append(inherited)
        connections[alias] = connections.create_connection(alias)


# Held, never used or closed, for the life of a forked child (see above).
_INHERITED_CONNECTIONS: list = []


def _walk_split(walker: _ChainWalker, *, head_seq: int, parts: int, batch_size: int, map=map):
    """Walk the chain as `parts` seq ranges checked by `map`, then check the seams."""
    # The first range starts below 1 and the last has no end, as in the
    # sequential walk: rows forged outside 1..head are read too.
    bounds = [None, *(head_seq * i // parts for i in range(1, parts)), None]
    for segment in map(
        _walk_segment, bounds[:-1], bounds[1:], [batch_size] * parts, [walker.max_breaks] * parts
    ):
        walker.join(segment)


def _walk_segment(after: int | None, upto: int | None, batch_size: int, max_breaks: int):
    """Check rows after < seq <= upto, all but the first one's place and link."""
    rows = _raw_batches(after=after, upto=upto, batch_size=batch_size)
    first = next(rows, None)
    if first is None:
        return _Segment()
    report = VerifyReport()
    walker = _ChainWalker(report, sign=chain_signer(), max_breaks=max_breaks)
    walker.expected, walker.prev_hash = first[0], first[-2]
    walker.walk(itertools.chain([first], rows))
    if multiprocessing.parent_process() is not None:
        # A pool worker leaves with os._exit(): say goodbye to the server first.
        connections.close_all()
    return _Segment(
        first_row=first,
        breaks=report.breaks,
        checked=report.checked,
        last_seq=report.last_seq,
        expected=walker.expected,
        last_hash=walker.prev_hash,
    )


def _raw_batches(*, after: int | None, batch_size: int, upto: int | None = None) -> Iterator[tuple]:
    """Rows of (seq, the hashed values as the chain's JSON, prev_hash, hash),
    after < seq <= upto, in seq order.

    The first walk starts with after=None, so that a row forged at seq 0 or
    below is read too.
    """
    quote = connection.ops.quote_name
    json_in_sql = connection.vendor == "sqlite"
    hashed = [_canonical_json_sql()] if json_in_sql else _hashed_columns()
    columns = ["seq", *hashed, quote("prev_hash"), quote("hash")]
    # Names from the model's own metadata, never from input.
    select = f"SELECT {', '.join(columns)} FROM {quote(AuditEvent._meta.db_table)}"  # noqa: S608
    while True:
        conditions, params = [], []
        if after is not None:
            conditions.append("seq > %s")
            params.append(after)
        if upto is not None:
            conditions.append("seq <= %s")
            params.append(upto)
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        with connection.cursor() as cursor:
            cursor.execute(f"{select} {where}ORDER BY seq LIMIT %s", [*params, batch_size])
            rows = cursor.fetchall()
        yield from rows if json_in_sql else _with_canonical_json(rows)
        if len(rows) < batch_size:
            return
        after = rows[-1][0]


# SQLite's json_array() writes the hashed values' JSON quicker than Python does from
# eighteen values read apart (a million events: 3.7 s in one process, 6.7 s before).
# PostgreSQL's JSON functions cost its server more than Python's encoder costs here
# (to_json() per value 4.5 s, json_build_array() 2.9 s, the plain columns 0.7 s): it
# sends the values, and the JSON is written here with the chain's own encoder.


def _hashed_columns() -> list[str]:
    """The columns of HASHED_FIELDS, then of MESSAGE_FIELDS, created_at as its text."""
    quote = connection.ops.quote_name
    columns = []
    for name in (*HASHED_FIELDS, *MESSAGE_FIELDS):
        column = quote(AuditEvent._meta.get_field(name).column)
        columns.append(_canonical_time_sql(column) if name == "created_at" else column)
    return columns


def _with_canonical_json(rows: list[tuple]) -> list[tuple]:
    """(seq, HASHED_FIELDS..., MESSAGE_FIELDS..., prev_hash, hash) rows as (seq, their
    JSON, prev_hash, hash). The message fields are hashed only when the event has a
    message (chain.py)."""
    return [
        (row[0], canonical_json(row[1:-2] if row[-4] else row[1:-4]), row[-2], row[-1])
        for row in rows
    ]


def _canonical_json_sql() -> str:
    """SQLite writing what _with_canonical_json() writes, byte for byte: json_array()
    writes compact JSON, and escapes as json.dumps(ensure_ascii=False) does: the quote,
    the backslash, \\b \\f \\n \\r \\t, any other control character as \\u00xx,
    nothing else (tests/test_audit_golden.py holds the two to the same bytes)."""
    hashed = _hashed_columns()
    message_id = hashed[len(HASHED_FIELDS)]
    with_message, without = ", ".join(hashed), ", ".join(hashed[: len(HASHED_FIELDS)])
    return (
        f"CASE WHEN {message_id} <> '' THEN json_array({with_message}) "
        f"ELSE json_array({without}) END"
    )


def _canonical_time_sql(column: str) -> str:
    """SQL giving created_at exactly as _canonical_time() writes it.

    Formatting in the database skips a datetime object per row in Python, which
    is a third of verify_chain()'s time.
    """
    if connection.vendor == "postgresql":
        return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
    if connection.vendor == "sqlite":
        # Django stores str() of the naive UTC datetime, which omits a zero
        # microsecond part.
        return (
            f"replace(CASE WHEN length({column}) = 19 THEN {column} || '.000000' "
            f"ELSE {column} END, ' ', 'T') || '+00:00'"
        )
    raise NotImplementedError(f"verify_chain() does not support {connection.vendor}.")
