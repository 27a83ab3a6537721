"""Settings for the test suite: the production settings, made fast."""

from webmail.settings import *  # noqa: F403
from webmail.settings import DATA_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The test mail servers listen on loopback.
WEBMAIL_ALLOW_PRIVATE_HOSTS = True
WEBMAIL_NETWORK_TIMEOUT = 5
MEDIA_ROOT = DATA_DIR / "test-media"
CELERY_TASK_ALWAYS_EAGER = True
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
