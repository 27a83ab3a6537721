"""Settings for the test suite: the production settings, made fast."""

import os

from webmail.settings import *  # noqa: F403
from webmail.settings import DATA_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The test mail servers listen on loopback.
WEBMAIL_ALLOW_PRIVATE_HOSTS = True
WEBMAIL_NETWORK_TIMEOUT = 5
MEDIA_ROOT = DATA_DIR / "test-media"
# Tasks run inline, except in a worker process started by the tests; inline,
# sending goes through all its retries, so the retry rules are tested too.
CELERY_TASK_ALWAYS_EAGER = not os.environ.get("WEBMAIL_TEST_LIVE_CELERY")
WEBMAIL_EAGER_SEND_RETRIES = 6
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# A Celery worker started by the tests is another process: it must see the test
# database, so SQLite's test database is a file rather than memory.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(DATA_DIR / f"test-db-{os.getpid()}.sqlite3")
    }

# No lookups of real domains from the tests; the assistant's tests turn them on
# against a local DNS server and a local HTTPS server.
WEBMAIL_AUTOCONFIG_LOOKUPS = False
