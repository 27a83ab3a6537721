"""Plain server settings, the only thing protocol clients get from an account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import MailAccount


@dataclass(frozen=True)
class ServerSettings:
    """Where and how to connect; the secret travels separately, never in a repr."""

    host: str
    port: int
    security: str  # accounts.models.Security value
    username: str

    def as_fields(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "username": self.username,
        }

    def as_smtp_fields(self) -> dict[str, object]:
        return {
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_security": self.security,
            "smtp_username": self.username,
        }

    @classmethod
    def incoming_of(cls, account: MailAccount) -> ServerSettings:
        return cls(account.host, account.port, account.security, account.username)

    @classmethod
    def outgoing_of(cls, account: MailAccount) -> ServerSettings | None:
        if not account.smtp_host or not account.smtp_port:
            return None
        return cls(
            account.smtp_host,
            account.smtp_port,
            account.smtp_security,
            account.smtp_username,
        )
