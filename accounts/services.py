"""Writes on users' mail accounts and quotas. Knows rows and credentials only."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

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
    # POP3 only: when to remove a kept copy, and where imported mail goes.
    remove_after_days: int | None = None
    import_folder: str = ""
    import_imap_account_id: int | None = None


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
    """Create a mail account with encrypted credentials.

    Raises ValidationError when the import target is not one of the user's
    IMAP accounts.
    """
    account = MailAccount(user=user, kind=kind, **server.as_fields())
    _apply_options(account, options)
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
    """Change an account; a password of None keeps the stored one.

    Raises ValidationError when the import target is not one of the user's
    other IMAP accounts.
    """
    _apply_options(account, options)
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


def _apply_options(account: MailAccount, options: AccountOptions) -> None:
    target = _import_target(account, options)  # checked before anything changes
    account.label = options.label
    account.email = options.email
    account.leave_on_server = options.leave_on_server
    account.check_interval_minutes = options.check_interval_minutes
    account.remove_after_days = options.remove_after_days
    account.import_folder = options.import_folder
    account.import_imap_account = target


def _import_target(account: MailAccount, options: AccountOptions) -> MailAccount | None:
    """The IMAP account to import into, checked to be the owner's; None: the store."""
    target_id = options.import_imap_account_id
    if target_id is None:
        return None
    target = (
        MailAccount.objects.filter(
            pk=target_id, user=account.user, kind=AccountKind.IMAP
        )
        .exclude(pk=account.pk)
        .first()
    )
    if target is None:
        raise ValidationError(
            {
                "import_imap_account": _(
                    "Choose one of your own IMAP accounts to import into."
                )
            }
        )
    return target


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
