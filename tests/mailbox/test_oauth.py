"""Gmail and Microsoft mailboxes: connect with OAuth2, use and refresh the tokens.

The providers' endpoints point at a loopback OAuth2 server (tests cannot reach
Google or Microsoft), and a Dovecot checks the tokens through that server's
introspection endpoint, as Gmail's and Outlook's IMAP/POP3 servers check theirs.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from allauth.socialaccount.providers.google.views import GoogleOAuth2Adapter
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccountKind, AccountStatus, AuthMethod, MailAccount
from mailbox import oauth
from mailbox.access import source_of
from mailbox.errors import Problem, ServerProblem
from mailbox.sources import ListQuery
from mailbox.store.models import StoredMessage
from tests.data.loader import load_eml
from tests.servers.oauth import OAuthDovecot, OAuthServer


@pytest.fixture(scope="session")
def oauth_server():
    server = OAuthServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oauth_dovecot(oauth_server):
    server = OAuthDovecot(oauth_server)
    server.start()
    yield server
    server.close()


@pytest.fixture
def providers(settings, monkeypatch, oauth_server, oauth_dovecot, db):
    """Google and Microsoft registered, their endpoints on the loopback server."""
    settings.WEBMAIL_EXTRA_CA_FILE = str(oauth_dovecot.ca_file)
    servers = {
        "imap": (oauth_dovecot.host, oauth_dovecot.imap_port, "starttls"),
        "pop3": (oauth_dovecot.host, oauth_dovecot.pop3_port, "starttls"),
    }
    settings.WEBMAIL_OAUTH_MAIL_SERVERS = {"google": servers, "microsoft": servers}
    url = oauth_server.url
    monkeypatch.setattr(GoogleOAuth2Adapter, "authorize_url", f"{url}/authorize")
    monkeypatch.setattr(GoogleOAuth2Adapter, "access_token_url", f"{url}/token")
    monkeypatch.setattr(GoogleOAuth2Adapter, "identity_url", f"{url}/userinfo")
    SocialApp.objects.create(
        provider="google", name="Google", client_id="g-id", secret="g-secret"
    )
    SocialApp.objects.create(
        provider="microsoft",
        name="Microsoft",
        client_id="m-id",
        secret="m-secret",
        settings={"login_url": url, "graph_url": url},
    )
    return oauth_server


def connect(client, provider: str, kind: str = AccountKind.IMAP):
    """Press "Connect with …", consent at the provider, come back."""
    start = client.post(
        reverse("mailbox:account_connect", args=[provider]), {"kind": kind}
    )
    assert start.status_code == 302, start
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    back = urlsplit(consent.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def test_connect_google_creates_an_imap_account_and_reads_it(
    user, user_client, providers, oauth_dovecot
):
    """Connected once, the mailbox reads over XOAUTH2; tokens are stored encrypted."""
    mail_user = oauth_dovecot.new_user()
    email = providers.add_identity(mail_user.username)
    oauth_dovecot.deliver(mail_user.username, load_eml("plain_utf8.eml"))

    response = connect(user_client, "google")

    assert response.status_code == 302
    assert response["Location"] == reverse("mailbox:account_list")
    account = MailAccount.objects.get(user=user)
    assert account.auth_method == AuthMethod.OAUTH2
    assert account.oauth_provider == "google"
    assert account.email == email
    assert account.username == email
    assert account.oauth_refresh_encrypted
    token = account.get_oauth_access()
    assert token.startswith("at-")
    assert token not in account.oauth_access_encrypted
    # allauth neither signs anyone in with it nor keeps tokens of its own.
    assert not SocialAccount.objects.exists()
    assert not SocialToken.objects.exists()

    source = source_of(account)
    page = source.messages("INBOX", ListQuery())
    assert len(page.messages) == 1


def test_connect_microsoft_for_pop3(
    user, user_client, providers, oauth_dovecot, django_capture_on_commit_callbacks
):
    """Microsoft's profile comes from Graph; a POP3 mailbox is imported at once."""
    mail_user = oauth_dovecot.new_user()
    providers.add_identity(mail_user.username)
    oauth_dovecot.deliver(mail_user.username, load_eml("plain_utf8.eml"))

    with django_capture_on_commit_callbacks(execute=True):
        connect(user_client, "microsoft", kind=AccountKind.POP3)

    account = MailAccount.objects.get(user=user)
    assert account.kind == AccountKind.POP3
    assert account.oauth_provider == "microsoft"
    assert StoredMessage.objects.filter(account=account).count() == 1
    assert "/common/oauth2/v2.0/token" in providers.requests_seen


def test_connect_needs_a_signed_in_user(client, providers, oauth_dovecot):
    """The provider flow is no way to sign in here."""
    response = client.post(reverse("mailbox:account_connect", args=["google"]))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]
    assert not MailAccount.objects.exists()


def test_unconfigured_provider_answers_404(user_client, db):
    response = user_client.post(reverse("mailbox:account_connect", args=["google"]))
    assert response.status_code == 404


