"""The audit chain's exact encoding, pinned by a golden digest, and what verify_chain()
finds when any field the HMAC covers is edited.

Changing the canonical encoding (field order, JSON separators, the line before the
previous hash, the UTC conversion) would make every existing chain fail verification:
these digests must never change. A new field goes at the end of HASHED_FIELDS, and a
new golden digest is added next to this one, not instead of it.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from unittest import mock

import pytest
from django.db import connection
from django.utils.translation import gettext_lazy
from hypothesis import given
from hypothesis import strategies as st

from accounts_app.audit import Origin, record_event, verifier, verify_chain
from accounts_app.audit.chain import (
    Signer,
    _encode_json,
    canonical_values,
    event_digest,
    event_values,
)
from accounts_app.audit.messages import message
from accounts_app.models import AccountRequest, AuditChainHead, AuditEvent, Instance

KEY = "golden-key"
PREV_HASH = "a" * 64
SHANGHAI = timezone(timedelta(hours=8))

# Every field the HMAC covers, in its order, written out here on purpose.
GOLDEN_VALUES = {
    "seq": 42,
    "created_at": datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=SHANGHAI),
    "actor_id": 7,
    "actor_name": "bob",
    "source_ip": "203.0.113.9",
    "user_agent": "Firefox/140",
    "action": "request_approved",
    "request_id": 12,
    "instance_id": "r-bp1ord5x0c9kq2m7wa",
    "region_id": "cn-hangzhou",
    "account_name": "app_reader",
    "account_privilege": "RoleReadOnly",
    "outcome": "success",
    "alibaba_request_id": "5E5D-REQ",
    "error_code": "",
    "comment": "[1/1] 好的",
}
GOLDEN_CANONICAL = (
    '[42,"2026-03-01T00:30:15.123456+00:00",7,"bob","203.0.113.9","Firefox/140",'
    '"request_approved",12,"r-bp1ord5x0c9kq2m7wa","cn-hangzhou","app_reader","RoleReadOnly",'
    '"success","5E5D-REQ","","[1/1] 好的"]'
)
GOLDEN_DIGEST = "fbf5108b6cfa093081b45a39fcf5f25aa04baa6d422ad4d1be4a6f43af624456"


def test_the_digest_of_fixed_inputs_never_changes(settings):
    settings.AUDIT_HMAC_KEY = KEY

    assert event_digest(GOLDEN_VALUES, PREV_HASH) == GOLDEN_DIGEST
    assert event_digest(GOLDEN_VALUES, PREV_HASH, signer=Signer(KEY.encode())) == GOLDEN_DIGEST


def test_the_signer_signs_alike_with_or_without_openssls_hmac_object(monkeypatch):
    with_openssl = Signer(KEY.encode())
    # A digestmod that is not OpenSSL's constructor makes hmac.HMAC compute in Python.
    python_hmac = hmac.new
    monkeypatch.setattr(
        hmac,
        "new",
        lambda key, digestmod: python_hmac(key, digestmod=lambda data=b"": hashlib.sha256(data)),
    )
    in_python = Signer(KEY.encode())

    assert not isinstance(with_openssl._keyed, hmac.HMAC)  # the C object, unwrapped
    assert isinstance(in_python._keyed, hmac.HMAC)
    for signer in (with_openssl, in_python):
        assert event_digest(GOLDEN_VALUES, PREV_HASH, signer=signer) == GOLDEN_DIGEST


@given(st.lists(st.one_of(st.none(), st.integers(), st.text()), max_size=20))
def test_the_chain_encodes_any_values_exactly_as_compact_json_dumps(values):
    # The encoder is built once for speed (chain._json_encoder): it must not differ from
    # json.dumps in a single byte, whatever a user typed (quotes, controls, any script).
    assert _encode_json(values) == json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def test_the_digest_is_an_hmac_of_compact_utc_json_a_newline_and_the_previous_hash():
    message = (GOLDEN_CANONICAL + "\n" + PREV_HASH).encode()

    assert hmac.new(KEY.encode(), message, hashlib.sha256).hexdigest() == GOLDEN_DIGEST


def test_the_same_moment_in_any_time_zone_gives_the_same_digest_on_a_beijing_server(settings):
    settings.AUDIT_HMAC_KEY = KEY
    settings.TIME_ZONE = "Asia/Shanghai"  # Django sets the process's TZ to it
    assert time.localtime(0).tm_hour == 8
    in_utc = {**GOLDEN_VALUES, "created_at": GOLDEN_VALUES["created_at"].astimezone(UTC)}

    assert event_digest(in_utc, PREV_HASH) == GOLDEN_DIGEST
    assert event_digest(GOLDEN_VALUES, PREV_HASH) == GOLDEN_DIGEST


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("seq", 43),
        ("created_at", GOLDEN_VALUES["created_at"] + timedelta(microseconds=1)),
        ("actor_id", 8),
        ("actor_id", None),
        ("actor_name", "mallory"),
        ("source_ip", "203.0.113.10"),
        ("source_ip", None),
        ("user_agent", "curl/8"),
        ("action", "request_rejected"),
        ("request_id", 13),
        ("request_id", None),
        ("instance_id", "r-bp1other"),
        ("region_id", "cn-shanghai"),
        ("account_name", "app_writer"),
        ("account_privilege", "RoleReadWrite"),
        ("outcome", "failure"),
        ("alibaba_request_id", "OTHER"),
        ("error_code", "Throttling"),
        ("comment", "[1/1] ok"),
    ],
)
def test_the_digest_covers_every_field(settings, field, other):
    settings.AUDIT_HMAC_KEY = KEY

    assert event_digest({**GOLDEN_VALUES, field: other}, PREV_HASH) != GOLDEN_DIGEST


def test_a_value_of_another_type_is_hashed_as_its_text(settings):
    """A lazy translation, say, as the comment: hashed as the text it gives."""
    settings.AUDIT_HMAC_KEY = KEY
    lazy_comment = gettext_lazy(GOLDEN_VALUES["comment"])

    assert event_digest({**GOLDEN_VALUES, "comment": lazy_comment}, PREV_HASH) == GOLDEN_DIGEST


def test_the_digest_covers_the_previous_hash(settings):
    settings.AUDIT_HMAC_KEY = KEY

    assert event_digest(GOLDEN_VALUES, "b" * 64) != GOLDEN_DIGEST


# --- Through the database: edits of the fields tamper tests did not touch ------------

TABLE = AuditEvent._meta.db_table
triggers = importlib.import_module("accounts_app.migrations.0003_audit_append_only_triggers")


@contextmanager
def as_the_database_owner():
    """Switch the append-only triggers off, as the owner of the database could."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
        else:
            for sql in triggers.SQLITE_BACKWARD:
                cursor.execute(sql)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")
            else:
                for sql in triggers.SQLITE_FORWARD:
                    cursor.execute(sql)


