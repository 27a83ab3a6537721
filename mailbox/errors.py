"""Problems with a remote mail server, each with a message a user can act on."""

from __future__ import annotations

from enum import StrEnum

from django.utils.translation import gettext_lazy as _


class Problem(StrEnum):
    AUTH = "auth"
    UNKNOWN_HOST = "unknown_host"
    HOST_NOT_ALLOWED = "host_not_allowed"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TLS = "tls"
    PROTOCOL = "protocol"
    NETWORK = "network"
    RECONNECT = "reconnect"  # an OAuth2 grant the provider no longer accepts


_MESSAGES = {
    Problem.AUTH: _("The server refused the user name or password."),
    Problem.UNKNOWN_HOST: _("No server of that name exists (DNS lookup failed)."),
    Problem.HOST_NOT_ALLOWED: _(
        "This server's address is private or reserved; connecting to it is not "
        "allowed here."
    ),
    Problem.REFUSED: _(
        "The server refused the connection: check the host name and the port."
    ),
    Problem.TIMEOUT: _(
        "The server did not answer in time: check the host name, the port and "
        "the security setting."
    ),
    Problem.TLS: _("A secure (TLS) connection could not be set up."),
    Problem.PROTOCOL: _(
        "The server answered, but not as expected: check the protocol, the port "
        "and the security setting."
    ),
    Problem.NETWORK: _("The connection to the server failed."),
    Problem.RECONNECT: _(
        "The provider no longer accepts this webmail's access to the mailbox: "
        "reconnect the account."
    ),
}


class ServerProblem(Exception):
    """A remote mail server could not be used; ``message`` is for the user."""

    def __init__(self, problem: Problem, detail: str = "") -> None:
        super().__init__(f"{problem}: {detail}" if detail else str(problem))
        self.problem = problem
        self.detail = detail

    @property
    def message(self) -> str:
        text = str(_MESSAGES[self.problem])
        if self.detail:
            return f"{text} ({self.detail})"
        return text
