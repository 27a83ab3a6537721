"""Shared fixtures: users, mail accounts on the private Dovecot, logged-in clients."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AccountKind, MailAccount, Security, User
from accounts.servers import ServerSettings
from accounts.services import AccountOptions, mail_account_create

pytest_plugins = ["tests.servers.fixtures"]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def user(db) -> User:
    return User.objects.create_user("alice@example.org", PASSWORD)


@pytest.fixture
def other_user(db) -> User:
    return User.objects.create_user("bob@example.org", PASSWORD)


@pytest.fixture
def staff_user(db) -> User:
    return User.objects.create_user("staff@example.org", PASSWORD, is_staff=True)


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root@example.org", PASSWORD)


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def user_client(user) -> Client:
    return login(user)


@pytest.fixture
def trust_test_ca(settings, dovecot) -> None:
    """Mail-server certificates of the test Dovecot verify against its CA."""
    settings.WEBMAIL_EXTRA_CA_FILE = str(dovecot.ca_file)


def make_account(
    user: User, dovecot, mail_user, *, kind: str = AccountKind.IMAP
) -> MailAccount:
    port = dovecot.imap_port if kind == AccountKind.IMAP else dovecot.pop3_port
    return mail_account_create(
        user=user,
        kind=kind,
        options=AccountOptions(label="Work", email=mail_user.email),
        server=ServerSettings(
            dovecot.host, port, Security.STARTTLS, mail_user.username
        ),
        password=mail_user.password,
    )


@pytest.fixture
def imap_account(user, dovecot, mail_user) -> MailAccount:
    return make_account(user, dovecot, mail_user, kind=AccountKind.IMAP)


@pytest.fixture
def pop_account(user, dovecot, mail_user) -> MailAccount:
    return make_account(user, dovecot, mail_user, kind=AccountKind.POP3)
