"""Settings, all from the environment (see the README's configuration table).

With nothing set, the app runs in the embedded development mode: SQLite and local
files under ``var/``, secrets generated into ``var/secrets.json``, no Redis needed.
``WEBMAIL_ENV=production`` makes every secret mandatory and turns on secure cookies.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from webmail.env import env_bool, env_int, env_list, env_str, local_secrets

BASE_DIR = Path(__file__).resolve().parent.parent

WEBMAIL_ENV = env_str("WEBMAIL_ENV", "development")
if WEBMAIL_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("WEBMAIL_ENV must be 'development' or 'production'")
PRODUCTION = WEBMAIL_ENV == "production"

DATA_DIR = Path(env_str("WEBMAIL_DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)

# --- secrets --------------------------------------------------------------------
_secret_key = env_str("DJANGO_SECRET_KEY")
_credential_keys = env_list("WEBMAIL_CREDENTIAL_KEYS")
if PRODUCTION:
    missing = [
        name
        for name, value in (
            ("DJANGO_SECRET_KEY", _secret_key),
            ("WEBMAIL_CREDENTIAL_KEYS", _credential_keys),
            ("DJANGO_ALLOWED_HOSTS", env_list("DJANGO_ALLOWED_HOSTS")),
        )
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(
            "Production needs these environment variables: " + ", ".join(missing)
        )
elif not (_secret_key and _credential_keys):
    _local = local_secrets(DATA_DIR / "secrets.json")
    _secret_key = _secret_key or _local["secret_key"]
    _credential_keys = _credential_keys or [_local["credential_key"]]

if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must stay off in production")
for _key in _credential_keys:
    # A Fernet key is 32 bytes in url-safe base64; fail at start, not at first use.
    try:
        _valid = len(base64.urlsafe_b64decode(_key.encode())) == 32
    except (ValueError, binascii.Error):
        _valid = False
    if not _valid:
        raise ImproperlyConfigured("WEBMAIL_CREDENTIAL_KEYS holds a malformed key")

SECRET_KEY = _secret_key
# Fernet keys for mail-account credentials; the first encrypts, all decrypt.
WEBMAIL_CREDENTIAL_KEYS = _credential_keys

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"]
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# --- applications -----------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.microsoft",
    "allauth.usersessions",
    "allauth.headless",
    "rest_framework",
    "drf_spectacular",
    "csp",
    "webmail",
    "accounts",
    "mailbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "webmail.middleware.UserLanguageMiddleware",
    "webmail.middleware.UserTimeZoneMiddleware",
]

ROOT_URLCONF = "webmail.urls"
WSGI_APPLICATION = "webmail.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "mailbox.context_processors.storage",
            ],
        },
    },
]

# --- data -------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DJANGO_DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded mode has two writers (web and import loop): wait for locks,
    # take the write lock up front, and let readers run beside the writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

MEDIA_ROOT = Path(env_str("WEBMAIL_MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "/media/"
# collectstatic writes here in production; development serves from the finders.
_static_root = env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles"))
STATIC_ROOT = (
    Path(_static_root) if PRODUCTION or "DJANGO_STATIC_ROOT" in os.environ else None
)
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Serve static files from the app directories without collectstatic in development.
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- authentication (django-allauth) ----------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
_VALIDATORS = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS}.UserAttributeSimilarityValidator"},
    {"NAME": f"{_VALIDATORS}.MinimumLengthValidator"},
    {"NAME": f"{_VALIDATORS}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATORS}.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "mailbox:home"
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env_str("WEBMAIL_EMAIL_VERIFICATION", "optional")
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
# allauth's defaults, spelled out: they are part of the security model.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/300s/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("WEBMAIL_SITE_NAME", "Webmail")
# Operators may close sign-up; staff then create users in the admin.
WEBMAIL_SIGNUP_OPEN = env_bool("WEBMAIL_SIGNUP_OPEN", True)

# --- Gmail and Microsoft mailboxes (OAuth2) ------------------------------------------
# allauth's provider flow connects mailboxes (it never signs anyone in here):
# mailbox.oauth keeps the tokens, encrypted, on the mail account. Register the app
# with Google / Microsoft (README) and give its client id and secret here, or as a
# "social application" in the admin.
SOCIALACCOUNT_ADAPTER = "mailbox.oauth.SocialAdapter"
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False


def _oauth_app(prefix: str) -> list[dict[str, object]]:
    client_id = env_str(f"WEBMAIL_{prefix}_CLIENT_ID")
    if not client_id:
        return []
    return [{"client_id": client_id, "secret": env_str(f"WEBMAIL_{prefix}_SECRET")}]


SOCIALACCOUNT_PROVIDERS = {
    "google": {
        "APPS": _oauth_app("GOOGLE"),
        "SCOPE": ["openid", "email", "profile", "https://mail.google.com/"],
        # A refresh token comes only with offline access, and only on consent.
        "AUTH_PARAMS": {"access_type": "offline", "prompt": "consent"},
        "OAUTH_PKCE_ENABLED": True,
    },
    "microsoft": {
        "APPS": _oauth_app("MICROSOFT"),
        "TENANT": env_str("WEBMAIL_MICROSOFT_TENANT", "common"),
        "SCOPE": [
            "openid",
            "email",
            "profile",
            "offline_access",
            "User.Read",
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/POP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send",
        ],
        "AUTH_PARAMS": {"prompt": "select_account"},
        "OAUTH_PKCE_ENABLED": True,
    },
}
# Mail servers of a provider, when they are not the public ones of
# mailbox.autoconfig: {"google": {"imap": (host, port, security), ...}}.
WEBMAIL_OAUTH_MAIL_SERVERS: dict[str, dict[str, tuple[str, int, str]]] = {}

# --- REST API for mobile apps (/api/v1/) ---------------------------------------------
# Apps sign in through allauth's headless API at /_allauth/app/v1/ and send the
# session token it returns in X-Session-Token; the browser UI keeps its own pages.
HEADLESS_CLIENTS = ("app",)
HEADLESS_ONLY = False
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mailbox.api.authentication.SessionTokenAuthentication",
        # The browsable API, for a signed-in browser; CSRF-checked by DRF.
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["mailbox.api.throttling.UserThrottle"],
    # Per signed-in user, e.g. "600/min"; WEBMAIL_API_RATE overrides.
    "DEFAULT_THROTTLE_RATES": {"user": env_str("WEBMAIL_API_RATE", "600/min")},
    "EXCEPTION_HANDLER": "mailbox.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Webmail API",
    "DESCRIPTION": (
        "Mail of the signed-in user's IMAP and POP3 accounts. Sign in at "
        "/_allauth/app/v1/auth/login and send the session token in X-Session-Token."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SecurityEnum": "accounts.models.Security",
        "KindEnum": "accounts.models.AccountKind",
    },
}

# --- e-mail that the app itself sends (password resets) ----------------------------
EMAIL_BACKEND = env_str(
    "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = env_str("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("DJANGO_EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("DJANGO_EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("DJANGO_EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "webmail@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [("Admin", a) for a in env_list("DJANGO_ADMINS")]

# --- internationalisation -------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "webmail" / "locale"]
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- security -----------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The app's own pages: our scripts and styles only. Mail bodies are served by their
# own view with a stricter policy, into a sandboxed iframe.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "frame-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- mail servers we connect to -------------------------------------------------------
# Remote hosts are typed by users: private, loopback, link-local and metadata
# addresses are refused unless the operator allows them (development does).
WEBMAIL_ALLOW_PRIVATE_HOSTS = env_bool("WEBMAIL_ALLOW_PRIVATE_HOSTS", not PRODUCTION)
# Seconds for the connect and for each reply of a mail server; a login test
# (connect, then one reply at a time) stays under 15 s with the default.
WEBMAIL_NETWORK_TIMEOUT = env_int("WEBMAIL_NETWORK_TIMEOUT", 7)
# Extra CA certificates (PEM) trusted for mail servers, besides the system's.
WEBMAIL_EXTRA_CA_FILE = env_str("WEBMAIL_EXTRA_CA_FILE")
# The setup assistant may look a domain up (its autoconfiguration file over HTTPS,
# its SRV and MX records) when the built-in provider table does not know it.
WEBMAIL_AUTOCONFIG_LOOKUPS = env_bool("WEBMAIL_AUTOCONFIG_LOOKUPS", True)
WEBMAIL_AUTOCONFIG_HTTPS_PORT = env_int("WEBMAIL_AUTOCONFIG_HTTPS_PORT", 443)
# DNS servers for those lookups ("ip" or "ip:port"); empty: the system's.
WEBMAIL_DNS_SERVERS = env_list("WEBMAIL_DNS_SERVERS")
# Storage quota of each user in the server-side store, in MiB (admins change it).
WEBMAIL_DEFAULT_QUOTA_MB = env_int("WEBMAIL_DEFAULT_QUOTA_MB", 2048)
# Attachments of one outgoing message may total this much (MB).
WEBMAIL_ATTACHMENT_MAX_MB = env_int("WEBMAIL_ATTACHMENT_MAX_MB", 25)
# Stored messages up to this many bytes are kept in the database, larger ones as
# files (mailbox/store/raw.py says why 64 KiB); 0: every message is a file.
WEBMAIL_STORE_INLINE_MAX_BYTES = env_int("WEBMAIL_STORE_INLINE_MAX_BYTES", 64 * 1024)

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://"
# Without Redis (embedded mode) tasks run inline in the web process.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
# Inline, a retry comes at once (no countdown): sending tries once more, then the
# message is "Not sent" with the server's reply, rather than holding the page.
WEBMAIL_EAGER_SEND_RETRIES = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("WEBMAIL_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = max(
    CELERY_TASK_TIME_LIMIT - 60, CELERY_TASK_TIME_LIMIT // 2
)
# Longer than any task time limit and retry countdown, so that a slow task is
# never delivered twice at once.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 3}
# The per-account import lock is a Redis lease renewed while the import runs; a
# killed worker frees the account after at most this many seconds.
WEBMAIL_IMPORT_LOCK_LEASE_SECONDS = env_int("WEBMAIL_IMPORT_LOCK_LEASE_SECONDS", 60)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BEAT_SCHEDULE = {
    "dispatch-due-imports": {
        "task": "mailbox.tasks.dispatch_due_imports",
        "schedule": 60.0,
    },
    "reconcile-quotas": {
        "task": "mailbox.tasks.reconcile_quotas",
        "schedule": 6 * 3600.0,
    },
    "prune-sync-tombstones": {
        "task": "mailbox.tasks.prune_sync_tombstones",
        "schedule": 24 * 3600.0,
    },
}

# --- logging --------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("WEBMAIL_LOG_LEVEL", "INFO")},
    "loggers": {
        # imaplib logs every line it sends, LOGIN included: keep it quiet.
        "imapclient": {"level": "WARNING"},
    },
}
