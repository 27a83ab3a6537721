"""Mailboxes connected with OAuth2 (Google, Microsoft): connect, tokens, refresh.

Google has refused ordinary passwords for IMAP, POP3 and SMTP since 2024 (app
passwords aside); Microsoft accepts only OAuth2 for IMAP and POP3. The user
connects the mailbox through django-allauth's provider flow (state, PKCE, code
exchange and profile are allauth's); the hook below takes the tokens out of
that flow before allauth would log anyone in or store them, saves them encrypted
on the mail account, and ends the flow. allauth is not a way to sign in here.

Access tokens live about an hour. ``secret_for`` returns a token with more than
a minute left, else refreshes it; one refresh at a time per account, in every
process, because the refresh runs with the account's row locked
(``select_for_update``; on SQLite the immediate transaction takes the write
lock). A refresh token the provider refuses marks the account "needs
reconnecting"; only the user can fix that, with the reconnect button.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import requests
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter, get_adapter
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AccountKind, AccountStatus, MailAccount, OAuthToken
from accounts.servers import ServerSettings
from accounts.services import (
    OAuthTokens,
    mail_account_connect_oauth,
    mail_account_needs_reconnect,
    mail_account_store_tokens,
)
from mailbox import autoconfig, net
from mailbox.errors import Problem, ServerProblem

if TYPE_CHECKING:
    from allauth.socialaccount.models import SocialLogin

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Refresh when less than this is left, so a token never expires mid-command.
REFRESH_MARGIN = dt.timedelta(seconds=60)
SESSION_KEY = "webmail_oauth_connect"


@dataclass(frozen=True)
class OAuthProvider:
    id: str  # allauth's provider id
    name: str
    table_name: str  # the provider's name in mailbox.autoconfig.PROVIDERS


PROVIDERS = {
    "google": OAuthProvider("google", "Google", "Gmail"),
    "microsoft": OAuthProvider("microsoft", "Microsoft", "Outlook.com / Microsoft 365"),
}


def _app(provider_id: str):  # noqa: ANN202 - allauth's SocialApp
    from allauth.socialaccount.models import SocialApp

    try:
        return get_adapter().get_app(None, provider=provider_id)
    except SocialApp.DoesNotExist:
        return None


def configured_providers() -> list[OAuthProvider]:
    """Providers the operator registered this webmail with (settings or admin)."""
    return [p for p in PROVIDERS.values() if _app(p.id) is not None]


def token_url(provider_id: str) -> str:
    app = _app(provider_id)
    if provider_id == "google":
        from allauth.socialaccount.providers.google.views import GoogleOAuth2Adapter

        return GoogleOAuth2Adapter.access_token_url
    conf = getattr(settings, "SOCIALACCOUNT_PROVIDERS", {}).get("microsoft", {})
    tenant = (app.settings if app else {}).get("tenant", conf.get("TENANT", "common"))
    login_url = (app.settings if app else {}).get(
        "login_url", "https://login.microsoftonline.com"
    )
    return f"{login_url}/{tenant}/oauth2/v2.0/token"


def mail_servers(provider_id: str, email: str) -> dict[str, ServerSettings | None]:
    """IMAP, POP3 and SMTP settings of the provider's mail service for ``email``."""
    override = settings.WEBMAIL_OAUTH_MAIL_SERVERS.get(provider_id)
    if override:
        return {
            kind: ServerSettings(*override[kind], email) if kind in override else None
            for kind in ("imap", "pop3", "smtp")
        }
    table = next(
        p for p in autoconfig.PROVIDERS if p.name == PROVIDERS[provider_id].table_name
    )
    found = autoconfig.suggestion_of(table, email, "builtin")
    return {"imap": found.imap, "pop3": found.pop3, "smtp": found.smtp}


# --- tokens ----------------------------------------------------------------------


def _fresh(account: MailAccount) -> bool:
    expires = account.oauth_expires_at
    return expires is None or expires - timezone.now() > REFRESH_MARGIN


def secret_for(account: MailAccount, *, failed: str | None = None) -> str:
    """The secret to log in with: the password, or a valid OAuth2 access token.

    ``failed`` is a token the server just refused: it is refreshed unless another
    process already replaced it. Raises ServerProblem(RECONNECT) when the
    provider refuses the refresh token, ServerProblem(NETWORK/TIMEOUT) when it
    cannot be reached.
    """
    if not account.uses_oauth:
        return account.get_password()
    if account.status == AccountStatus.NEEDS_RECONNECT:
        raise ServerProblem(Problem.RECONNECT)  # no request the provider refuses
    if failed is None and _fresh(account):
        return account.get_oauth_access()
    return _refresh(account.pk, failed=failed)


def with_login_retry(account: MailAccount, login: Callable[[str], T]) -> T:
    """Call ``login(secret)``; for an OAuth2 account, once more after a refresh
    if the server refuses the token (it may have been revoked early or expired
    sooner than announced)."""
    secret = secret_for(account)
    try:
        return login(secret)
    except ServerProblem as problem:
        if problem.problem != Problem.AUTH or not account.uses_oauth:
            raise
    return login(secret_for(account, failed=secret))