def test_provider_login_without_our_request_creates_nothing(
    user, user_client, providers, oauth_dovecot
):
    """Reaching allauth's provider login directly (not our button) is refused."""
    mail_user = oauth_dovecot.new_user()
    providers.add_identity(mail_user.username)
    start = user_client.post("/accounts/google/login/", {"process": "connect"})
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(consent.headers["Location"])
    user_client.get(f"{back.path}?{back.query}")
    assert not MailAccount.objects.exists()


def _connected(user_client, providers, oauth_dovecot) -> MailAccount:
    mail_user = oauth_dovecot.new_user()
    providers.add_identity(mail_user.username)
    oauth_dovecot.deliver(mail_user.username, load_eml("plain_utf8.eml"))
    connect(user_client, "google")
    return MailAccount.objects.get(email=f"{mail_user.username}@example.test")


def test_expiring_token_is_refreshed_before_use(user_client, providers, oauth_dovecot):
    """A token with less than a minute left is replaced before it is used."""
    account = _connected(user_client, providers, oauth_dovecot)
    old = account.get_oauth_access()
    account.oauth_expires_at = timezone.now() + timezone.timedelta(seconds=30)
    account.save()
    before = providers.refreshes

    token = oauth.secret_for(account)

    assert token != old
    assert providers.refreshes == before + 1
    account.refresh_from_db()
    assert account.get_oauth_access() == token
    assert account.oauth_expires_at > timezone.now() + timezone.timedelta(minutes=30)


