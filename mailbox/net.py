"""Outbound connections to mail servers: host policy, resolve-check-connect, TLS.

Hosts are typed by users, so a name could point at the operator's own network.
Each name is resolved once, every address is checked against the policy, and the
connection goes to a checked address; the name is kept for SNI and the
certificate check, so a DNS answer cannot change between the check and the use.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils.translation import gettext as _

from mailbox.errors import Problem, ServerProblem


def address_allowed(address: str) -> bool:
    """Whether a resolved address is a public one (or the operator allows any)."""
    if settings.WEBMAIL_ALLOW_PRIVATE_HOSTS:
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for private, loopback, link-local (cloud metadata at
    # 169.254.169.254), shared (100.64/10), reserved and unspecified ranges.
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[tuple[int, tuple]]:
    """Resolve ``host`` and return (family, sockaddr) pairs, all allowed by policy.

    Raises ServerProblem(UNKNOWN_HOST) or ServerProblem(HOST_NOT_ALLOWED); one
    forbidden address refuses the whole name.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ServerProblem(Problem.UNKNOWN_HOST, host) from exc
    addresses = []
    for family, _type, _proto, _name, sockaddr in infos:
        if not address_allowed(sockaddr[0]):
            raise ServerProblem(Problem.HOST_NOT_ALLOWED, host)
        if (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    if not addresses:
        raise ServerProblem(Problem.UNKNOWN_HOST, host)
    return addresses


def open_connection(host: str, port: int, timeout: float) -> socket.socket:
    """Connect to an allowed address of ``host``; every step within ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: OSError | None = None
    for family, sockaddr in resolve(host, port):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(remaining)
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        sock.settimeout(timeout)
        return sock
    if last_error is None:
        last_error = TimeoutError("connect timed out")
    raise last_error


def tls_context() -> ssl.SSLContext:
    """A certificate-verifying client context (plus the operator's extra CAs)."""
    context = ssl.create_default_context()
    if settings.WEBMAIL_EXTRA_CA_FILE:
        context.load_verify_locations(cafile=settings.WEBMAIL_EXTRA_CA_FILE)
    return context


def problem_from_os_error(exc: OSError) -> ServerProblem:
    """Translate a socket-level failure into a ServerProblem."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ServerProblem(
            Problem.TLS,
            _("the certificate is not valid: %(reason)s")
            % {"reason": exc.verify_message or exc.reason},
        )
    if isinstance(exc, TimeoutError):
        return ServerProblem(Problem.TIMEOUT)
    if isinstance(exc, ssl.SSLError):
        return ServerProblem(Problem.TLS, exc.reason or "")
    if isinstance(exc, ConnectionRefusedError):
        return ServerProblem(Problem.REFUSED)
    if isinstance(exc, socket.gaierror):
        return ServerProblem(Problem.UNKNOWN_HOST)
    return ServerProblem(Problem.NETWORK, exc.strerror or exc.__class__.__name__)


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn low-level network errors raised inside the block into ServerProblem."""
    try:
        yield
    except ServerProblem:
        raise
    except OSError as exc:
        raise problem_from_os_error(exc) from exc


def timeout_seconds() -> float:
    return float(settings.WEBMAIL_NETWORK_TIMEOUT)


class HTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to an allowed address of the host (resolve-check-connect)."""

    def connect(self) -> None:
        self.sock = open_connection(self.host, self.port, self.timeout)


class HTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an allowed address, the certificate checked against the name."""

    def connect(self) -> None:
        sock = open_connection(self.host, self.port, self.timeout)
        self.sock = tls_context().wrap_socket(sock, server_hostname=self.host)
