"""The HMAC chain: which fields an event's hash covers, and how it is computed."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring

from django.conf import settings

from accounts_app.models import AuditEvent

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

# Added after chains were written: hashed after HASHED_FIELDS, and only for an event
# that carries a message, so every event without one hashes exactly as before.
MESSAGE_FIELDS = ("message_id", "message_params")


def event_digest(values: dict, prev_hash: str, *, signer: Signer | None = None) -> str:
    """The event's hash, from its hashed values and the previous event's hash."""
    sign = signer or Signer(_hmac_key())
    return sign(canonical_values(values), prev_hash)


def canonical_values(values: dict) -> list:
    canonical = [_canonical(values[name]) for name in HASHED_FIELDS]
    if values.get("message_id"):
        canonical += [values["message_id"], values["message_params"]]
    return canonical


def chain_signer() -> Signer:
    """A Signer keyed with AUDIT_HMAC_KEY, for signing many events in a row."""
    return Signer(_hmac_key())


def _json_encoder():
    """json.dumps(values, ensure_ascii=False, separators=(",", ":")), built once.

    JSONEncoder.encode() builds its C encoder anew on every call: half the encoding
    time of a flat list of sixteen values. This is the same C encoder with the same
    options (the stdlib's own one-shot path), kept; without it, encode() as before.
    The bytes are pinned by tests/test_audit_golden.py.
    """
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    if c_make_encoder is None:
        return encoder.encode
    one_shot = c_make_encoder(
        None,  # no check for circular references: the values are flat
        encoder.default,
        encode_basestring,
        None,  # indent
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )
    return lambda values: "".join(one_shot(values, 0))


_encode_json = _json_encoder()
# The canonical values written as the HMAC covers them (verifier.py writes them so for the
# rows PostgreSQL sends; SQLite writes the same itself).
canonical_json = _encode_json


class Signer:
    """HMAC-SHA256 over the canonical JSON of an event's values and the previous hash.

    Keyed once and copied per event: verify_chain() signs a million events, and
    re-deriving the key pads each time would add a third to the signing time.
    """

    def __init__(self, key: bytes) -> None:
        self._keyed = _c_level(hmac.new(key, digestmod=hashlib.sha256))

    def __call__(self, canonical_values: list | tuple, prev_hash: str) -> str:
        return self.sign_encoded(_encode_json(canonical_values), prev_hash)

    def sign_encoded(self, canonical_json: str, prev_hash: str) -> str:
        """The same, from the values already written as canonical_json() writes them."""
        mac = self._keyed.copy()
        mac.update((canonical_json + "\n" + prev_hash).encode())
        return mac.hexdigest()


def _c_level(mac: hmac.HMAC):
    """The OpenSSL HMAC object inside an hmac.HMAC, when there is one (CPython built
    with OpenSSL): the same copy(), update() and hexdigest(), without a Python call
    around each (a sixth of verify_chain()'s walk). Otherwise the hmac.HMAC itself."""
    return getattr(mac, "_hmac", None) or mac


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
    return {name: getattr(event, name) for name in (*HASHED_FIELDS, *MESSAGE_FIELDS)}
