"""A real SMTP server for the tests: aiosmtpd in a thread of the test process.

STARTTLS (required before AUTH) with a certificate of the test CA, AUTH PLAIN
and LOGIN for one known user, every accepted message kept (envelope and the
exact bytes), and a switch that makes the next DATA commands fail with a given
reply (``fail_next("451 4.3.0 Try again later")``); recipients at
``REFUSED_DOMAIN`` are refused at RCPT. An implicit-TLS listener
(SMTPS, port 465 style) runs beside it with the same certificate.
"""

from __future__ import annotations

import base64
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from .ports import HOST, free_port

USERNAME = "sender@example.org"
PASSWORD = "smtp secret ✓"
OAUTH_TOKEN = "ya29.test-access-token"
# Recipients at this domain are refused at RCPT (550), as unknown users are.
REFUSED_DOMAIN = "refused.example"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class _State:
    received: list[Received] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (user, token) -> accepted; None: the fixed OAUTH_TOKEN for USERNAME.
    bearer_check: Callable[[str, str], bool] | None = None


class _Handler:
    def __init__(self, state: _State) -> None:
        self.state = state

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        """Google's and Microsoft's OAuth2 login: user=…^Aauth=Bearer <token>^A^A."""
        try:
            fields = base64.b64decode(args[1]).decode().split("\x01")
        except (IndexError, ValueError):
            return AuthResult(success=False, handled=False)
        user = next((f[len("user=") :] for f in fields if f.startswith("user=")), "")
        bearer = "auth=Bearer "
        token = next((f[len(bearer) :] for f in fields if f.startswith(bearer)), "")
        check = self.state.bearer_check
        ok = check(user, token) if check else (user, token) == (USERNAME, OAUTH_TOKEN)
        if ok:
            with self.state.lock:
                self.state.logins.append("XOAUTH2")
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802, ANN001, ANN201
        if address.lower().endswith("@" + REFUSED_DOMAIN):
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
        with self.state.lock:
            if self.state.failures:
                return self.state.failures.pop(0)
            self.state.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
            )
        return "250 2.0.0 Message accepted"


class SmtpServer:
    """STARTTLS on ``port``, implicit TLS on ``tls_port``, one user, a fail switch."""

    host = HOST

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.state = _State()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert_file), str(key_file))
        self._tls_context = context
        self.port = free_port()
        self.tls_port = free_port()
        handler = _Handler(self.state)
        common = {"authenticator": self._authenticate, "hostname": HOST}
        self._starttls = Controller(
            handler,
            port=self.port,
            server_hostname="smtp.test",
            tls_context=context,
            require_starttls=True,
            auth_require_tls=True,
            **common,
        )
        self._implicit = Controller(
            handler,
            port=self.tls_port,
            ssl_context=context,
            server_hostname="smtps.test",
            # TLS from the first byte; aiosmtpd only knows of STARTTLS.
            auth_require_tls=False,
            **common,
        )

    def _authenticate(self, server: SMTP, session, envelope, mechanism, auth_data):  # noqa: ANN001
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == USERNAME
            and auth_data.password.decode() == PASSWORD
        )
        if ok:
            with self.state.lock:
                self.state.logins.append(mechanism)
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        self._starttls.start()
        self._implicit.start()
        return self

    def stop(self) -> None:
        self._starttls.stop()
        self._implicit.stop()

    # -- for the tests -------------------------------------------------------

    def reset(self) -> None:
        with self.state.lock:
            self.state.received.clear()
            self.state.failures.clear()
            self.state.logins.clear()
            self.state.bearer_check = None

    def fail_next(self, reply: str, times: int = 1) -> None:
        """The next ``times`` messages are refused at DATA with ``reply``."""
        with self.state.lock:
            self.state.failures.extend([reply] * times)

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    @property
    def logins(self) -> list[str]:
        with self.state.lock:
            return list(self.state.logins)
