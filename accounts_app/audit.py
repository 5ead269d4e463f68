"""The one way into the audit log: record_event(); and the check of its chain.

Each event carries HMAC-SHA256(AUDIT_HMAC_KEY, content + previous hash), so an
edited, deleted or inserted row breaks the chain (verify_chain() finds it).

What the chain alone cannot show: the newest events deleted together with a
matching rewind of AuditChainHead (no key is needed for that). Against it, keep
verify_audit_chain's output (the head's seq and hash) somewhere the database's
owner cannot write, and compare.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.db import connection, connections, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from accounts_app.models import AccountRequest, AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64

# The fields the HMAC covers, in a fixed order. Changing this list breaks every
# existing chain: add a new field at the end and keep old rows verifiable.
HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_name",
    "source_ip",
    "user_agent",
    "action",
    "request_id",
    "instance_id",
    "region_id",
    "account_name",
    "account_privilege",
    "outcome",
    "alibaba_request_id",
    "error_code",
    "comment",
)


@dataclass(frozen=True)
class Origin:
    """Who did it and from where, taken from the HTTP request when there is one."""

    actor: object | None = None
    actor_name: str = ""
    source_ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest | None, *, user=None) -> Origin:
        if request is None:
            return cls(actor=user, actor_name=getattr(user, "username", "") or "")
        user = user if user is not None else getattr(request, "user", None)
        if user is not None and not user.is_authenticated:
            user = None
        return cls(
            actor=user,
            actor_name=user.get_username() if user is not None else "",
            source_ip=client_ip(request),
            user_agent=request.headers.get("user-agent", "")[:512],
        )

    @classmethod
    def system(cls, name: str = "system") -> Origin:
        return cls(actor_name=name)


def client_ip(request: HttpRequest) -> str | None:
    return normalized_ip(trusted_client_ip(request))


def trusted_client_ip(request: HttpRequest) -> str | None:
    """The client's address, for the audit log and the login lockout.

    REMOTE_ADDR, unless TRUSTED_PROXY_COUNT reverse proxies stand in front of us. Each
    proxy appends the address it received the request from to X-Forwarded-For, so
    with N trusted proxies the client is the N-th entry from the right. Entries left
    of it were written by the client itself and could name anyone: taking the
    left-most would let an attacker pick a fresh "IP" for every attempt.
    """
    remote_addr = request.META.get("REMOTE_ADDR")
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if proxies <= 0:
        return remote_addr
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    forwarded = [hop.strip() for hop in hops if hop.strip()]
    if len(forwarded) < proxies:
        # Fewer hops than proxies: the request did not come through them all.
        return remote_addr
    candidate = forwarded[-proxies]
    try:
        validate_ipv46_address(candidate)
    except ValidationError:
        return remote_addr
    return candidate


def normalized_ip(value: str | None) -> str | None:
    """The address as the database will give it back, so that the HMAC still matches.

    PostgreSQL's inet and Django's GenericIPAddressField both rewrite IPv6 to its
    short form; hashing the long form would make verify_chain() report an edit.
    """
    if not value:
        return None
    try:
        validate_ipv46_address(value)
    except ValidationError:
        return None
    return clean_ipv6_address(value) if ":" in value else value


def event_digest(values: dict, prev_hash: str, *, signer: Signer | None = None) -> str:
    """The event's hash, from its HASHED_FIELDS values and the previous event's hash."""
    sign = signer or Signer(_hmac_key())
    return sign([_canonical(values[name]) for name in HASHED_FIELDS], prev_hash)


def chain_signer() -> Signer:
    """A Signer keyed with AUDIT_HMAC_KEY, for signing many events in a row."""
    return Signer(_hmac_key())


# One encoder for every event: json.dumps() with options builds a new one per call.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Signer:
    """HMAC-SHA256 over the canonical JSON of an event's values and the previous hash.

    Keyed once and copied per event: verify_chain() signs a million events, and
    re-deriving the key pads each time would add a third to the signing time.
    """

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def __call__(self, canonical_values: list | tuple, prev_hash: str) -> str:
        mac = self._keyed.copy()
        mac.update((_encode_json(canonical_values) + "\n" + prev_hash).encode())
        return mac.hexdigest()


def _hmac_key() -> bytes:
    return settings.AUDIT_HMAC_KEY.encode()


def _canonical(value):
    if value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, datetime):
        return _canonical_time(value)
    return str(value)


def _canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def event_values(event: AuditEvent) -> dict:
    return {name: getattr(event, name) for name in HASHED_FIELDS}


def record_event(
    *,
    action: str,
    outcome: str,
    origin: Origin,
    request: AccountRequest | None = None,
    instance_id: str = "",
    region_id: str = "",
    account_name: str = "",
    account_privilege: str = "",
    alibaba_request_id: str = "",
    error_code: str = "",
    comment: str = "",
) -> AuditEvent:
    """Append one event. Call it inside the transaction of the change it records.

    If it fails, the exception propagates and the caller's transaction rolls
    back: nothing happens without its audit event (fail closed).
    """
    if request is not None:
        instance_id = instance_id or request.instance.instance_id
        region_id = region_id or request.instance.region_id
        account_name = account_name or request.account_name
        account_privilege = account_privilege or request.account_privilege
    with transaction.atomic():
        head = _locked_chain_head()
        event = AuditEvent(
            seq=head.seq + 1,
            created_at=_next_time(head),
            actor=origin.actor,
            actor_name=_text(origin.actor_name)[:150],
            source_ip=normalized_ip(origin.source_ip),
            user_agent=_text(origin.user_agent)[:512],
            action=action,
            request=request,
            instance_id=_text(instance_id),
            region_id=_text(region_id),
            account_name=_text(account_name),
            account_privilege=_text(account_privilege),
            outcome=outcome,
            alibaba_request_id=_text(alibaba_request_id),
            error_code=_text(error_code)[:128],
            comment=_text(comment),
            prev_hash=head.hash,
        )
        event.hash = event_digest(event_values(event), head.hash)
        event.save(force_insert=True)
        AuditChainHead.objects.filter(pk=head.pk).update(seq=event.seq, hash=event.hash)
    return event


def _next_time(head: AuditChainHead):
    """Now, or the previous event's time if the clock has stepped back since.

    Time never goes backwards along the chain, so the audit page can turn a
    date range into a seq range (audit_selectors._within_dates).
    """
    now = timezone.now()
    previous = AuditEvent.objects.filter(seq=head.seq).values_list("created_at", flat=True).first()
    return max(now, previous) if previous is not None else now


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; a stray one (say, in a typed username)
    # must not make the event, and so the change it records, impossible.
    return str(value).replace("\x00", "")


def _locked_chain_head() -> AuditChainHead:
    # Migration 0002 creates the row; get_or_create only matters for a database
    # whose tables were emptied (tests), where it may race once, harmlessly.
    AuditChainHead.objects.get_or_create(pk=1)
    return AuditChainHead.objects.select_for_update().get(pk=1)


# --- Verification ---------------------------------------------------------


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
        report, sign = self.report, self.sign
        expected, prev_hash = self.expected, self.prev_hash
        for row in rows:
            seq, stored_prev, stored_hash = row[0], row[-2], row[-1]
            # A gap or a misplaced row explains a broken link: report it once.
            if seq > expected:
                self.add(expected, _missing(expected, seq - 1) + " (deleted)")
            elif seq < expected:
                self.add(seq, "event out of place (inserted)")
            elif stored_prev != prev_hash:
                self.add(seq, "prev_hash is not the previous event's hash (inserted or relinked)")
            # The database already gave created_at in its canonical text form.
            if sign(row[:-2], stored_prev) != stored_hash:
                self.add(seq, "content does not match its HMAC (edited, or forged without the key)")
            prev_hash, expected = stored_hash, max(expected, seq + 1)
            report.checked += 1
            report.last_seq = max(report.last_seq, seq)
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
    # Children must open their own connections, never reuse the parent's socket.
    connections.close_all()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        _walk_split(walker, head_seq=head_seq, parts=workers, batch_size=batch_size, map=pool.map)


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
    """Rows of (HASHED_FIELDS..., prev_hash, hash) with after < seq <= upto, in seq order.

    The first walk starts with after=None, so that a row forged at seq 0 or
    below is read too.
    """
    quote = connection.ops.quote_name
    columns = []
    for name in HASHED_FIELDS:
        column = quote(AuditEvent._meta.get_field(name).column)
        columns.append(_canonical_time_sql(column) if name == "created_at" else column)
    columns += [quote("prev_hash"), quote("hash")]
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
        yield from rows
        if len(rows) < batch_size:
            return
        after = rows[-1][0]


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


# --- Test support -----------------------------------------------------------


def permit_test_flush(using: str = "default") -> None:
    """Let Django's test flush empty the audit table of the *test* database.

    Migration 0003 explains the door this opens. Call it from the test suite's
    django_db_setup fixture, after the test database exists; it refuses to run
    against any other database.
    """
    from django.core import mail

    conn = connections[using]
    name = str(conn.settings_dict["NAME"])
    # setup_test_environment() gives mail an outbox; test databases are named
    # test_* (or live in memory).
    is_test_database = Path(name).name.startswith("test") or (
        conn.vendor == "sqlite" and conn.creation.is_in_memory_db(name)
    )
    if not (hasattr(mail, "outbox") and is_test_database):
        raise RuntimeError(f"permit_test_flush() is for test databases only, not {name!r}.")
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            # For this session, and for every later session to the test database.
            cursor.execute("SET audit.allow_flush = 'on'")
            database = conn.ops.quote_name(name)
            cursor.execute(f"ALTER DATABASE {database} SET audit.allow_flush = 'on'")
        elif conn.vendor == "sqlite":
            cursor.execute(
                "INSERT INTO accounts_app_audit_flush_permit (allowed) "
                "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM accounts_app_audit_flush_permit)"
            )