def rewrite(seq: int, column: str, value) -> None:
    with as_the_database_owner(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET {column} = %s WHERE seq = %s", [value, seq])  # noqa: S608


@pytest.fixture
def chain(requester, approver):
    """Three events; the second has an actor, an address and a request."""
    instance = Instance.objects.create(
        instance_id="r-bp1golden00000001",
        region_id="cn-hangzhou",
        engine_version="6.0",
        architecture_type="standard",
        status="Normal",
        synced_at=datetime.now(UTC),
    )
    account_request = AccountRequest.objects.create(
        requester=requester,
        instance=instance,
        account_name="app_reader",
        account_privilege="RoleReadOnly",
        justification="reports",
        approvals_required=1,
    )
    origin = Origin(actor=approver, actor_name="bob", source_ip="203.0.113.9")
    events = [
        record_event(action=action, outcome="success", origin=origin, request=account_request)
        for action in ("request_submitted", "request_approved", "execution_started")
    ]
    assert verify_chain().ok
    return {"actor": approver, "requester": requester, "request": account_request, "events": events}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor_id", "requester"),
        ("actor_id", None),
        ("source_ip", "198.51.100.7"),
        ("source_ip", None),
        ("request_id", None),
        ("actor_name", "alice"),
        ("user_agent", "forged"),
    ],
)
def test_an_edited_actor_address_or_request_breaks_the_chain(chain, column, value):
    value = chain[value].pk if value in chain else value
    # Creating the cast is audited too: the chain's second event is not seq 2.
    middle = chain["events"][1].seq

    rewrite(middle, column, value)

    report = verify_chain()
    assert [(b.seq, "does not match its HMAC" in b.reason) for b in report.breaks] == [
        (middle, True)
    ]


