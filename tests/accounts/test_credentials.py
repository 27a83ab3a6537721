"""Mail-account credentials are encrypted at rest and can be rotated."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from accounts import crypto
from accounts.models import AccountKind, MailAccount, Security
from accounts.servers import ServerSettings
from accounts.services import AccountOptions, mail_account_create

SECRET = "s3cret-Pässword-42"
SMTP_SECRET = "smtp-only-secret-99"


@pytest.fixture
def account(user) -> MailAccount:
    return mail_account_create(
        user=user,
        kind=AccountKind.IMAP,
        options=AccountOptions(label="Home", email="alice@example.net"),
        server=ServerSettings("imap.example.net", 993, Security.SSL, "alice"),
        password=SECRET,
        smtp=ServerSettings("smtp.example.net", 587, Security.STARTTLS, "alice"),
        smtp_password=SMTP_SECRET,
    )


def test_passwords_round_trip(account):
    """What goes in comes back out, through the encrypted columns only."""
    fresh = MailAccount.objects.get(pk=account.pk)
    assert fresh.get_password() == SECRET
    assert fresh.get_smtp_password() == SMTP_SECRET


def test_database_rows_hold_no_password_in_clear(account):
    """The raw table, read with SQL, contains no password."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {MailAccount._meta.db_table}")  # noqa: S608
        rows = repr(cursor.fetchall())
    assert SECRET not in rows
    assert SMTP_SECRET not in rows
    assert account.password_encrypted in rows


def test_database_dump_holds_no_password_in_clear(account):
    """A dumpdata of the whole database does not contain the passwords."""
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    dump = out.getvalue()
    assert account.email in dump
    assert SECRET not in dump
    assert SMTP_SECRET not in dump


def test_tokens_differ_for_the_same_password(user):
    """Fernet tokens are salted: equal passwords do not give equal columns."""
    assert crypto.encrypt(SECRET) != crypto.encrypt(SECRET)


def test_wrong_key_cannot_decrypt(settings, account):
    """A token cannot be opened with another key; the error is a clear one."""
    settings.WEBMAIL_CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.CredentialError):
        MailAccount.objects.get(pk=account.pk).get_password()


def test_rotation_re_encrypts_with_the_new_key(settings, account):
    """After rotation, only the new key is needed."""
    old_key = settings.WEBMAIL_CREDENTIAL_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.WEBMAIL_CREDENTIAL_KEYS = [new_key, old_key]
    out = io.StringIO()
    call_command("rotate_credentials", stdout=out)
    assert "1 mail accounts" in out.getvalue()
    settings.WEBMAIL_CREDENTIAL_KEYS = [new_key]
    fresh = MailAccount.objects.get(pk=account.pk)
    assert fresh.get_password() == SECRET
    assert fresh.get_smtp_password() == SMTP_SECRET