def test_refused_token_is_refreshed_once_and_the_login_retried(
    user_client, providers, oauth_dovecot
):
    """The server refuses a token the provider expired early: refresh, log in."""
    account = _connected(user_client, providers, oauth_dovecot)
    providers.expire_access_tokens()  # still "valid for an hour" on our side
    before = providers.refreshes

    page = source_of(account).messages("INBOX", ListQuery())

    assert len(page.messages) == 1
    assert providers.refreshes == before + 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_make_one_request(user, providers, oauth_dovecot, client):
    """Four processes' worth of threads on an expired token: one refresh."""
    client.force_login(user)
    account = _connected(client, providers, oauth_dovecot)
    MailAccount.objects.filter(pk=account.pk).update(oauth_expires_at=timezone.now())
    before = providers.refreshes
    tokens: list[str] = []
    errors: list[BaseException] = []

    def use() -> None:
        try:
            tokens.append(oauth.secret_for(MailAccount.objects.get(pk=account.pk)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert providers.refreshes == before + 1
    assert len(set(tokens)) == 1


def test_revoked_access_marks_the_account_for_reconnecting(
    user_client, providers, oauth_dovecot
):
    """A dead refresh token: a clear status, a reconnect button, no retry loop."""
    account = _connected(user_client, providers, oauth_dovecot)
    providers.revoke(account.email)
    providers.expire_access_tokens()

    with pytest.raises(ServerProblem) as raised:
        source_of(account).messages("INBOX", ListQuery())
    assert raised.value.problem == Problem.RECONNECT

    account.refresh_from_db()
    assert account.status == AccountStatus.NEEDS_RECONNECT
    refreshes = providers.refreshes
    with pytest.raises(ServerProblem):
        oauth.secret_for(account)
    assert providers.refreshes == refreshes  # the provider is not asked again
    page = user_client.get(reverse("mailbox:account_list")).content.decode()
    assert "Needs reconnecting" in page
    assert reverse("mailbox:account_connect", args=["google"]) in page
    assert "Reconnect" in page


def test_reconnect_replaces_the_tokens_of_the_same_account(
    user, user_client, providers, oauth_dovecot
):
    account = _connected(user_client, providers, oauth_dovecot)
    providers.revoke(account.email)
    providers.expire_access_tokens()
    with pytest.raises(ServerProblem):
        oauth.secret_for(account, failed=account.get_oauth_access())

    providers.next_email = account.email
    connect(user_client, "google")

    assert MailAccount.objects.filter(user=user).count() == 1
    account.refresh_from_db()
    assert account.status == AccountStatus.OK
    assert len(source_of(account).messages("INBOX", ListQuery()).messages) == 1


def test_tokens_never_appear_in_pages_or_logs(
    user_client, providers, oauth_dovecot, caplog
):
    caplog.set_level(logging.DEBUG)
    account = _connected(user_client, providers, oauth_dovecot)
    account.oauth_expires_at = timezone.now()
    account.save()
    token = oauth.secret_for(account)
    refresh = account.get_oauth_refresh()
    pages = [
        user_client.get(reverse("mailbox:account_list")),
        user_client.get(reverse("mailbox:account_edit", args=[account.pk])),
    ]
    for response in pages:
        body = response.content.decode()
        assert token not in body
        assert refresh not in body
    assert token not in caplog.text
    assert refresh not in caplog.text
    assert repr(token) == "OAuthToken(…)"


def test_editing_a_connected_account_keeps_its_tokens(
    user_client, providers, oauth_dovecot
):
    """The edit form asks no password; saving tests the login with the token."""
    account = _connected(user_client, providers, oauth_dovecot)
    url = reverse("mailbox:account_edit", args=[account.pk])
    form = user_client.get(url).context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None}
    data["label"] = "Work Gmail"
    response = user_client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors
    account.refresh_from_db()
    assert account.label == "Work Gmail"
    assert account.uses_oauth


def test_sign_in_page_offers_no_provider_login(client, providers):
    """Registered providers connect mailboxes; they do not sign anyone in."""
    page = client.get(reverse("account_login")).content.decode()
    assert "/accounts/google/login/" not in page
    assert "/accounts/microsoft/login/" not in page


def test_assistant_offers_to_connect_a_gmail_address(user_client, providers):
    url = reverse("mailbox:account_add")
    response = user_client.get(url, {"email": "a.b@gmail.com", "kind": "imap"})
    page = response.content.decode()
    assert reverse("mailbox:account_connect", args=["google"]) in page


def test_mail_pages_of_a_revoked_account_say_to_reconnect(
    user_client, providers, oauth_dovecot
):
    account = _connected(user_client, providers, oauth_dovecot)
    providers.revoke(account.email)
    providers.expire_access_tokens()
    from mailbox.imap import pool

    pool.close_all()  # the next page must log in again
    response = user_client.get(reverse("mailbox:message_list", args=[account.pk]))
    assert response.status_code != 500
    assert "reconnect" in response.content.decode()


def test_api_shows_how_an_account_signs_in_and_when_to_reconnect(
    user_client, providers, oauth_dovecot
):
    account = _connected(user_client, providers, oauth_dovecot)
    listed = user_client.get("/api/v1/accounts/").json()
    assert listed[0]["auth_method"] == "oauth2"
    assert listed[0]["oauth_provider"] == "google"
    assert account.get_oauth_access() not in str(listed)

    providers.revoke(account.email)
    providers.expire_access_tokens()
    from mailbox.imap import pool

    pool.close_all()
    response = user_client.get(f"/api/v1/accounts/{account.pk}/messages/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "needs_reconnect"
    listed = user_client.get("/api/v1/accounts/").json()
    assert listed[0]["status"] == "reconnect"


def test_connected_gmail_sends_with_a_fresh_token(
    user_client,
    providers,
    oauth_dovecot,
    dovecot,
    smtp_server,
    settings,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    """Sending logs in to SMTP with XOAUTH2 and a token the provider accepts,
    refreshed first when it is about to expire."""
    from mailbox.compose.models import OutgoingMessage
    from tests.mailbox.compose.test_send import compose

    both = tmp_path / "cas.pem"
    both.write_bytes(oauth_dovecot.ca_file.read_bytes() + dovecot.ca_file.read_bytes())
    settings.WEBMAIL_EXTRA_CA_FILE = str(both)
    settings.WEBMAIL_OAUTH_MAIL_SERVERS = {
        "google": {
            "imap": (oauth_dovecot.host, oauth_dovecot.imap_port, "starttls"),
            "smtp": (smtp_server.host, smtp_server.port, "starttls"),
        }
    }
    accepted: list[str] = []

    def bearer_check(user: str, token: str) -> bool:
        grant = providers.valid(token)
        if grant is not None and grant.email == user:
            accepted.append(token)
        return bool(accepted) and accepted[-1] == token

    smtp_server.state.bearer_check = bearer_check
    account = _connected(user_client, providers, oauth_dovecot)
    MailAccount.objects.filter(pk=account.pk).update(oauth_expires_at=timezone.now())
    before = providers.refreshes

    with django_capture_on_commit_callbacks(execute=True):
        compose(user_client, account, to="friend@example.net", subject="Via OAuth2")

    outgoing = OutgoingMessage.objects.get()
    assert outgoing.state == OutgoingMessage.State.SENT, outgoing.last_error
    assert smtp_server.logins == ["XOAUTH2"]
    assert providers.refreshes == before + 1
    assert len(smtp_server.received) == 1


def test_providers_mail_servers_come_from_the_assistants_table(settings):
    """Without an operator's override, the public servers, logging in as the address."""
    from accounts.models import Security
    from accounts.servers import ServerSettings

    settings.WEBMAIL_OAUTH_MAIL_SERVERS = {}
    google = oauth.mail_servers("google", "ann@gmail.com")
    assert google["imap"] == ServerSettings(
        "imap.gmail.com", 993, Security.SSL, "ann@gmail.com"
    )
    microsoft = oauth.mail_servers("microsoft", "ann@outlook.fr")
    assert microsoft["pop3"].host == "outlook.office365.com"
    assert microsoft["smtp"] == ServerSettings(
        "smtp.office365.com", 587, Security.STARTTLS, "ann@outlook.fr"
    )
