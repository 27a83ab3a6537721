"""Add or change a mail account: test the login first, then save through accounts/."""

from __future__ import annotations

import logging

from django.conf import settings

from accounts.models import AccountKind, MailAccount, User
from accounts.servers import ServerSettings
from accounts.services import AccountOptions, mail_account_create, mail_account_update
from mailbox import net, oauth, tasks
from mailbox.imap import session as imap_session
from mailbox.pop import client as pop_client
from mailbox.store.models import ImportJob

logger = logging.getLogger(__name__)


def probe_login(kind: AccountKind | str, server: ServerSettings, password: str) -> None:
    """Log in to the incoming server once; raise ServerProblem with the reason."""
    probe = imap_session.probe if kind == AccountKind.IMAP else pop_client.probe
    probe(server, password, timeout=net.timeout_seconds())


def account_add(
    *,
    user: User,
    kind: AccountKind | str,
    options: AccountOptions,
    server: ServerSettings,
    password: str,
    smtp: ServerSettings | None = None,
    smtp_password: str = "",
) -> MailAccount:
    """Test the login, then create the account. Nothing is saved on failure."""
    probe_login(kind, server, password)
    account = mail_account_create(
        user=user,
        kind=kind,
        options=options,
        server=server,
        password=password,
        smtp=smtp,
        smtp_password=smtp_password,
    )
    logger.info("mail account %s added for user %s", account.pk, user.pk)
    if account.is_pop and not settings.CELERY_TASK_ALWAYS_EAGER:
        # The first import starts at once on a worker. Without one (embedded
        # mode) the import loop picks the new account up within a minute.
        tasks.import_start(account=account, trigger=ImportJob.Trigger.MANUAL)
    return account


def account_change(
    *,
    account: MailAccount,
    options: AccountOptions,
    server: ServerSettings,
    password: str | None,
    smtp: ServerSettings | None = None,
    smtp_password: str | None = None,
) -> MailAccount:
    """Test the login with the new settings and password (or the stored one); save."""
    if account.uses_oauth:
        password = None  # the provider's tokens, never a password
        oauth.with_login_retry(
            account, lambda secret: probe_login(account.kind, server, secret)
        )
    else:
        probe_login(account.kind, server, password or account.get_password())
    return mail_account_update(
        account=account,
        options=options,
        server=server,
        password=password,
        smtp=smtp,
        smtp_password=smtp_password,
    )
