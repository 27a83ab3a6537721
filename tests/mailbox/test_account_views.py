"""Adding, editing and removing mail accounts through the browser pages."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.urls import reverse

from accounts.models import AccountKind, MailAccount, Security
from tests.conftest import login
from tests.servers.ports import free_port

ADD_URL = reverse("mailbox:account_add")


def form_data(dovecot, mail_user, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "kind": AccountKind.IMAP,
        "email": mail_user.email,
        "label": "Work",
        "host": dovecot.host,
        "security": Security.SSL,
        "port": dovecot.imaps_port,
        "username": mail_user.username,
        "password": mail_user.password,
        "leave_on_server": "on",
        "check_interval_minutes": 15,
        "smtp_security": Security.STARTTLS,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def add(client, data) -> tuple[object, str]:
    response = client.post(ADD_URL, data)
    return response, response.content.decode()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word.

    Dovecot always greets; a mail server that hangs after the TCP handshake is a
    misbehaviour it cannot produce, so this listener stands in for one.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize(
    ("kind", "security", "port_name"),
    [
        (AccountKind.IMAP, Security.SSL, "imaps_port"),
        (AccountKind.IMAP, Security.STARTTLS, "imap_port"),
        (AccountKind.POP3, Security.SSL, "pop3s_port"),
        (AccountKind.POP3, Security.STARTTLS, "pop3_port"),
    ],
)
@pytest.mark.usefixtures("trust_test_ca")
def test_add_account_after_a_successful_login(
    user, user_client, dovecot, mail_user, kind, security, port_name
):
    """An account whose login works is saved and listed, its password encrypted."""
    data = form_data(
        dovecot,
        mail_user,
        kind=kind,
        security=security,
        port=getattr(dovecot, port_name),
    )
    response = user_client.post(ADD_URL, data)
    assert response.status_code == 302
    account = MailAccount.objects.get(user=user)
    assert (account.kind, account.security) == (kind, security)
    assert account.get_password() == mail_user.password
    assert mail_user.password not in account.password_encrypted
    listing = user_client.get(reverse("mailbox:account_list")).content.decode()
    assert "Work" in listing
    assert mail_user.email in listing


@pytest.mark.usefixtures("trust_test_ca")
def test_default_port_and_label_are_filled_in(user, user_client, dovecot, mail_user):
    """An empty port means the protocol's usual one; an empty name, the address."""
    response, _ = add(user_client, form_data(dovecot, mail_user, label=""))
    assert response.status_code == 302
    account = MailAccount.objects.get(user=user)
    assert account.label == mail_user.email
    data = form_data(dovecot, mail_user, port="", email="other@example.test")
    _, page = add(user_client, data)
    # The usual IMAPS port (993) is not the test server's: the login test says so.
    assert "127.0.0.1:993" in page


@pytest.mark.usefixtures("trust_test_ca")
def test_wrong_password_is_refused_and_nothing_saved(user_client, dovecot, mail_user):
    """A wrong password gives a clear message and saves nothing."""
    response, page = add(user_client, form_data(dovecot, mail_user, password="wrong"))
    assert response.status_code == 200
    assert "refused the user name or password" in page
    assert "Nothing was saved" in page
    assert not MailAccount.objects.exists()


@pytest.mark.usefixtures("trust_test_ca")
def test_wrong_password_is_refused_for_pop3(user_client, dovecot, mail_user):
    """POP3 logins are tested the same way."""
    data = form_data(
        dovecot,
        mail_user,
        kind=AccountKind.POP3,
        port=dovecot.pop3s_port,
        password="wrong",
    )
    _, page = add(user_client, data)
    assert "refused the user name or password" in page
    assert not MailAccount.objects.exists()


def test_unknown_host(user_client, dovecot, mail_user):
    """A host name that does not resolve is named as such."""
    _, page = add(user_client, form_data(dovecot, mail_user, host="nowhere.invalid"))
    assert "DNS lookup failed" in page
    assert not MailAccount.objects.exists()


def test_refused_connection(user_client, dovecot, mail_user):
    """A port where nothing listens is reported as a refused connection."""
    _, page = add(user_client, form_data(dovecot, mail_user, port=free_port()))
    assert "refused the connection" in page
    assert not MailAccount.objects.exists()


