"""Server settings from an e-mail address: the setup assistant's lookups.

In order, the first that answers wins:

1. a built-in table of large providers (by the address's domain);
2. when the operator allows outgoing lookups (``WEBMAIL_AUTOCONFIG_LOOKUPS``):
   the domain's own autoconfiguration file (the Mozilla/Thunderbird format, at
   ``https://autoconfig.<domain>/mail/config-v1.1.xml`` then
   ``https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml``; HTTPS only,
   so that nobody on the path can steer the password elsewhere), then the
   domain's RFC 6186 / RFC 8314 SRV records, then its MX records matched against
   the table (a company domain hosted by Google, Microsoft 365 or OVH).

Every answer is a suggestion: the user sees and can edit each field before the
login is tested. Fetches go through mailbox.net (host policy, verified TLS).
"""

from __future__ import annotations

import http.client
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import dns.exception
import dns.resolver
from defusedxml import ElementTree
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.models import Security
from accounts.servers import ServerSettings
from mailbox import net
from mailbox.errors import ServerProblem

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

logger = logging.getLogger(__name__)

# How a provider spells the login: the whole address or the part before "@".
ADDRESS = "%EMAILADDRESS%"
LOCAL_PART = "%EMAILLOCALPART%"

MAX_CONFIG_BYTES = 64 * 1024


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: str
    username: str = ADDRESS

    def for_address(self, address: str) -> ServerSettings:
        local, _at, domain = address.partition("@")
        username = (
            self.username.replace(ADDRESS, address)
            .replace(LOCAL_PART, local)
            .replace("%EMAILDOMAIN%", domain)
        )
        return ServerSettings(self.host, self.port, self.security, username)


@dataclass(frozen=True)
class Provider:
    name: str
    domains: tuple[str, ...]
    imap: Endpoint | None
    pop3: Endpoint | None
    smtp: Endpoint | None
    mx_suffixes: tuple[str, ...] = ()
    oauth: str = ""  # "google" / "microsoft": ordinary passwords are refused
    note: str = ""  # shown to the user (a lazy translation)


@dataclass(frozen=True)
class Suggestion:
    """Settings for one address; any of the three may be missing."""

    provider: str
    source: str  # "builtin", "autoconfig", "srv" or "mx"
    imap: ServerSettings | None
    pop3: ServerSettings | None
    smtp: ServerSettings | None
    oauth: str = ""
    note: str = ""


def _ssl(host: str, port: int, username: str = ADDRESS) -> Endpoint:
    return Endpoint(host, port, Security.SSL, username)


def _starttls(host: str, port: int, username: str = ADDRESS) -> Endpoint:
    return Endpoint(host, port, Security.STARTTLS, username)


_GOOGLE_NOTE = _(
    "Google refuses ordinary passwords: use an app password "
    "(Google account, Security, App passwords)."
)
_MICROSOFT_NOTE = _(
    "Microsoft accepts only OAuth2 sign-in for mail, which needs the "
    "operator to register this webmail with Microsoft."
)
_APP_PASSWORD_NOTE = _("This provider asks for an app password made in its settings.")

PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "Gmail",
        ("gmail.com", "googlemail.com"),
        _ssl("imap.gmail.com", 993),
        _ssl("pop.gmail.com", 995),
        _ssl("smtp.gmail.com", 465),
        mx_suffixes=("google.com", "googlemail.com"),
        oauth="google",
        note=_GOOGLE_NOTE,
    ),
    Provider(
        "Outlook.com / Microsoft 365",
        (
            "outlook.com",
            "outlook.fr",
            "hotmail.com",
            "hotmail.fr",
            "live.com",
            "live.fr",
            "msn.com",
        ),
        _ssl("outlook.office365.com", 993),
        _ssl("outlook.office365.com", 995),
        _starttls("smtp.office365.com", 587),
        mx_suffixes=("mail.protection.outlook.com", "olc.protection.outlook.com"),
        oauth="microsoft",
        note=_MICROSOFT_NOTE,
    ),
    Provider(
        "Yahoo",
        ("yahoo.com", "yahoo.fr", "ymail.com", "rocketmail.com"),
        _ssl("imap.mail.yahoo.com", 993),
        _ssl("pop.mail.yahoo.com", 995),
        _ssl("smtp.mail.yahoo.com", 465),
        note=_APP_PASSWORD_NOTE,
    ),
    Provider(
        "iCloud",
        ("icloud.com", "me.com", "mac.com"),
        _ssl("imap.mail.me.com", 993, LOCAL_PART),
        None,  # iCloud has no POP3
        _starttls("smtp.mail.me.com", 587, ADDRESS),
        note=_APP_PASSWORD_NOTE,
    ),
    Provider(
        "GMX",
        ("gmx.net", "gmx.de", "gmx.at", "gmx.ch"),
        _ssl("imap.gmx.net", 993),
        _ssl("pop.gmx.net", 995),
        _starttls("mail.gmx.net", 587),
    ),
    Provider(
        "GMX",
        ("gmx.com", "gmx.fr", "gmx.co.uk", "gmx.es", "gmx.it", "gmx.us"),
        _ssl("imap.gmx.com", 993),
        _ssl("pop.gmx.com", 995),
        _starttls("mail.gmx.com", 587),
    ),
    Provider(
        "Orange",
        ("orange.fr", "wanadoo.fr"),
        _ssl("imap.orange.fr", 993),
        _ssl("pop.orange.fr", 995),
        _ssl("smtp.orange.fr", 465),
    ),
    Provider(
        "Free",
        ("free.fr",),
        _ssl("imap.free.fr", 993, LOCAL_PART),
        _ssl("pop.free.fr", 995, LOCAL_PART),
        _ssl("smtp.free.fr", 465, LOCAL_PART),
    ),
    Provider(
        "SFR",
        ("sfr.fr", "neuf.fr", "cegetel.net", "club-internet.fr"),
        _ssl("imap.sfr.fr", 993),
        _ssl("pop.sfr.fr", 995),
        _ssl("smtp.sfr.fr", 465),
    ),
    Provider(
        "La Poste",
        ("laposte.net",),
        _ssl("imap.laposte.net", 993, LOCAL_PART),
        _ssl("pop.laposte.net", 995, LOCAL_PART),
        _ssl("smtp.laposte.net", 465, LOCAL_PART),
    ),
    Provider(
        "OVHcloud",
        (),  # company domains only: found by their MX records
        _ssl("ssl0.ovh.net", 993),
        _ssl("ssl0.ovh.net", 995),
        _ssl("ssl0.ovh.net", 465),
        mx_suffixes=("mail.ovh.net",),
    ),
)


