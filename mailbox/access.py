"""The one gate from a signed-in user to the mail of one of their accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.shortcuts import get_object_or_404

from accounts.models import AccountKind, MailAccount

if TYPE_CHECKING:
    from accounts.models import User
    from mailbox.sources import MailSource


def account_for_user(user: User, account_id: int) -> MailAccount:
    """One of the user's active accounts; Http404 for any other id."""
    return get_object_or_404(MailAccount, pk=account_id, user=user, is_active=True)


def source_for(user: User, account_id: int) -> MailSource:
    """Return the source of one of the user's accounts; Http404 for any other id."""
    account = account_for_user(user, account_id)
    return source_of(account)


def source_of(account: MailAccount) -> MailSource:
    if account.kind == AccountKind.IMAP:
        from mailbox.imap.source import ImapSource

        return ImapSource(account)
    from mailbox.store.source import StoreSource

    return StoreSource(account)
