"""Settings for the test suite: the production settings with test secrets.

SQLite by default; PostgreSQL when DATABASE_URL points at one (CI runs both).
"""

import os

# Never the developer's .env: `make run` writes one for the demo (DEMO_MODE=true, which
# shows times in Asia/Shanghai, and more), and `make test` in the same checkout would
# then test the demo's settings, not the defaults the tests are written for.
os.environ.setdefault("ENV_FILE", os.devnull)
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("AUDIT_HMAC_KEY", "test-audit-hmac-key")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("CHAT_ENCRYPTION_KEYS", "dGVzdC1jaGF0LWtleS0wMTIzNDU2Nzg5YWJjZGVmMDE=")
os.environ.setdefault("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAItestkeyid")
os.environ.setdefault("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-access-key-secret")
# Playwright's sync API keeps an event loop running in the test thread; the ORM
# calls that fixtures and assertions make there are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from config.settings import *  # noqa: F403

# The manifest storage needs collectstatic; tests serve files as they are.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# WhiteNoise serves from the finders in tests; there is no collected STATIC_ROOT.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Short timeouts keep fault-injection tests fast; the simulator is on loopback.
KVSTORE_CONNECT_TIMEOUT = 1.0
KVSTORE_READ_TIMEOUT = 1.5
KVSTORE_DEADLINE = 2.0
# Tasks run inline in tests about something else; the task engine's own tests use the
# database backend and real workers (tests/test_tasks*.py), and so do the processes
# that tests start (TASKS_BACKEND in their environment).
if "TASKS_BACKEND" not in os.environ:
    TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}

# The cast is created at the start of each test: a wait before new approvers may approve
# would stop every test. tests/test_admin_audit.py turns it on where it is the subject.
APPROVER_WAIT_HOURS = 0
