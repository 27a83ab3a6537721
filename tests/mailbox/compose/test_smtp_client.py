"""The SMTP client against a real server: TLS verified, AUTH, policy, error kinds."""

from __future__ import annotations

import pytest

from accounts.models import Security
from accounts.servers import ServerSettings
from mailbox.smtp.client import SendFailed, send
from tests.servers import smtp as smtp_test
from tests.servers.certs import make_certs
from tests.servers.ports import free_port

MESSAGE = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: t\r\n\r\nhello\r\n"


def settings_for(server, security=Security.STARTTLS, **changes) -> ServerSettings:
    port = server.tls_port if security == Security.SSL else server.port
    values = {
        "host": server.host,
        "port": port,
        "security": security,
        "username": smtp_test.USERNAME,
        **changes,
    }
    return ServerSettings(**values)


def deliver(server_settings: ServerSettings, password: str = smtp_test.PASSWORD):
    send(
        server_settings,
        password,
        sender="a@example.org",
        recipients=["b@example.net"],
        data=MESSAGE,
        timeout=5,
    )


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.SSL])
def test_tls_with_a_verified_certificate_and_auth(smtp_server, trust_test_ca, security):
    """STARTTLS and SSL/TLS both verify the certificate, then log in (UTF-8 too)."""
    deliver(settings_for(smtp_server, security))
    [received] = smtp_server.received
    assert received.data.startswith(MESSAGE[:40])
    assert smtp_server.logins == ["PLAIN"]


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.SSL])
def test_a_certificate_of_an_unknown_ca_is_refused(
    smtp_server, settings, tmp_path, security
):
    """Another CA than the server's: refused for good, before any login."""
    other_ca, _cert, _key = make_certs(tmp_path)
    settings.WEBMAIL_EXTRA_CA_FILE = str(other_ca)
    with pytest.raises(SendFailed) as failure:
        deliver(settings_for(smtp_server, security))
    assert not failure.value.temporary
    assert "certificate" in failure.value.message
    assert smtp_server.logins == []
    assert smtp_server.received == []


def test_a_wrong_password_is_a_permanent_failure(smtp_server, trust_test_ca):
    with pytest.raises(SendFailed) as failure:
        deliver(settings_for(smtp_server), password="wrong")
    assert not failure.value.temporary
    assert failure.value.code == 535
    assert "535" in failure.value.message
    assert smtp_server.received == []


def test_no_login_in_clear_text(smtp_server, trust_test_ca):
    """Security "none" on a server that wants STARTTLS first: refused, not sent."""
    with pytest.raises(SendFailed) as failure:
        deliver(settings_for(smtp_server, Security.NONE))
    assert not failure.value.temporary
    assert smtp_server.received == []


def test_private_hosts_are_refused_unless_allowed(smtp_server, trust_test_ca, settings):
    """The host policy of incoming servers holds for outgoing ones too."""
    settings.WEBMAIL_ALLOW_PRIVATE_HOSTS = False
    with pytest.raises(SendFailed) as failure:
        deliver(settings_for(smtp_server))
    assert not failure.value.temporary
    assert "private or reserved" in failure.value.message
    assert smtp_server.received == []


def test_a_closed_port_is_temporary(trust_test_ca):
    """Nothing listening: worth trying again later."""
    closed = ServerSettings("127.0.0.1", free_port(), Security.STARTTLS, "x")
    with pytest.raises(SendFailed) as failure:
        deliver(closed)
    assert failure.value.temporary


def test_4xx_is_temporary_and_5xx_permanent(smtp_server, trust_test_ca):
    smtp_server.fail_next("452 4.3.1 Insufficient system storage")
    with pytest.raises(SendFailed) as failure:
        deliver(settings_for(smtp_server))
    assert failure.value.temporary
    assert failure.value.code == 452
    smtp_server.fail_next("554 5.7.1 Message rejected as spam")
    with pytest.raises(SendFailed) as failure:
        deliver(settings_for(smtp_server))
    assert not failure.value.temporary
    assert "554 5.7.1 Message rejected as spam" in failure.value.message