def test_timeout_is_reported_within_15_seconds(
    settings, user_client, dovecot, mail_user, silent_server
):
    """A server that never answers is reported as a timeout within 15 seconds."""
    from webmail import settings as shipped

    settings.WEBMAIL_NETWORK_TIMEOUT = shipped.WEBMAIL_NETWORK_TIMEOUT
    started = time.monotonic()
    _, page = add(user_client, form_data(dovecot, mail_user, port=silent_server))
    assert time.monotonic() - started < 15
    assert "did not answer in time" in page
    assert not MailAccount.objects.exists()


def test_untrusted_certificate_is_a_tls_failure(user_client, dovecot, mail_user):
    """The certificate is verified by default; a self-signed one is refused."""
    _, page = add(user_client, form_data(dovecot, mail_user))
    assert "secure (TLS) connection could not be set up" in page
    assert "certificate" in page
    assert not MailAccount.objects.exists()


def test_untrusted_certificate_on_starttls(user_client, dovecot, mail_user):
    """STARTTLS verifies the certificate too."""
    data = form_data(
        dovecot, mail_user, security=Security.STARTTLS, port=dovecot.imap_port
    )
    _, page = add(user_client, data)
    assert "secure (TLS) connection could not be set up" in page


def test_imap_settings_on_a_pop3_port(user_client, dovecot, mail_user, settings):
    """Talking IMAP to a POP3 server says the server answered unexpectedly."""
    settings.WEBMAIL_NETWORK_TIMEOUT = 2
    data = form_data(dovecot, mail_user, security=Security.NONE, port=dovecot.pop3_port)
    data["allow_unencrypted"] = "on"
    _, page = add(user_client, data)
    assert "answered, but not as expected" in page
    assert not MailAccount.objects.exists()


def test_private_addresses_are_refused_unless_allowed(
    settings, user_client, dovecot, mail_user
):
    """With the production policy, a loopback server is refused before connecting."""
    settings.WEBMAIL_ALLOW_PRIVATE_HOSTS = False
    for host in ("127.0.0.1", "localhost", "[::1]"):
        _, page = add(user_client, form_data(dovecot, mail_user, host=host))
        assert "private or reserved" in page, host
    assert not MailAccount.objects.exists()


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104
        "::ffff:127.0.0.1",
        "fd00:ec2::254",
        "fe80::1",
        "224.0.0.1",
    ],
)
def test_policy_refuses_non_public_addresses(settings, address):
    """Private, loopback, link-local, metadata and shared addresses are not public."""
    from mailbox.net import address_allowed

    settings.WEBMAIL_ALLOW_PRIVATE_HOSTS = False
    assert not address_allowed(address)


def test_policy_accepts_public_addresses(settings):
    """Ordinary public addresses pass the policy."""
    from mailbox.net import address_allowed

    settings.WEBMAIL_ALLOW_PRIVATE_HOSTS = False
    assert address_allowed("93.184.216.34")
    assert address_allowed("2606:2800:220:1:248:1893:25c8:1946")


def test_unencrypted_needs_explicit_consent(user_client, dovecot, mail_user):
    """Security “None” is refused until the user confirms the warning."""
    data = form_data(dovecot, mail_user, security=Security.NONE, port=dovecot.imap_port)
    _, page = add(user_client, data)
    assert "without encryption" in page
    assert not MailAccount.objects.exists()
    data["allow_unencrypted"] = "on"
    response, _ = add(user_client, data)
    assert response.status_code == 302
    assert MailAccount.objects.get().security == Security.NONE


@pytest.mark.parametrize(
    "host", ["mail example.org", "mail/example.org", "-bad.example", "a" * 300, "x@y"]
)
def test_invalid_host_names_are_rejected(user_client, dovecot, mail_user, host):
    """Host names are validated before any connection is tried."""
    _, page = add(user_client, form_data(dovecot, mail_user, host=host))
    assert "not a valid host name" in page or "at most" in page


def edit_data(account: MailAccount, **overrides: object) -> dict[str, object]:
    """The edit form as the page fills it in, with ``overrides``."""
    data: dict[str, object] = {
        "email": account.email,
        "label": account.label,
        "host": account.host,
        "security": account.security,
        "port": account.port,
        "username": account.username,
        "password": "",
        "check_interval_minutes": account.check_interval_minutes,
        "smtp_security": account.smtp_security,
    }
    data.update(overrides)
    return data


