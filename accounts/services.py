"""Writes on users' mail accounts and quotas. Knows rows and credentials only."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts import crypto
from accounts.models import (
    AccountKind,
    AccountStatus,
    MailAccount,
    Security,
    User,
)
from accounts.servers import ServerSettings


@dataclass(frozen=True)
class AccountOptions:
    """What a user chooses besides the servers."""

    label: str
    email: str
    leave_on_server: bool = True
    check_interval_minutes: int = 15


@transaction.atomic
def mail_account_create(
    *,
    user: User,
    kind: AccountKind | str,
    options: AccountOptions,
    server: ServerSettings,
    password: str,
    smtp: ServerSettings | None = None,
    smtp_password: str = "",
) -> MailAccount:
    """Create a mail account with encrypted credentials."""
    account = MailAccount(
        user=user,
        kind=kind,
        label=options.label,
        email=options.email,
        leave_on_server=options.leave_on_server,
        check_interval_minutes=options.check_interval_minutes,
        **server.as_fields(),
    )
    account.set_password(password)
    _apply_smtp(account, smtp, smtp_password)
    account.full_clean()
    account.save()
    return account


@transaction.atomic
def mail_account_update(
    *,
    account: MailAccount,
    options: AccountOptions,
    server: ServerSettings,
    password: str | None = None,
    smtp: ServerSettings | None = None,
    smtp_password: str | None = None,
) -> MailAccount:
    """Change an account; a password of None keeps the stored one."""
    account.label = options.label
    account.email = options.email
    account.leave_on_server = options.leave_on_server
    account.check_interval_minutes = options.check_interval_minutes
    for name, value in server.as_fields().items():
        setattr(account, name, value)
    if password:
        account.set_password(password)
    if smtp_password is None and smtp is not None:
        smtp_password = account.get_smtp_password()
    _apply_smtp(account, smtp, smtp_password or "")
    account.status = AccountStatus.OK
    account.status_detail = ""
    account.full_clean()
    account.save()
    return account


def _apply_smtp(
    account: MailAccount, smtp: ServerSettings | None, password: str
) -> None:
    if smtp is None:
        account.smtp_host = ""
        account.smtp_port = None
        account.smtp_security = Security.STARTTLS
        account.smtp_username = ""
        account.set_smtp_password("")
        return
    for name, value in smtp.as_smtp_fields().items():
        setattr(account, name, value)
    account.set_smtp_password(password)


def mail_account_set_password(*, account: MailAccount, password: str) -> None:
    """Replace the stored incoming-server password (admin, reconnect)."""
    account.set_password(password)
    account.status = AccountStatus.OK
    account.status_detail = ""
    account.save(
        update_fields=["password_encrypted", "status", "status_detail", "updated_at"]
    )


def mail_account_delete(*, account: MailAccount) -> None:
    account.delete()


@transaction.atomic
def credentials_rotate() -> int:
    """Re-encrypt every stored credential with the primary key; return the count."""
    count = 0
    for account in MailAccount.objects.select_for_update().order_by("pk"):
        account.password_encrypted = crypto.rotate(account.password_encrypted)
        if account.smtp_password_encrypted:
            account.smtp_password_encrypted = crypto.rotate(
                account.smtp_password_encrypted
            )
        account.save(update_fields=["password_encrypted", "smtp_password_encrypted"])
        count += 1
    return count
