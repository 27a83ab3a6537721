"""The admin: staff only, and stored passwords never reach the browser."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AccountKind, MailAccount, Security, UserQuota
from accounts.servers import ServerSettings
from accounts.services import AccountOptions, mail_account_create
from tests.conftest import login

SECRET = "admin-must-never-see-this"


@pytest.fixture
def account(user) -> MailAccount:
    return mail_account_create(
        user=user,
        kind=AccountKind.POP3,
        options=AccountOptions(label="Old POP", email="alice@example.net"),
        server=ServerSettings("pop.example.net", 995, Security.SSL, "alice"),
        password=SECRET,
        smtp=ServerSettings("smtp.example.net", 465, Security.SSL, "alice"),
        smtp_password=SECRET + "-smtp",
    )


def test_change_form_never_contains_the_stored_password(superuser, account):
    """Neither the password nor its encrypted token is in the admin page."""
    client = login(superuser)
    url = reverse("admin:accounts_mailaccount_change", args=[account.pk])
    page = client.get(url).content.decode()
    assert "pop.example.net" in page
    assert 'name="new_password"' in page
    assert SECRET not in page
    assert account.password_encrypted not in page
    assert account.smtp_password_encrypted not in page


def test_user_page_with_inlines_never_contains_passwords(superuser, user, account):
    """The user's page lists mail accounts without their credentials."""
    page = (
        login(superuser)
        .get(reverse("admin:accounts_user_change", args=[user.pk]))
        .content.decode()
    )
    assert "Old POP" in page
    assert SECRET not in page
    assert account.password_encrypted not in page


def change_data(account: MailAccount, **overrides: object) -> dict[str, object]:
    data = {
        "user": account.user_id,
        "kind": account.kind,
        "label": account.label,
        "email": account.email,
        "is_active": "on",
        "host": account.host,
        "port": account.port,
        "security": account.security,
        "username": account.username,
        "leave_on_server": "on",
        "check_interval_minutes": 15,
        "smtp_host": account.smtp_host,
        "smtp_port": account.smtp_port,
        "smtp_security": account.smtp_security,
        "smtp_username": account.smtp_username,
        "status": account.status,
        "new_password": "",
        "new_smtp_password": "",
    }
    data.update(overrides)
    return data


def test_staff_set_a_new_password_through_a_write_only_field(superuser, account):
    """A new password typed in the admin replaces the stored one."""
    url = reverse("admin:accounts_mailaccount_change", args=[account.pk])
    response = login(superuser).post(url, change_data(account, new_password="fresh"))
    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert account.get_password() == "fresh"
    assert account.get_smtp_password() == SECRET + "-smtp"


def test_saving_without_a_new_password_keeps_the_stored_one(superuser, account):
    """An empty password field changes nothing."""
    url = reverse("admin:accounts_mailaccount_change", args=[account.pk])
    response = login(superuser).post(url, change_data(account, label="Renamed"))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.label == "Renamed"
    assert account.get_password() == SECRET


def test_mail_account_list_filters_and_searches(superuser, account):
    """Staff find accounts by protocol and by host."""
    client = login(superuser)
    url = reverse("admin:accounts_mailaccount_changelist")
    assert "Old POP" in client.get(url, {"kind__exact": "pop3"}).content.decode()
    assert "Old POP" not in client.get(url, {"kind__exact": "imap"}).content.decode()
    assert "Old POP" in client.get(url, {"q": "pop.example"}).content.decode()


def test_staff_set_a_users_storage_limit(superuser, user):
    """The storage limit is set per user; empty means the site default."""
    quota = UserQuota.objects.create(user=user)
    client = login(superuser)
    user_page = client.get(reverse("admin:accounts_user_change", args=[user.pk]))
    assert 'name="quota-0-limit_mb"' in user_page.content.decode()
    url = reverse("admin:accounts_userquota_change", args=[quota.pk])
    response = client.post(url, {"user": user.pk, "limit_mb": 5})
    assert response.status_code == 302
    assert UserQuota.objects.get(user=user).effective_limit_bytes == 5 * 1024 * 1024


def test_only_staff_reach_the_admin(client, user):
    """Anonymous visitors go to sign in; signed-in non-staff are refused."""
    anonymous = client.get(reverse("admin:index"), follow=True)
    assert anonymous.redirect_chain[-1][0].startswith(reverse("account_login"))
    member = login(user).get(reverse("admin:index"), follow=True)
    assert member.status_code == 403


def test_connected_account_shows_its_provider_never_its_tokens(superuser, user):
    """An OAuth2 account: the admin sees the provider and the expiry only."""
    from django.utils import timezone

    from accounts.services import OAuthTokens, mail_account_connect_oauth

    account = mail_account_connect_oauth(
        user=user,
        kind=AccountKind.IMAP,
        provider="google",
        email="alice@gmail.com",
        server=ServerSettings("imap.gmail.com", 993, Security.SSL, "alice@gmail.com"),
        smtp=None,
        tokens=OAuthTokens(
            access="ya29.access-token-value",
            refresh="1//refresh-token-value",
            expires_at=timezone.now(),
        ),
    )
    client = login(superuser)
    url = reverse("admin:accounts_mailaccount_change", args=[account.pk])
    page = client.get(url).content.decode()
    assert "google" in page
    for secret in (
        "ya29.access-token-value",
        "1//refresh-token-value",
        account.oauth_access_encrypted,
        account.oauth_refresh_encrypted,
    ):
        assert secret not in page