def domain_of(address: str) -> str:
    """The lower-case ASCII (IDNA) domain of an address; ValueError if none."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError("not an e-mail address")
    try:
        return domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValueError("not a valid domain") from exc


def suggest(address: str) -> Suggestion | None:
    """Server settings for ``address``, or None when nothing is known."""
    address = address.strip()
    domain = domain_of(address)
    found = builtin(address, domain)
    if found or not settings.WEBMAIL_AUTOCONFIG_LOOKUPS:
        return found
    for lookup in (from_autoconfig, from_srv, from_mx):
        try:
            found = lookup(address, domain)
        except (ServerProblem, OSError, http.client.HTTPException) as exc:
            logger.info("autoconfig %s failed: %s", lookup.__name__, exc)
            continue
        if found:
            return found
    return None


def suggestion_of(provider: Provider, address: str, source: str) -> Suggestion:
    """A provider's settings for ``address`` (user names filled in)."""

    def settings_of(endpoint: Endpoint | None) -> ServerSettings | None:
        return endpoint.for_address(address) if endpoint else None

    return Suggestion(
        provider=provider.name,
        source=source,
        imap=settings_of(provider.imap),
        pop3=settings_of(provider.pop3),
        smtp=settings_of(provider.smtp),
        oauth=provider.oauth,
        note=provider.note,
    )


def builtin(address: str, domain: str) -> Suggestion | None:
    for provider in PROVIDERS:
        if domain in provider.domains:
            return suggestion_of(provider, address, "builtin")
    return None


# --- the domain's autoconfiguration file ------------------------------------

_SOCKET_TYPES = {"SSL": Security.SSL, "STARTTLS": Security.STARTTLS}


def _config_urls(address: str, domain: str) -> list[tuple[str, str]]:
    query = "?emailaddress=" + quote(address, safe="@")
    return [
        (f"autoconfig.{domain}", "/mail/config-v1.1.xml" + query),
        (domain, "/.well-known/autoconfig/mail/config-v1.1.xml" + query),
    ]


def _https_get(host: str, path: str) -> bytes | None:
    port = settings.WEBMAIL_AUTOCONFIG_HTTPS_PORT
    conn = net.HTTPSConnection(host, port, timeout=net.timeout_seconds())
    try:
        conn.request("GET", path, headers={"Accept": "application/xml, text/xml"})
        response = conn.getresponse()
        if response.status != 200:
            return None
        data = response.read(MAX_CONFIG_BYTES + 1)
        return data if len(data) <= MAX_CONFIG_BYTES else None
    finally:
        conn.close()


def from_autoconfig(address: str, domain: str) -> Suggestion | None:
    for host, path in _config_urls(address, domain):
        try:
            data = _https_get(host, path)
        except (ServerProblem, OSError, http.client.HTTPException) as exc:
            logger.info("autoconfig file at %s: %s", host, exc)
            continue
        if data:
            found = parse_config(data, address)
            if found:
                return found
    return None