@pytest.mark.usefixtures("trust_test_ca")
def test_edit_keeps_the_password_when_left_empty(user_client, imap_account):
    """Editing without typing a password keeps (and tests) the stored one."""
    url = reverse("mailbox:account_edit", args=[imap_account.pk])
    page = user_client.get(url).content.decode()
    assert imap_account.get_password() not in page
    assert imap_account.password_encrypted not in page
    data = edit_data(imap_account, label="Renamed")
    response = user_client.post(url, data)
    assert response.status_code == 302
    imap_account.refresh_from_db()
    assert imap_account.label == "Renamed"


@pytest.mark.usefixtures("trust_test_ca")
def test_edit_with_a_wrong_password_changes_nothing(user_client, imap_account):
    """A failed login on edit keeps the account as it was."""
    url = reverse("mailbox:account_edit", args=[imap_account.pk])
    old_token = imap_account.password_encrypted
    data = edit_data(imap_account, label="Renamed", password="wrong")
    page = user_client.post(url, data).content.decode()
    assert "refused the user name or password" in page
    imap_account.refresh_from_db()
    assert imap_account.label == "Work"
    assert imap_account.password_encrypted == old_token


def test_delete_removes_the_account(user_client, imap_account):
    """Removing asks first, then deletes on POST."""
    url = reverse("mailbox:account_delete", args=[imap_account.pk])
    assert "Remove" in user_client.get(url).content.decode()
    assert MailAccount.objects.filter(pk=imap_account.pk).exists()
    response = user_client.post(url)
    assert response.status_code == 302
    assert not MailAccount.objects.filter(pk=imap_account.pk).exists()


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("mailbox:account_edit", "get"),
        ("mailbox:account_edit", "post"),
        ("mailbox:account_delete", "get"),
        ("mailbox:account_delete", "post"),
    ],
)
def test_another_users_account_answers_404(other_user, imap_account, name, method):
    """Another user's account id answers 404, and nothing changes."""
    client = login(other_user)
    response = getattr(client, method)(reverse(name, args=[imap_account.pk]))
    assert response.status_code == 404
    assert MailAccount.objects.filter(pk=imap_account.pk, label="Work").exists()


def test_pages_need_a_signed_in_user(client, imap_account):
    """Anonymous visitors are sent to the sign-in page."""
    for url in (
        reverse("mailbox:account_list"),
        ADD_URL,
        reverse("mailbox:account_edit", args=[imap_account.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


def test_list_shows_only_own_accounts(other_user, imap_account):
    """Another user's account list does not show mine."""
    page = login(other_user).get(reverse("mailbox:account_list")).content.decode()
    assert imap_account.email not in page


def test_assistant_fills_the_form_from_the_address(user_client):
    """The address finds Free's POP3 settings; the form shows them, editable."""
    url = reverse("mailbox:account_add")
    response = user_client.get(url, {"email": "jeanne@free.fr", "kind": "pop3"})
    assert response.status_code == 200
    form = response.context["form"]
    assert form["host"].value() == "pop.free.fr"
    assert form["port"].value() == 995
    assert form["security"].value() == Security.SSL
    assert form["username"].value() == "jeanne"
    assert form["kind"].value() == "pop3"
    assert form["smtp_host"].value() == "smtp.free.fr"
    assert "Settings for Free are filled in below" in response.content.decode()


def test_assistant_keeps_the_address_as_default_user_name(user_client):
    """Gmail logs in with the address: the user name stays empty (its default)."""
    url = reverse("mailbox:account_add")
    response = user_client.get(url, {"email": "a.b@gmail.com", "kind": "imap"})
    form = response.context["form"]
    assert form["host"].value() == "imap.gmail.com"
    assert form["username"].value() == ""
    assert form["email"].value() == "a.b@gmail.com"
    assert "app password" in response.content.decode()


def test_assistant_says_when_it_finds_nothing(user_client):
    """An unknown domain (lookups off in the tests) leaves the fields to the user."""
    url = reverse("mailbox:account_add")
    response = user_client.get(url, {"email": "me@unknown.example", "kind": "imap"})
    assert response.status_code == 200
    assert response.context["form"]["host"].value() in (None, "")
    assert "No settings were found" in response.content.decode()


def test_assistant_refuses_a_malformed_address(user_client):
    url = reverse("mailbox:account_add")
    response = user_client.get(url, {"email": "not an address", "kind": "imap"})
    assert response.status_code == 200
    assert response.context["assistant"].errors["email"]
    assert response.context["found"] is None