@pytest.mark.django_db
def test_an_event_recorded_on_a_whole_second_verifies(requester):
    """The database writes such a time without its fraction; verification adds it back."""
    # Ahead of every event already there: the chain's time never goes backwards.
    whole_second = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    with mock.patch("django.utils.timezone.now", return_value=whole_second):
        event = record_event(action="login", outcome="success", origin=Origin.system("t"))

    assert AuditEvent.objects.get(pk=event.pk).created_at == whole_second
    assert verify_chain().ok


# --- The two verification branches no other test reaches ----------------------------


@pytest.mark.django_db
def test_a_row_forged_below_the_first_sequence_number_is_out_of_place(chain):
    first = AuditEvent.objects.get(seq=1)
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                seq=0,
                created_at=first.created_at,
                actor_name="mallory",
                action="account_created",
                outcome="success",
                prev_hash="0" * 64,
                hash="f" * 64,
            )
        ]
    )

    report = verify_chain()

    assert (report.breaks[0].seq, report.breaks[0].reason) == (0, "event out of place (inserted)")


@pytest.mark.django_db
def test_a_rewritten_head_hash_with_the_right_sequence_number_is_found(chain):
    AuditChainHead.objects.filter(pk=1).update(hash="e" * 64)

    report = verify_chain()

    assert [(b.seq, b.reason) for b in report.breaks] == [
        (chain["events"][-1].seq, "the chain head's hash is not the last event's hash")
    ]


# --- Events that carry a system message (accounts_app/audit/messages.py) -------------
# The message's identifier and parameters are hashed after every other field, and only
# when the event has one: the digests above (no message) are unchanged.

MESSAGE_VALUES = {
    **GOLDEN_VALUES,
    "action": "instances_synced",
    "request_id": None,
    "instance_id": "",
    "account_name": "",
    "account_privilege": "",
    "alibaba_request_id": "",
    "comment": "",
    "message_id": "sync.summary",
    "message_params": message(
        "sync.summary",
        seen=3,
        regions_ok=1,
        regions=1,
        created=1,
        updated=0,
        unchanged=2,
        gone=0,
    ).params_text(),
}
MESSAGE_CANONICAL = (
    '[42,"2026-03-01T00:30:15.123456+00:00",7,"bob","203.0.113.9","Firefox/140",'
    '"instances_synced",null,"","cn-hangzhou","","","success","","","",'
    '"sync.summary","{\\"created\\":1,\\"gone\\":0,\\"regions\\":1,\\"regions_ok\\":1,'
    '\\"seen\\":3,\\"unchanged\\":2,\\"updated\\":0}"]'
)
MESSAGE_DIGEST = "b5dbc066caf03d82cc0057d002fd6f62446ecd8f67f5e90c676069a0d2d8ea3c"


def test_the_digest_of_an_event_with_a_message_never_changes(settings):
    settings.AUDIT_HMAC_KEY = KEY

    assert event_digest(MESSAGE_VALUES, PREV_HASH) == MESSAGE_DIGEST


def test_a_message_is_hashed_as_two_more_values_after_the_others():
    message_bytes = (MESSAGE_CANONICAL + "\n" + PREV_HASH).encode()

    assert hmac.new(KEY.encode(), message_bytes, hashlib.sha256).hexdigest() == MESSAGE_DIGEST


def test_message_parameters_are_compact_json_with_sorted_keys_and_unescaped_text():
    said = message("login.failed", username="张三")

    assert said.params_text() == '{"username":"张三"}'
    assert message("login.local").params_text() == ""


def test_an_event_without_a_message_hashes_exactly_as_before_messages_existed(settings):
    settings.AUDIT_HMAC_KEY = KEY
    no_message = {**GOLDEN_VALUES, "message_id": "", "message_params": ""}

    assert event_digest(no_message, PREV_HASH) == GOLDEN_DIGEST


