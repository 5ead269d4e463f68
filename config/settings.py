"""Settings for the Redis account dashboard, all read from the environment.

Every variable is documented in `.env.example`. A local `.env` file is read when
present (`make run` writes one with generated secrets for demo mode).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# ENV_FILE lets tests and tools ignore a developer's local .env.
environ.Env.read_env(env.str("ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
DEMO_MODE = env.bool("DEMO_MODE", default=False)


def required_secret(name: str) -> str:
    """A secret that must come from the environment outside DEBUG.

    Under DEBUG a fixed development value keeps `manage.py` usable on a laptop;
    anywhere else a missing secret stops the process and names the variable.
    """
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return f"insecure-development-only-{name.lower()}"
    raise ImproperlyConfigured(
        f"Set the environment variable {name}: it is required when DEBUG is off (see .env.example)."
    )


SECRET_KEY = required_secret("SECRET_KEY")
# Key of the audit log's HMAC chain. It lives in the environment, never in the
# database, so that someone who can write the database cannot re-sign the chain.
AUDIT_HMAC_KEY = required_secret("AUDIT_HMAC_KEY")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Before accounts_app, whose admin extends the queue table's admin.
    "django_tasks_db",
    "accounts_app",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    # The JSON API (/api/v1/): its docs page's assets come from this package, served
    # from our own origin.
    "ninja",
    # Sign-in with the company's identity provider, and TOTP (README, "Signing in").
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.mfa",
    "accounts_app.sso",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "accounts_app.middleware.RejectNulBytesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "accounts_app.middleware.IdleSessionTimeoutMiddleware",
    "accounts_app.middleware.AuditOriginMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts_app.middleware.UserTimezoneMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts_app.sso.middleware.NoRoleMiddleware",
    "accounts_app.middleware.NoStoreForSignedInMiddleware",
    # Last, as django-axes requires: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts_app.context_processors.navigation",
            ],
        },
    },
]

# SQLite is the newcomer's default. IMMEDIATE transactions take the write lock
# up front, so concurrent writers wait (busy timeout) instead of failing with
# "database is locked" half-way through a transaction.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out (username, IP) pair before any
# password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts_app.backends.RoleBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Sessions: an absolute lifetime of 12 hours; the idle timeout of 30 minutes is
# enforced by accounts_app.middleware (Django has only one of the two built in).
SESSION_COOKIE_AGE = int(timedelta(hours=12).total_seconds())
# Absolute, not sliding: accounts_app.reauth.mark_signed_in() pins the expiry date at
# sign-in, and the session is not re-saved on every request.
SESSION_SAVE_EVERY_REQUEST = False
# An existing session is written in one statement (accounts_app/sessions.py).
SESSION_ENGINE = "accounts_app.sessions"
SESSION_IDLE_TIMEOUT = timedelta(minutes=30)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# No script reads the CSRF cookie: htmx gets the token from the page (base.html).
CSRF_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
# Flash messages ride in a signed cookie, the session taking only what does not fit
# (accounts_app/message_storage.py says why).
MESSAGE_STORAGE = "accounts_app.message_storage.FlashMessages"
MESSAGE_COOKIE_NAME = "messages"
# Re-authentication before executing, when the sign-in is older than this.
REAUTH_MAX_AGE = timedelta(minutes=15)

# The JSON API. Calls per token (or per signed-in user) per window, then 429.
API_RATE_LIMIT = env.int("API_RATE_LIMIT", default=120)
API_RATE_LIMIT_WINDOW = env.int("API_RATE_LIMIT_WINDOW", default=60)
# Execute by API: only with a token holding the execute scope and created within these
# hours (the API's re-authentication: a fresh token is a fresh proof); 0 refuses execute
# by token altogether. Session callers need a sign-in within REAUTH_MAX_AGE, as on the page.
API_EXECUTE_TOKEN_MAX_AGE_HOURS = env.int("API_EXECUTE_TOKEN_MAX_AGE_HOURS", default=24 * 90)
API_TOKEN_MAX_DAYS = env.int("API_TOKEN_MAX_DAYS", default=365)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
# Shown to users who have not chosen a time zone of their own.
DEFAULT_USER_TIME_ZONE = env.str(
    "DEFAULT_USER_TIME_ZONE", default="Asia/Shanghai" if DEMO_MODE else "UTC"
)

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Content Security Policy: Django 6's own middleware, scripts only from us or
# carrying the per-response nonce. htmx's inline indicator styles are turned off
# in the base template so style-src needs no exception.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Transport security. Off under DEBUG so `make run` works over plain HTTP.
HTTPS = env.bool("HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = HTTPS and env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if HTTPS:
    # __Host- cookies are only accepted over HTTPS, for the whole host, with no
    # Domain attribute: a sibling subdomain cannot plant or overwrite them.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    LANGUAGE_COOKIE_NAME = "__Host-language"
    MESSAGE_COOKIE_NAME = "__Host-messages"
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many reverse proxies, each appending to X-Forwarded-For, stand in front of the
# app. 0: the client is REMOTE_ADDR and X-Forwarded-For is ignored, since anyone can
# send one (accounts_app.lockout.client_ip).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if BEHIND_TLS_PROXY else 0)

# Sign-in throttling (django-axes): 5 failures of one username from one address lock
# that pair out for 15 minutes. Per pair, so that an attacker guessing from one address
# cannot lock a colleague out everywhere.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "accounts_app.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts_app.lockout.locked_out"
# Masked in what axes stores of a failed attempt (the password always is).
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]


def idp_origin(issuer: str) -> str:
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}"


# Sign-in with the company's OpenID provider (README, "Signing in"). Without
# OIDC_ISSUER only local password sign-in exists.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="").rstrip("/")
OIDC_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_SCOPES = env.str("OIDC_SCOPES", default="openid profile email groups").split()
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
# IdP group -> Requesters, Approvers, Auditors or staff: "dba-approvers=Approvers,ops=staff".
OIDC_ROLE_MAP = env.dict("OIDC_ROLE_MAP", default={})
if set(OIDC_ROLE_MAP.values()) - {"Requesters", "Approvers", "Auditors", "staff"}:
    raise ImproperlyConfigured(
        "OIDC_ROLE_MAP maps IdP groups to Requesters, Approvers, Auditors or staff."
    )
# The name on the sign-in button.
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="SSO")
# What counts as a second factor in the IdP's ID token (RFC 8176 amr values; acr values).
OIDC_MFA_AMR = env.list("OIDC_MFA_AMR", default=["mfa", "otp", "hwk", "swk", "sms", "fpt", "face"])
OIDC_MFA_ACR = env.list("OIDC_MFA_ACR", default=[])
# Where MFA is required and the IdP did not assert it: "dashboard" asks for the
# dashboard's own TOTP code, "refuse" refuses with a message.
OIDC_MFA_FALLBACK = env.str("OIDC_MFA_FALLBACK", default="dashboard")
if OIDC_MFA_FALLBACK not in ("dashboard", "refuse"):
    raise ImproperlyConfigured("OIDC_MFA_FALLBACK is 'dashboard' or 'refuse'.")
if OIDC_ISSUER and not (OIDC_CLIENT_ID and OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured("OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET.")
# Local password sign-in: on (the default, and make run's), or off except for the
# superusers named in BREAK_GLASS_USERS (their sign-ins are audited and notified).
LOCAL_LOGIN = env.bool("LOCAL_LOGIN", default=True)
BREAK_GLASS_USERS = env.list("BREAK_GLASS_USERS", default=[])
# A second factor (IdP assertion or the dashboard's TOTP) for approving and executing.
MFA_REQUIRED = env.bool("MFA_REQUIRED", default=False)

# django-allauth: only its OIDC client and its TOTP/recovery codes are used; local
# sign-in stays the dashboard's own form (django-axes), and no one signs up.
ACCOUNT_ADAPTER = "accounts_app.sso.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts_app.sso.adapters.SocialAccountAdapter"
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = False
ACCOUNT_SIGNUP_FIELDS = ["username*"]
SOCIALACCOUNT_AUTO_SIGNUP = True
# Matched by issuer and subject only: an e-mail address can be reassigned.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": "idp",
                "name": OIDC_PROVIDER_NAME,
                "client_id": OIDC_CLIENT_ID,
                "secret": OIDC_CLIENT_SECRET,
                "settings": {"server_url": OIDC_ISSUER, "oauth_pkce_enabled": True},
            }
        ]
        if OIDC_ISSUER
        else [],
    }
}
if OIDC_ISSUER:
    # Signing in and out are form posts answered by a redirect to the IdP: Chromium
    # holds those redirects to the form-action directive too.
    SECURE_CSP["form-action"] = [*SECURE_CSP["form-action"], idp_origin(OIDC_ISSUER)]
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default="Redis accounts")


# Mail: SMTP from EMAIL_URL (smtp+tls://user:password@host:587). Without it,
# mails are printed to the console in DEBUG/demo mode and go to a local MTA
# (smtp://localhost:25) otherwise.
def mailer_from_url(url: str) -> dict:
    if url == "consolemail://":
        return {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    config = environ.Env.email_url_config(url)
    options = {
        "host": config["EMAIL_HOST"],
        "port": config["EMAIL_PORT"],
        "username": config["EMAIL_HOST_USER"],
        "password": config["EMAIL_HOST_PASSWORD"],
        "use_tls": config.get("EMAIL_USE_TLS", False),
        "use_ssl": config.get("EMAIL_USE_SSL", False),
        "timeout": 10,
    }
    return {"BACKEND": config["EMAIL_BACKEND"], "OPTIONS": options}


MAILERS = {
    "default": mailer_from_url(
        env.str(
            "EMAIL_URL",
            default="consolemail://" if DEBUG or DEMO_MODE else "smtp://localhost:25",
        )
    )
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="redis-accounts@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = env.list("ADMINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
# Password of the demo users `manage.py seed_demo` creates; empty outside demos.
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="")

# Alibaba Cloud R-KVStore. Without KVSTORE_ENDPOINT the client derives the
# real regional endpoint; `make run` points it at the local simulator.
ALIBABA_CLOUD_ACCESS_KEY_ID = env.str("ALIBABA_CLOUD_ACCESS_KEY_ID", default="")
ALIBABA_CLOUD_ACCESS_KEY_SECRET = env.str("ALIBABA_CLOUD_ACCESS_KEY_SECRET", default="")
ALIBABA_CLOUD_SECURITY_TOKEN = env.str("ALIBABA_CLOUD_SECURITY_TOKEN", default="")
KVSTORE_ENDPOINT = env.str("KVSTORE_ENDPOINT", default="")
KVSTORE_REGIONS = env.list("KVSTORE_REGIONS", default=["cn-hangzhou", "cn-shanghai"])
KVSTORE_SIGNATURE_VERSION = env.str("KVSTORE_SIGNATURE_VERSION", default="v3")
KVSTORE_CONNECT_TIMEOUT = env.float("KVSTORE_CONNECT_TIMEOUT", default=3.0)
KVSTORE_READ_TIMEOUT = env.float("KVSTORE_READ_TIMEOUT", default=10.0)
KVSTORE_DEADLINE = env.float("KVSTORE_DEADLINE", default=15.0)
# Attempts per call, the first included (accounts_app/alibaba/retry.py says which
# failures may be tried again).
KVSTORE_MAX_ATTEMPTS = env.int("KVSTORE_MAX_ATTEMPTS", default=3)
# Circuit breaker (accounts_app/services/breaker.py): after this many transient
# failures in a row, calls stop for the cooldown (seconds).
KVSTORE_BREAKER_THRESHOLD = env.int("KVSTORE_BREAKER_THRESHOLD", default=5)
KVSTORE_BREAKER_COOLDOWN = env.float("KVSTORE_BREAKER_COOLDOWN", default=30.0)
# Threads that describe instances in parallel during a sync (two calls per instance:
# a few at once so that a large estate syncs in minutes, not in an hour).
KVSTORE_SYNC_WORKERS = env.int("KVSTORE_SYNC_WORKERS", default=8)

# Workflow timing.
APPROVAL_TTL_HOURS = env.int("APPROVAL_TTL_HOURS", default=72)
REQUEST_TTL_DAYS = env.int("REQUEST_TTL_DAYS", default=14)

# Background work (accounts_app/background/): Django's task framework on
# django-tasks-db, a queue table in this same database. Workers (`manage.py
# run_worker`) claim tasks with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, so
# any number of them run on any number of machines; on SQLite one worker is enough.
TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
    }
}
# Seconds between a worker's heartbeats; a worker silent for TASKS_WORKER_TIMEOUT is
# taken for dead and its running task goes back to the queue for another worker.
TASKS_HEARTBEAT_SECONDS = env.float("TASKS_HEARTBEAT_SECONDS", default=5.0)
TASKS_WORKER_TIMEOUT = env.float("TASKS_WORKER_TIMEOUT", default=60.0)
# /healthz reports "degraded" when the oldest waiting task is older than this (seconds).
TASKS_QUEUE_STUCK_AFTER = env.float("TASKS_QUEUE_STUCK_AFTER", default=300.0)
# Outbound work (mail, API calls) is tried this many times, waiting
# TASKS_RETRY_BACKOFF * 2**(try - 1) seconds between tries, then dead-lettered.
TASKS_MAX_ATTEMPTS = env.int("TASKS_MAX_ATTEMPTS", default=5)
TASKS_RETRY_BACKOFF = env.float("TASKS_RETRY_BACKOFF", default=30.0)
# Periodic jobs, enqueued once per period by whichever scheduler comes first
# (seconds; 0 turns a job off).
SCHEDULE_SYNC_SECONDS = env.int("SCHEDULE_SYNC_SECONDS", default=3600)
SCHEDULE_EXPIRE_SECONDS = env.int("SCHEDULE_EXPIRE_SECONDS", default=900)
SCHEDULE_RECONCILE_SECONDS = env.int("SCHEDULE_RECONCILE_SECONDS", default=300)
# Daily: finished tasks, deliveries, periodic runs and syncs older than TASKS_KEEP_DAYS go.
SCHEDULE_PRUNE_SECONDS = env.int("SCHEDULE_PRUNE_SECONDS", default=86400)
# Hourly: the audit chain's head mailed to the auditors and written to the log stream.
SCHEDULE_CHECKPOINT_SECONDS = env.int("SCHEDULE_CHECKPOINT_SECONDS", default=3600)
# Every instance's accounts read with DescribeAccounts and compared with what the
# dashboard did (the drift page).
SCHEDULE_SWEEP_SECONDS = env.int("SCHEDULE_SWEEP_SECONDS", default=3600)
# Time-boxed accounts: deleted when their expiry comes, and reminders sent before it
# (services/expiry.py); an account whose deletion failed is tried again at each run.
SCHEDULE_ACCOUNT_EXPIRY_SECONDS = env.int("SCHEDULE_ACCOUNT_EXPIRY_SECONDS", default=300)
# Days before an account's expiry its requester is reminded (once each).
EXPIRY_REMINDER_DAYS = sorted(
    {int(days) for days in env.list("EXPIRY_REMINDER_DAYS", default=["7", "1"])}, reverse=True
)
TASKS_KEEP_DAYS = env.int("TASKS_KEEP_DAYS", default=14)

# Four eyes that survive a superuser (accounts_app/policy.py). No approval policy may ask
# for fewer approvals than MIN_APPROVALS, not even through the admin; and someone whose
# role (or account) was granted less than APPROVER_WAIT_HOURS ago cannot approve yet.
MIN_APPROVALS = env.int("MIN_APPROVALS", default=1)
APPROVER_WAIT_HOURS = env.int("APPROVER_WAIT_HOURS", default=24)

# Live Alibaba calls made by page views (instance details, pre-flight): at most this many
# per user per minute, counted in the database so that every web server sees one count.
LIVE_CALLS_PER_MINUTE = env.int("LIVE_CALLS_PER_MINUTE", default=30)

# The debug page and error mails hide sensitive variables and POST parameters under
# DEBUG too (config/error_reports.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.error_reports.AlwaysSafeExceptionReporterFilter"
# Chat channels (accounts_app/chat/): their webhook URLs and signing secrets are kept
# encrypted with these Fernet keys, comma-separated; the first encrypts, every one
# decrypts (rotation: put the new key first). Without a key no channel can be added.
CHAT_ENCRYPTION_KEYS = env.list("CHAT_ENCRYPTION_KEYS", default=[])
# Seconds to wait for a chat platform's answer before the try counts as failed.
CHAT_TIMEOUT = env.float("CHAT_TIMEOUT", default=5.0)
# Approving from chat (docs/chat-platforms.md). Slack: the app's signing secret, which
# signs its interactivity requests. Feishu/Lark: the app's Encrypt Key (signs and
# encrypts card callbacks) and Verification Token. Empty: that platform's buttons
# are refused.
SLACK_SIGNING_SECRET = env.str("SLACK_SIGNING_SECRET", default="")
FEISHU_ENCRYPT_KEY = env.str("FEISHU_ENCRYPT_KEY", default="")
FEISHU_VERIFICATION_TOKEN = env.str("FEISHU_VERIFICATION_TOKEN", default="")
# Privileges that may be approved from chat; the others need the page (its sign-in,
# and whatever second factor or re-authentication the page asks for).
CHAT_APPROVABLE_PRIVILEGES = env.list("CHAT_APPROVABLE_PRIVILEGES", default=["RoleReadOnly"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "include_html": True,
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's default "django" logger has a console handler of its own under DEBUG,
        # and propagates to the root's: every line of django.tasks (the worker's "Task
        # id=... state=...") came out twice. One console, the root's; errors still mailed.
        "django": {"handlers": ["mail_admins"], "level": "INFO", "propagate": True},
        # Not propagated: Django's own "django" logger would mail a second, plain report.
        "django.request": {
            "handlers": ["console", "mail_admins"],
            "level": "ERROR",
            "propagate": False,
        },
    },
}