def _endpoint(element: Element) -> tuple[Endpoint, bool] | None:
    """An Endpoint from an incomingServer/outgoingServer element, and OAuth2-ness."""
    host = (element.findtext("hostname") or "").strip()
    port_text = (element.findtext("port") or "").strip()
    socket_type = (element.findtext("socketType") or "").strip().upper()
    if not host or not port_text.isdigit() or socket_type not in _SOCKET_TYPES:
        # Unencrypted entries are left out: the user may still type them.
        return None
    username = (element.findtext("username") or ADDRESS).strip()
    methods = {
        (m.text or "").strip().lower() for m in element.findall("authentication")
    }
    port = int(port_text)
    if not 0 < port < 65536:
        return None
    endpoint = Endpoint(host, port, _SOCKET_TYPES[socket_type], username)
    return endpoint, methods == {"oauth2"}


def parse_config(data: bytes, address: str) -> Suggestion | None:
    """Read a Mozilla-style clientConfig document; None if it has no usable server."""
    try:
        root = ElementTree.fromstring(data, forbid_dtd=True)
    except Exception:  # defusedxml raises several kinds; all mean "unusable"
        logger.info("autoconfig file is not well-formed XML")
        return None
    provider = root.find("emailProvider")
    if provider is None:
        return None
    found: dict[str, Endpoint] = {}
    oauth_only = False
    for tag, attr in (("incomingServer", "type"), ("outgoingServer", "type")):
        for element in provider.findall(tag):
            kind = element.get(attr, "")
            if kind not in ("imap", "pop3", "smtp") or kind in found:
                continue
            parsed = _endpoint(element)
            if parsed:
                found[kind], oauth = parsed
                oauth_only = oauth_only or oauth
    if not found:
        return None
    name = (provider.findtext("displayName") or domain_of(address)).strip()[:100]
    return Suggestion(
        provider=name,
        source="autoconfig",
        imap=found["imap"].for_address(address) if "imap" in found else None,
        pop3=found["pop3"].for_address(address) if "pop3" in found else None,
        smtp=found["smtp"].for_address(address) if "smtp" in found else None,
        note=_("This provider asks for OAuth2 sign-in.") if oauth_only else "",
    )


# --- DNS: SRV (RFC 6186, RFC 8314) and MX -----------------------------------

# Per service, the records in order of preference: implicit TLS first.
_SRV = {
    "imap": (("_imaps._tcp", Security.SSL), ("_imap._tcp", Security.STARTTLS)),
    "pop3": (("_pop3s._tcp", Security.SSL), ("_pop3._tcp", Security.STARTTLS)),
    "smtp": (
        ("_submissions._tcp", Security.SSL),
        ("_submission._tcp", Security.STARTTLS),
    ),
}


def _nameserver(entry: str) -> tuple[str, int]:
    """ "192.0.2.53", "192.0.2.53:5353" or "[2001:db8::53]:5353"."""
    if entry.startswith("["):
        host, _bracket, port = entry[1:].partition("]")
        port = port.lstrip(":")
    elif entry.count(":") == 1:
        host, _colon, port = entry.partition(":")
    else:
        host, port = entry, ""
    return host, int(port) if port.isdigit() else 53


def _resolver() -> dns.resolver.Resolver:
    servers = [_nameserver(entry) for entry in settings.WEBMAIL_DNS_SERVERS]
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [host for host, _port in servers]
        resolver.port = servers[0][1]
    resolver.lifetime = net.timeout_seconds()
    return resolver


def _query(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> list:
    try:
        return list(resolver.resolve(name, rdtype, search=False))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        return []
    except dns.exception.DNSException as exc:
        logger.info("DNS %s %s: %s", rdtype, name, exc.__class__.__name__)
        return []


def from_srv(address: str, domain: str) -> Suggestion | None:
    resolver = _resolver()
    found: dict[str, ServerSettings] = {}
    for kind, records in _SRV.items():
        for prefix, security in records:
            answers = _query(resolver, f"{prefix}.{domain}", "SRV")
            # Lowest priority first, then the heaviest weight (RFC 2782).
            answers.sort(key=lambda r: (r.priority, -r.weight))
            usable = [r for r in answers if str(r.target) != "." and r.port]
            if usable:
                host = str(usable[0].target).rstrip(".")
                found[kind] = ServerSettings(host, usable[0].port, security, address)
                break
    if not found:
        return None
    return Suggestion(
        provider=domain,
        source="srv",
        imap=found.get("imap"),
        pop3=found.get("pop3"),
        smtp=found.get("smtp"),
    )


def from_mx(address: str, domain: str) -> Suggestion | None:
    answers = _query(_resolver(), domain, "MX")
    answers.sort(key=lambda r: r.preference)
    for answer in answers:
        exchange = str(answer.exchange).rstrip(".").lower()
        for provider in PROVIDERS:
            if any(
                exchange == suffix or exchange.endswith("." + suffix)
                for suffix in provider.mx_suffixes
            ):
                return suggestion_of(provider, address, "mx")
    return None