@pytest.mark.parametrize(
    ("field", "other"),
    [("message_id", "sync.summary_failed"), ("message_params", '{"seen":4}')],
)
def test_the_digest_covers_the_message(settings, field, other):
    settings.AUDIT_HMAC_KEY = KEY

    assert event_digest({**MESSAGE_VALUES, field: other}, PREV_HASH) != MESSAGE_DIGEST


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("column", "value"),
    [("message_id", "reconcile.found"), ("message_params", ""), ("message_id", "")],
)
def test_an_edited_message_breaks_the_chain(chain, column, value):
    event = record_event(
        action="request_expired",
        outcome="success",
        origin=Origin.system("t"),
        request=chain["request"],
        message=message("reconcile.not_found") if column == "message_id" else None,
    )
    if column == "message_params":
        event = record_event(
            action="login_failed",
            outcome="failure",
            origin=Origin.system("t"),
            message=message("login.failed", username="mallory"),
        )
    assert verify_chain().ok

    rewrite(event.seq, column, value)

    assert [b.seq for b in verify_chain().breaks] == [event.seq]


@pytest.mark.django_db
def test_a_chain_of_events_with_and_without_messages_verifies(chain):
    record_event(
        action="login",
        outcome="success",
        origin=Origin.system("t"),
        message=message("login.idp", issuer="https://idp.example", subject="张三"),
    )
    record_event(action="logout", outcome="success", origin=Origin.system("t"))

    report = verify_chain()

    assert report.ok
    assert report.checked == AuditEvent.objects.count()


# --- The JSON the chain check reads: SQLite's own, or written from PostgreSQL's values -------

# Every character JSON escapes (the controls, the quote, the backslash), the ones it must
# not (DEL, the line and paragraph separators, scripts outside ASCII, a non-BMP emoji),
# and markup. PostgreSQL's text holds no NUL.
AWKWARD_TEXTS = [
    "".join(chr(code) for code in range(1, 32)),
    '"quoted" \\back\\slash\\ /slash/',
    "\x7f\u2028\u2029\ufeff",
    "数据分析 · café · עברית · 🙂🚀",
    "</script><b>&amp;</b>",
    " leading and trailing ",
]


@pytest.mark.django_db
def test_the_chain_check_reads_each_events_json_as_the_chain_writes_it(requester):
    texts = [*AWKWARD_TEXTS, *(["nul \x00 inside"] if connection.vendor == "sqlite" else [])]
    origin = Origin(actor=requester, actor_name=texts[1], source_ip="2001:db8::1", user_agent="")
    for text in texts:
        record_event(
            action="reconciled",
            outcome="unknown",
            origin=Origin(actor=None, actor_name=text, source_ip=None, user_agent=text),
            account_name=text,
            comment=text,
            error_code=text[:128],
        )
    record_event(
        action="request_submitted",
        outcome="success",
        origin=origin,
        message=message("chat.refused", where=AWKWARD_TEXTS[0], reason=AWKWARD_TEXTS[3]),
    )
    # What the walk reads (on SQLite, the JSON the database wrote), in small batches.
    read = verifier._raw_batches(after=None, batch_size=3)
    written = {seq: hashed_json for seq, hashed_json, _prev, _hash in read}
    events = AuditEvent.objects.order_by("seq")
    assert len(written) == len(events) >= len(texts) + 1
    for event in events:
        assert written[event.seq] == _encode_json(canonical_values(event_values(event)))
    assert verify_chain().ok


def test_the_values_postgresql_sends_are_written_as_the_chain_writes_them():
    """The rows PostgreSQL sends (seq, the hashed values, the message's two, the hashes)
    become (seq, their JSON, the hashes): the message's values only when there is one."""
    hashed = [
        GOLDEN_VALUES["seq"],
        "2026-03-01T00:30:15.123456+00:00",
        *list(GOLDEN_VALUES.values())[2:],
    ]
    without = (42, *hashed, "", "", PREV_HASH, "h" * 64)
    with_message = (42, *hashed, "chat.refused", '{"where":"x"}', PREV_HASH, "h" * 64)
    assert verifier._with_canonical_json([without, with_message]) == [
        (42, GOLDEN_CANONICAL, PREV_HASH, "h" * 64),
        (
            42,
            GOLDEN_CANONICAL[:-1] + ',"chat.refused","{\\"where\\":\\"x\\"}"]',
            PREV_HASH,
            "h" * 64,
        ),
    ]
