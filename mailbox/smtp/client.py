"""Sending over SMTP: the only home of smtplib.

Connections go through ``mailbox.net`` (host policy, resolve-check-connect, the
verifying TLS context), like the incoming servers. Every failure comes out as
``SendFailed`` with the server's own reply for the user and a ``temporary`` flag
that says whether trying again later can help (RFC 5321 §4.2.1: 4yz replies and
network trouble are transient, 5yz replies are permanent).
"""

from __future__ import annotations

import base64
import logging
import smtplib
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from accounts.models import OAuthToken
from mailbox import net
from mailbox.errors import Problem, ServerProblem

if TYPE_CHECKING:
    from accounts.servers import ServerSettings

logger = logging.getLogger(__name__)

# Problems with the connection that a later attempt may not have.
_TEMPORARY_PROBLEMS = {Problem.TIMEOUT, Problem.REFUSED, Problem.NETWORK}


class SendFailed(Exception):
    """The message was not accepted; ``message`` is for the user."""

    def __init__(self, message: str, *, temporary: bool, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.temporary = temporary
        self.code = code


def _reply_text(code: int, reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    text = " ".join(reply.split())
    return f"{code} {text}"[:500]


def _rejected(code: int, reply: bytes | str, what: str) -> SendFailed:
    text = _reply_text(code, reply)
    return SendFailed(
        _("The outgoing server refused %(what)s: %(reply)s")
        % {"what": what, "reply": text},
        temporary=400 <= code < 500,
        code=code,
    )


class _Smtp(smtplib.SMTP):
    """smtplib.SMTP that connects through the host policy of ``mailbox.net``."""

    def __init__(self, *, implicit_tls: bool, **kwargs: object) -> None:
        self._implicit_tls = implicit_tls
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = net.open_connection(host, port, timeout)
        if self._implicit_tls:
            try:
                return net.tls_context().wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        return sock


def _login(smtp: _Smtp, username: str, password: str) -> None:
    """AUTH; UTF-8 credentials go by PLAIN (RFC 4616), which smtplib cannot send.

    An OAuth2 access token (``accounts.models.OAuthToken``) logs in with XOAUTH2.
    """
    if isinstance(password, OAuthToken):
        _xoauth2(smtp, username, password)
        return
    if (username + password).isascii():
        smtp.login(username, password)
        return
    if "plain" not in smtp.esmtp_features.get("auth", "").lower().split():
        raise smtplib.SMTPNotSupportedError("AUTH PLAIN is needed for UTF-8")
    token = base64.b64encode(
        b"\0" + username.encode() + b"\0" + password.encode()
    ).decode("ascii")
    code, reply = smtp.docmd("AUTH", "PLAIN " + token)
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, reply)


def _xoauth2(smtp: _Smtp, username: str, token: str) -> None:
    if "xoauth2" not in smtp.esmtp_features.get("auth", "").lower().split():
        raise smtplib.SMTPNotSupportedError("the server does not offer XOAUTH2")
    blob = f"user={username}\x01auth=Bearer {token}\x01\x01".encode()
    code, reply = smtp.docmd("AUTH", "XOAUTH2 " + base64.b64encode(blob).decode())
    if code == 334:
        # The error detail comes as a challenge; an empty line ends it.
        code, reply = smtp.docmd("")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def problem_failure(exc: ServerProblem) -> SendFailed:
    """A ServerProblem (connection, TLS, host policy, OAuth2) as a SendFailed."""
    return SendFailed(exc.message, temporary=exc.problem in _TEMPORARY_PROBLEMS)


def send(
    server: ServerSettings,
    password: str,
    *,
    sender: str,
    recipients: Sequence[str],
    data: bytes,
    helo: str = "localhost",
    timeout: float | None = None,
) -> None:
    """Deliver ``data`` to ``recipients`` through ``server``; SendFailed otherwise.

    SSL/TLS or STARTTLS as the settings say (a server that does not offer
    STARTTLS is refused, never used in clear), certificates verified, AUTH when
    a user name and password are given. Any refused recipient fails the whole
    message (as Thunderbird does): nothing is sent then.
    """
    if timeout is None:
        timeout = net.timeout_seconds()
    security = server.security
    try:
        with net.translated_errors():
            smtp = _Smtp(implicit_tls=security == "ssl", timeout=timeout)
            smtp.local_hostname = helo
            try:
                _session(smtp, server, password, security, sender, recipients, data)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
    except ServerProblem as exc:
        raise problem_failure(exc) from exc
    except smtplib.SMTPServerDisconnected as exc:
        raise SendFailed(
            _("The outgoing server closed the connection."), temporary=True
        ) from exc


def _session(
    smtp: _Smtp,
    server: ServerSettings,
    password: str,
    security: str,
    sender: str,
    recipients: Sequence[str],
    data: bytes,
) -> None:
    code, reply = smtp.connect(server.host, server.port)
    # starttls() names the server (SNI, certificate check) by this attribute,
    # which only the constructor sets.
    smtp._host = server.host
    if code != 220:
        raise _rejected(code, reply, _("the connection"))
    smtp.ehlo_or_helo_if_needed()
    if security == "starttls":
        if not smtp.has_extn("starttls"):
            raise ServerProblem(Problem.TLS, _("the server does not offer STARTTLS"))
        code, reply = smtp.starttls(context=net.tls_context())
        if code != 220:
            raise _rejected(code, reply, _("STARTTLS"))
        smtp.ehlo()
    if server.username and password:
        try:
            _login(smtp, server.username, password)
        except smtplib.SMTPAuthenticationError as exc:
            raise SendFailed(
                _("The outgoing server refused the user name or password (%(reply)s).")
                % {"reply": _reply_text(exc.smtp_code, exc.smtp_error)},
                temporary=400 <= exc.smtp_code < 500,
                code=exc.smtp_code,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise SendFailed(
                _("The outgoing server does not accept a login on this connection."),
                temporary=False,
            ) from exc
        except smtplib.SMTPException as exc:
            raise SendFailed(
                _("The outgoing server refused the login."), temporary=False
            ) from exc
    options = []
    if smtp.has_extn("8bitmime") and not data.isascii():
        options.append("BODY=8BITMIME")
    if smtp.has_extn("size"):
        options.append(f"SIZE={len(data)}")
    code, reply = smtp.mail(sender, options)
    if code != 250:
        smtp.rset()
        raise _rejected(code, reply, _("the sender"))
    for recipient in recipients:
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            smtp.rset()
            raise _rejected(
                code, reply, _("the recipient %(address)s") % {"address": recipient}
            )
    code, reply = smtp.data(data)
    if code != 250:
        raise _rejected(code, reply, _("the message"))
    logger.info("smtp: message accepted for %s recipients", len(recipients))


def probe(server: ServerSettings, password: str, *, timeout: float) -> None:
    """Connect, secure and log in once; SendFailed with the reason otherwise."""
    try:
        with net.translated_errors():
            smtp = _Smtp(implicit_tls=server.security == "ssl", timeout=timeout)
            try:
                smtp.connect(server.host, server.port)
                smtp._host = server.host
                smtp.ehlo_or_helo_if_needed()
                if server.security == "starttls":
                    smtp.starttls(context=net.tls_context())
                    smtp.ehlo()
                if server.username and password:
                    _login(smtp, server.username, password)
            finally:
                smtp.close()
    except ServerProblem as exc:
        raise problem_failure(exc) from exc
    except smtplib.SMTPException as exc:
        raise SendFailed(str(exc)[:200], temporary=False) from exc
