"""IMAP connections over imapclient, through the outbound-network policy."""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from accounts.models import OAuthToken, Security
from accounts.servers import ServerSettings
from mailbox import net
from mailbox.errors import Problem, ServerProblem


class _IMAP4(imaplib.IMAP4):
    """imaplib transport that connects through mailbox.net (checked address)."""

    def __init__(
        self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        self._tls = tls
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = net.open_connection(self.host, self.port, timeout or 30.0)
        if self._tls is None:
            return sock
        # SNI and the certificate check use the name, not the checked address.
        return self._tls.wrap_socket(sock, server_hostname=self.host)


class _Client(IMAPClient):
    """IMAPClient that connects through mailbox.net and knows its open folder.

    ``selected_folder`` is the folder selected read-write, or None: every way of
    changing the selection goes through these methods, so listing and reading can
    skip re-opening a folder that is already open (see listing.select).
    """

    selected_folder: str | None = None

    def _create_IMAP4(self) -> imaplib.IMAP4:  # noqa: N802 (imapclient's name)
        tls = self.ssl_context if self.ssl else None
        return _IMAP4(self.host, self.port, self._timeout.connect, tls)

    def select_folder(self, folder, readonly=False):  # type: ignore[no-untyped-def]
        self.selected_folder = None  # a failed SELECT leaves nothing selected
        result = super().select_folder(folder, readonly)
        if not readonly:
            self.selected_folder = folder
        return result

    def unselect_folder(self):  # type: ignore[no-untyped-def]
        self.selected_folder = None
        return super().unselect_folder()

    def close_folder(self):  # type: ignore[no-untyped-def]
        self.selected_folder = None
        return super().close_folder()

    def rename_folder(self, old_name, new_name):  # type: ignore[no-untyped-def]
        self._leave_folder()
        return super().rename_folder(old_name, new_name)

    def delete_folder(self, folder):  # type: ignore[no-untyped-def]
        self._leave_folder()
        return super().delete_folder(folder)

    def _leave_folder(self) -> None:
        """Close the selected folder, if any, before a folder is renamed or deleted.

        Dovecot ends a session whose selected folder is renamed or deleted, even
        by the session itself (the next command meets EOF). UNSELECT where the
        server has it; else EXAMINE INBOX and CLOSE, because CLOSE of a folder
        opened read-write would expunge its \\Deleted messages (RFC 3501 §6.4.2),
        and a read-only one is closed without.
        """
        self.selected_folder = None
        if self._imap.state != "SELECTED":
            return
        if self.has_capability("UNSELECT"):
            super().unselect_folder()
        else:
            super().select_folder("INBOX", readonly=True)
            super().close_folder()


def connect(server: ServerSettings, password: str, *, timeout: float) -> IMAPClient:
    """Return a logged-in client; raise ServerProblem with a user-facing reason."""
    implicit_tls = server.security == Security.SSL
    with net.translated_errors():
        try:
            client = _Client(
                server.host,
                server.port,
                ssl=implicit_tls,
                ssl_context=net.tls_context(),
                timeout=timeout,
            )
        except imaplib.IMAP4.error as exc:
            # A greeting that is not IMAP's (a POP3 or SMTP port, say).
            raise ServerProblem(Problem.PROTOCOL, str(exc)[:120]) from exc
        try:
            if server.security == Security.STARTTLS:
                if not client.has_capability("STARTTLS"):
                    raise ServerProblem(Problem.TLS, "STARTTLS is not offered")
                client.starttls(net.tls_context())
            if isinstance(password, OAuthToken):
                client.oauth2_login(server.username, password)
            else:
                client.login(server.username, password)
        except LoginError as exc:
            _close(client)
            raise ServerProblem(Problem.AUTH) from exc
        except IMAPClientError as exc:
            _close(client)
            raise ServerProblem(Problem.PROTOCOL, str(exc)[:120]) from exc
        except BaseException:
            _close(client)
            raise
    return client


def probe(server: ServerSettings, password: str, *, timeout: float) -> None:
    """Log in and out once; raise ServerProblem if that cannot be done."""
    client = connect(server, password, timeout=timeout)
    _close(client)


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except (OSError, IMAPClientError, imaplib.IMAP4.error):
        with contextlib.suppress(OSError):
            client.shutdown()
