"""The setup assistant: server settings from an e-mail address."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from accounts.models import Security
from accounts.servers import ServerSettings
from mailbox import autoconfig
from tests.servers.dns import dns_server

CONFIG = b"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="localhost">
    <domain>localhost</domain>
    <displayName>Local Mail</displayName>
    <incomingServer type="imap">
      <hostname>imap.plain.test</hostname>
      <port>143</port>
      <socketType>plain</socketType>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.localhost.test</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <username>%EMAILLOCALPART%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.localhost.test</hostname>
      <port>110</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.localhost.test</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""


@pytest.mark.parametrize(
    "domain",
    sorted({d for provider in autoconfig.PROVIDERS for d in provider.domains}),
)
def test_every_builtin_provider_gives_encrypted_settings(domain):
    """Each domain of the table yields encrypted IMAP (and SMTP) settings."""
    found = autoconfig.suggest(f"jeanne.dupont@{domain}")
    assert found is not None
    assert found.source == "builtin"
    assert found.imap is not None
    assert found.smtp is not None
    servers = [s for s in (found.imap, found.pop3, found.smtp) if s]
    for server in servers:
        assert server.security in (Security.SSL, Security.STARTTLS)
        assert server.port in (993, 995, 465, 587)
        assert "." in server.host
        assert "%" not in server.username
        assert server.username in ("jeanne.dupont", f"jeanne.dupont@{domain}")
    assert found.imap.port == 993
    if found.pop3:
        assert found.pop3.port == 995


def test_local_part_logins_and_oauth_providers():
    """Free logs in with the local part; Gmail and Outlook say they need OAuth2."""
    free = autoconfig.suggest("Jeanne@free.fr")
    assert free.imap == ServerSettings("imap.free.fr", 993, Security.SSL, "Jeanne")
    assert autoconfig.suggest("a@gmail.com").oauth == "google"
    assert autoconfig.suggest("a@hotmail.fr").oauth == "microsoft"
    assert autoconfig.suggest("a@icloud.com").pop3 is None


@pytest.mark.parametrize("address", ["", "no-at-sign", "@example.org", "a@"])
def test_not_an_address_is_refused(address):
    with pytest.raises(ValueError, match="not an e-mail address"):
        autoconfig.suggest(address)


def test_unknown_domain_without_lookups_gives_nothing(settings):
    """With lookups off (the operator's choice) only the table answers."""
    settings.WEBMAIL_AUTOCONFIG_LOOKUPS = False
    assert autoconfig.suggest("someone@example.org") is None


def test_config_file_is_read_encrypted_entries_first():
    """The first encrypted entry of each kind wins; plain ones are left out."""
    found = autoconfig.parse_config(CONFIG, "anne@localhost")
    assert found.provider == "Local Mail"
    assert found.source == "autoconfig"
    assert found.imap == ServerSettings(
        "imap.localhost.test", 993, Security.SSL, "anne"
    )
    assert found.pop3 == ServerSettings(
        "pop.localhost.test", 110, Security.STARTTLS, "anne@localhost"
    )
    assert found.smtp.host == "smtp.localhost.test"


@pytest.mark.parametrize(
    "data",
    [
        b"not xml at all <",
        b"<clientConfig/>",
        b"<clientConfig><emailProvider/></clientConfig>",
        # An entity bomb: refused before expansion.
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;">]><clientConfig>&b;</clientConfig>',
        b"<clientConfig><emailProvider><incomingServer type='imap'>"
        b"<hostname>h</hostname><port>99999</port><socketType>SSL</socketType>"
        b"</incomingServer></emailProvider></clientConfig>",
    ],
)
def test_unusable_config_files_give_nothing(data):
    assert autoconfig.parse_config(data, "a@localhost") is None


class HttpsFiles:
    """An HTTPS server for localhost (the test CA's certificate) serving files."""

    def __init__(self, dovecot, files: dict[str, bytes]) -> None:
        self.requested: list[str] = []
        requested = self.requested

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                requested.append(self.path)
                body = files.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/xml")
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(dovecot.cert_file, dovecot.key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]


@contextmanager
def https_files(dovecot, files: dict[str, bytes]) -> Iterator[HttpsFiles]:
    served = HttpsFiles(dovecot, files)
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()


WELL_KNOWN = "/.well-known/autoconfig/mail/config-v1.1.xml"


@pytest.fixture
def lookups(settings, trust_test_ca):
    """Lookups on, against a local DNS server (empty unless a test fills it)."""
    settings.WEBMAIL_AUTOCONFIG_LOOKUPS = True
    return settings


def test_domain_autoconfig_file_over_https(lookups, dovecot):
    """The domain's well-known file is fetched over verified HTTPS and used."""
    with dns_server({}) as dns, https_files(dovecot, {WELL_KNOWN: CONFIG}) as web:
        lookups.WEBMAIL_DNS_SERVERS = [dns.address]
        lookups.WEBMAIL_AUTOCONFIG_HTTPS_PORT = web.port
        found = autoconfig.suggest("anne@localhost")
    assert found.source == "autoconfig"
    assert found.imap.host == "imap.localhost.test"
    assert web.requested == [WELL_KNOWN + "?emailaddress=anne@localhost"]


def test_autoconfig_host_refused_by_policy(lookups, dovecot):
    """A domain that resolves to a private address is not fetched from."""
    lookups.WEBMAIL_ALLOW_PRIVATE_HOSTS = False
    with dns_server({}) as dns, https_files(dovecot, {WELL_KNOWN: CONFIG}) as web:
        lookups.WEBMAIL_DNS_SERVERS = [dns.address]
        lookups.WEBMAIL_AUTOCONFIG_HTTPS_PORT = web.port
        assert autoconfig.suggest("anne@localhost") is None
    assert web.requested == []


def test_autoconfig_with_an_untrusted_certificate_is_not_used(settings, dovecot):
    """Without the test CA the certificate fails, so the file is not read."""
    settings.WEBMAIL_AUTOCONFIG_LOOKUPS = True
    settings.WEBMAIL_EXTRA_CA_FILE = ""
    with dns_server({}) as dns, https_files(dovecot, {WELL_KNOWN: CONFIG}) as web:
        settings.WEBMAIL_DNS_SERVERS = [dns.address]
        settings.WEBMAIL_AUTOCONFIG_HTTPS_PORT = web.port
        assert autoconfig.suggest("anne@localhost") is None


SRV_RECORDS = {
    ("_imaps._tcp.example.test.", "SRV"): [
        "20 0 993 backup.example.test.",
        "10 5 993 imap.example.test.",
    ],
    ("_pop3s._tcp.example.test.", "SRV"): ["0 0 0 ."],  # "no such service"
    ("_pop3._tcp.example.test.", "SRV"): ["10 0 110 pop.example.test."],
    ("_submission._tcp.example.test.", "SRV"): ["10 0 587 smtp.example.test."],
}


def test_srv_records(lookups):
    """RFC 6186: lowest priority wins, "." means none, STARTTLS on plain ports."""
    with dns_server(SRV_RECORDS) as dns:
        lookups.WEBMAIL_DNS_SERVERS = [dns.address]
        lookups.WEBMAIL_AUTOCONFIG_HTTPS_PORT = 9  # nothing listens: no file
        found = autoconfig.suggest("bob@example.test")
    assert found.source == "srv"
    assert found.imap == ServerSettings(
        "imap.example.test", 993, Security.SSL, "bob@example.test"
    )
    assert found.pop3 == ServerSettings(
        "pop.example.test", 110, Security.STARTTLS, "bob@example.test"
    )
    assert found.smtp.port == 587
    assert found.smtp.security == Security.STARTTLS


def test_mx_of_a_hosted_domain(lookups):
    """A company domain whose MX is Google's gets Gmail's servers."""
    records = {("company.test.", "MX"): ["5 aspmx.l.google.com."]}
    with dns_server(records) as dns:
        lookups.WEBMAIL_DNS_SERVERS = [dns.address]
        lookups.WEBMAIL_AUTOCONFIG_HTTPS_PORT = 9
        found = autoconfig.suggest("boss@company.test")
    assert found.source == "mx"
    assert found.provider == "Gmail"
    assert found.imap.username == "boss@company.test"


def test_nothing_found_anywhere(lookups):
    with dns_server({("other.test.", "A"): ["192.0.2.1"]}) as dns:
        lookups.WEBMAIL_DNS_SERVERS = [dns.address]
        lookups.WEBMAIL_AUTOCONFIG_HTTPS_PORT = 9
        assert autoconfig.suggest("x@other.test") is None
