"""Writes on users' mail accounts and quotas. Knows rows and credentials only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import crypto
from accounts.models import (
    AccountKind,
    AccountStatus,
    AuthMethod,
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
    # IMAP: special use -> the folder the user picked ("sent": "Sent Items").
    special_folders: Mapping[str, str] = field(default_factory=dict)


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
    account.special_folders = {
        use: name for use, name in options.special_folders.items() if name
    }


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


@dataclass(frozen=True)
class OAuthTokens:
    access: str
    refresh: str | None  # a refresh answer may leave it out: keep the old one
    expires_at: datetime | None


_TOKEN_FIELDS = [
    "oauth_access_encrypted",
    "oauth_refresh_encrypted",
    "oauth_expires_at",
    "status",
    "status_detail",
    "updated_at",
]


@transaction.atomic
def mail_account_connect_oauth(
    *,
    user: User,
    kind: AccountKind | str,
    provider: str,
    email: str,
    server: ServerSettings,
    smtp: ServerSettings | None,
    tokens: OAuthTokens,
) -> MailAccount:
    """Create the account of a mailbox connected through OAuth2, or reconnect it.

    The same user, protocol and address with the same provider is the same
    account: its tokens are replaced and its status is cleared.
    """
    account = MailAccount.objects.filter(
        user=user,
        kind=kind,
        email__iexact=email,
        auth_method=AuthMethod.OAUTH2,
        oauth_provider=provider,
    ).first()
    if account is None:
        account = MailAccount(
            user=user,
            kind=kind,
            label=email,
            email=email,
            auth_method=AuthMethod.OAUTH2,
            oauth_provider=provider,
        )
    for name, value in server.as_fields().items():
        setattr(account, name, value)
    _apply_smtp(account, smtp, "")
    account.set_oauth_tokens(
        access=tokens.access, refresh=tokens.refresh, expires_at=tokens.expires_at
    )
    account.status = AccountStatus.OK
    account.status_detail = ""
    account.full_clean(exclude=["password_encrypted"])
    account.save()
    return account


def mail_account_store_tokens(*, account: MailAccount, tokens: OAuthTokens) -> None:
    """Keep refreshed tokens (the caller holds the account row locked)."""
    account.set_oauth_tokens(
        access=tokens.access, refresh=tokens.refresh, expires_at=tokens.expires_at
    )
    account.status = AccountStatus.OK
    account.status_detail = ""
    account.save(update_fields=_TOKEN_FIELDS)


def mail_account_needs_reconnect(*, account: MailAccount, detail: str) -> None:
    """The provider refused the refresh token: only the user can fix it."""
    account.status = AccountStatus.NEEDS_RECONNECT
    account.status_detail = detail[:255]
    account.save(update_fields=["status", "status_detail", "updated_at"])


_SECRET_FIELDS = (
    "password_encrypted",
    "smtp_password_encrypted",
    "oauth_access_encrypted",
    "oauth_refresh_encrypted",
)


@transaction.atomic
def credentials_rotate() -> int:
    """Re-encrypt every stored credential with the primary key; return the count."""
    count = 0
    for account in MailAccount.objects.select_for_update().order_by("pk"):
        for name in _SECRET_FIELDS:
            if getattr(account, name):
                setattr(account, name, crypto.rotate(getattr(account, name)))
        account.save(update_fields=list(_SECRET_FIELDS))
        count += 1
    return count
