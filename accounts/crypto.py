"""Encryption of mail-account credentials at rest (Fernet, with key rotation).

``settings.WEBMAIL_CREDENTIAL_KEYS`` is a list of Fernet keys: the first one
encrypts, every one of them decrypts. To rotate, put a new key first, run
``manage.py rotate_credentials``, then drop the old key.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialError(Exception):
    """A stored credential cannot be decrypted with the configured keys."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("WEBMAIL_CREDENTIAL_KEYS is empty")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "WEBMAIL_CREDENTIAL_KEYS holds a key that is not a Fernet key"
        ) from exc


def _current() -> MultiFernet:
    return _fernet(tuple(settings.WEBMAIL_CREDENTIAL_KEYS))


def encrypt(secret: str) -> str:
    """Return a token for ``secret``, encrypted with the primary key."""
    return _current().encrypt(secret.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """Return the secret in ``token``; raise CredentialError if no key opens it."""
    try:
        return _current().decrypt(token.encode("ascii")).decode()
    except InvalidToken as exc:
        raise CredentialError("credential cannot be decrypted") from exc


def rotate(token: str) -> str:
    """Return ``token`` re-encrypted with the primary key."""
    try:
        return _current().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise CredentialError("credential cannot be decrypted") from exc


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")
