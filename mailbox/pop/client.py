"""POP3 connections over poplib, through the outbound-network policy."""

from __future__ import annotations

import poplib
import socket

from accounts.models import Security
from accounts.servers import ServerSettings
from mailbox import net
from mailbox.errors import Problem, ServerProblem


class _POP3(poplib.POP3):
    """poplib transport that connects through mailbox.net (checked address)."""

    def _create_socket(self, timeout: float) -> socket.socket:
        return net.open_connection(self.host, self.port, timeout)


class _POP3_SSL(poplib.POP3_SSL):  # noqa: N801 (poplib's naming)
    def _create_socket(self, timeout: float) -> socket.socket:
        sock = net.open_connection(self.host, self.port, timeout)
        # SNI and the certificate check use the name, not the checked address.
        return self.context.wrap_socket(sock, server_hostname=self.host)


def connect(server: ServerSettings, password: str, *, timeout: float) -> poplib.POP3:
    """Return an authenticated POP3 client; raise ServerProblem otherwise."""
    with net.translated_errors():
        try:
            if server.security == Security.SSL:
                client: poplib.POP3 = _POP3_SSL(
                    server.host, server.port, timeout=timeout, context=net.tls_context()
                )
            else:
                client = _POP3(server.host, server.port, timeout=timeout)
        except poplib.error_proto as exc:
            raise ServerProblem(Problem.PROTOCOL, _reply(exc)) from exc
        try:
            if server.security == Security.STARTTLS:
                try:
                    client.stls(net.tls_context())
                except poplib.error_proto as exc:
                    raise ServerProblem(Problem.TLS, "STLS is not offered") from exc
            try:
                client.user(server.username)
                client.pass_(password)
            except poplib.error_proto as exc:
                raise ServerProblem(Problem.AUTH) from exc
        except BaseException:
            _close(client)
            raise
    return client


def probe(server: ServerSettings, password: str, *, timeout: float) -> None:
    """Log in and out once; raise ServerProblem if that cannot be done."""
    client = connect(server, password, timeout=timeout)
    _close(client)


def _reply(exc: poplib.error_proto) -> str:
    arg = exc.args[0] if exc.args else b""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text[:120]


def _close(client: poplib.POP3) -> None:
    try:
        client.quit()
    except (OSError, poplib.error_proto):
        client.close()
