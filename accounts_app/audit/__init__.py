"""The audit log: record_event() writes it, verify_chain() checks it.

Each event carries HMAC-SHA256(AUDIT_HMAC_KEY, content + previous hash), so an
edited, deleted or inserted row breaks the chain (verify_chain() finds it).

What the chain alone cannot show: the newest events deleted together with a
matching rewind of AuditChainHead (no key is needed for that). Against it, keep
verify_audit_chain's output (the head's seq and hash) somewhere the database's
owner cannot write, and compare.

- origin.py: who did it and from where (the client's address);
- chain.py: the fields the HMAC covers and how an event is hashed;
- writer.py: record_event();
- verifier.py: verify_chain();
- testing.py: permit_test_flush() for the test suite.

The audit page's queries are in accounts_app.selectors.audit, its filter form in
accounts_app.forms.audit.
"""

from accounts_app.audit.origin import Origin
from accounts_app.audit.verifier import ChainBreak, VerifyReport, verify_chain
from accounts_app.audit.writer import record_event

__all__ = ["ChainBreak", "Origin", "VerifyReport", "record_event", "verify_chain"]