class _Dead(Exception):
    """The provider refused the grant: only reconnecting helps."""


def _refresh(account_id: int, *, failed: str | None) -> OAuthToken:
    try:
        with transaction.atomic():
            account = MailAccount.objects.select_for_update().get(pk=account_id)
            current = account.get_oauth_access()
            if _fresh(account) and (failed is None or current != failed):
                return current  # another process refreshed while this one waited
            refresh_token = account.get_oauth_refresh()
            if not refresh_token:
                raise _Dead("no refresh token")
            tokens = _request_refresh(account, refresh_token)
            mail_account_store_tokens(account=account, tokens=tokens)
    except _Dead as dead:
        # Recorded after the rollback of the locked block, so that it stays.
        mail_account_needs_reconnect(
            account=MailAccount.objects.get(pk=account_id),
            detail=_("The provider no longer accepts this connection: reconnect it."),
        )
        logger.info("oauth: account %s needs reconnecting (%s)", account_id, dead)
        raise ServerProblem(Problem.RECONNECT) from dead
    logger.info("oauth: refreshed the token of account %s", account_id)
    return OAuthToken(tokens.access)


def _request_refresh(account: MailAccount, refresh_token: str) -> OAuthTokens:
    app = _app(account.oauth_provider)
    if app is None:
        raise _Dead("provider not configured")
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": app.client_id,
        "client_secret": app.secret,
    }
    try:
        response = requests.post(
            token_url(account.oauth_provider),
            data=data,
            headers={"Accept": "application/json"},
            timeout=net.timeout_seconds(),
        )
    except requests.Timeout as exc:
        raise ServerProblem(Problem.TIMEOUT) from exc
    except requests.RequestException as exc:
        raise ServerProblem(Problem.NETWORK, exc.__class__.__name__) from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code in (400, 401) and body.get("error") in (
        "invalid_grant",
        "unauthorized_client",
        "invalid_client",
    ):
        raise _Dead(str(body.get("error")))
    if response.status_code != 200 or not body.get("access_token"):
        raise ServerProblem(Problem.NETWORK, f"token endpoint {response.status_code}")
    expires_in = body.get("expires_in")
    expires_at = (
        timezone.now() + dt.timedelta(seconds=int(expires_in))
        if str(expires_in).isdigit()
        else None
    )
    return OAuthTokens(
        access=str(body["access_token"]),
        refresh=body.get("refresh_token"),
        expires_at=expires_at,
    )


# --- connecting ------------------------------------------------------------------


def connect_start(
    request: HttpRequest, provider_id: str, kind: str
) -> HttpResponseRedirect:
    """Send the signed-in user to the provider, remembering what to create."""
    request.session[SESSION_KEY] = {"provider": provider_id, "kind": kind}
    provider = get_adapter().get_provider(request, provider_id)
    return provider.redirect(
        request, process="connect", next_url=reverse("mailbox:account_list")
    )


def _mailbox_email(sociallogin: SocialLogin) -> str:
    for address in sociallogin.email_addresses:
        if address.email:
            return address.email
    data = sociallogin.account.extra_data or {}
    return str(data.get("email") or data.get("mail") or data.get("userPrincipalName"))


class SocialAdapter(DefaultSocialAccountAdapter):
    """allauth's provider flow, used only to connect mailboxes."""

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        intent = request.session.pop(SESSION_KEY, None)
        target = reverse("mailbox:account_list")
        user = request.user
        provider_id = sociallogin.account.provider
        if not user.is_authenticated or not intent or intent["provider"] != provider_id:
            messages.error(request, _("Sign in here first, then connect a mailbox."))
            raise ImmediateHttpResponse(HttpResponseRedirect(reverse("account_login")))
        token = sociallogin.token
        email = _mailbox_email(sociallogin)
        if token is None or not token.token or "@" not in email:
            messages.error(
                request, _("The provider did not give access to the mailbox.")
            )
            raise ImmediateHttpResponse(HttpResponseRedirect(target))
        kind = intent["kind"]
        servers = mail_servers(provider_id, email)
        incoming = servers["imap" if kind == AccountKind.IMAP else "pop3"]
        if incoming is None:
            messages.error(request, _("This provider has no POP3 service."))
            raise ImmediateHttpResponse(HttpResponseRedirect(target))
        account = mail_account_connect_oauth(
            user=user,
            kind=kind,
            provider=provider_id,
            email=email,
            server=incoming,
            smtp=servers["smtp"],
            tokens=OAuthTokens(
                access=token.token,
                refresh=token.token_secret or None,
                expires_at=token.expires_at,
            ),
        )
        messages.success(
            request, _("The mailbox %(email)s is connected.") % {"email": email}
        )
        if kind == AccountKind.POP3:
            from mailbox import tasks
            from mailbox.store.models import ImportJob

            with transaction.atomic():
                tasks.import_start(account=account, trigger=ImportJob.Trigger.MANUAL)
        raise ImmediateHttpResponse(HttpResponseRedirect(target))

    def is_open_for_signup(
        self, request: HttpRequest, sociallogin: SocialLogin
    ) -> bool:
        return False
