"""Sign-up, sign-in by e-mail, sign-out, password reset, rate limits, two-factor."""

from __future__ import annotations

import re
import time

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from accounts.models import User
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def test_sign_up_then_use_the_app(client, db):
    """A visitor signs up with an e-mail address and lands signed in."""
    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.org", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert User.objects.filter(email="new@example.org").exists()
    page = client.get(reverse("mailbox:account_list"))
    assert page.status_code == 200


def test_sign_up_can_be_closed(client, settings, db):
    """With WEBMAIL_SIGNUP_OPEN off, nobody can sign up."""
    settings.WEBMAIL_SIGNUP_OPEN = False
    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.org", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert not User.objects.filter(email="new@example.org").exists()
    assert "closed" in response.content.decode().lower()


def test_sign_in_by_email_and_sign_out(client, user):
    """Signing in takes the e-mail address; signing out ends the session."""
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get(reverse("mailbox:account_list")).status_code == 200
    client.post(reverse("account_logout"))
    assert client.get(reverse("mailbox:account_list")).status_code == 302


def test_wrong_password_does_not_sign_in(client, user):
    """A wrong password shows the form again with an error."""
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": "nope"}
    )
    assert response.status_code == 200
    assert client.get(reverse("mailbox:account_list")).status_code == 302


def test_password_reset_mails_a_working_link(client, user):
    """The reset mail carries a link that sets a new password."""
    client.post(reverse("account_reset_password"), {"email": user.email})
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    action = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link
    response = client.post(
        action, {"password1": "a brand new pass 77", "password2": "a brand new pass 77"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a brand new pass 77")


def test_login_rate_limit_engages(client, user):
    """After a burst of failed logins, even the right password is refused."""
    for _ in range(6):
        client.post(reverse("account_login"), {"login": user.email, "password": "x"})
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": PASSWORD}
    )
    assert response.status_code in (200, 429)
    assert client.get(reverse("mailbox:account_list")).status_code == 302
    assert "too many" in response.content.decode().lower()


def test_two_factor_totp_is_required_once_activated(client, user):
    """With TOTP on, a password alone does not sign in; the code does."""
    from allauth.mfa.totp.internal.auth import (
        TOTP,
        format_hotp_value,
        generate_totp_secret,
        hotp_value,
    )

    secret = generate_totp_secret()
    TOTP.activate(user, secret)

    response = client.post(
        reverse("account_login"), {"login": user.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert reverse("mfa_authenticate") in response["Location"]
    assert client.get(reverse("mailbox:account_list")).status_code == 302

    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 302
    assert client.get(reverse("mailbox:account_list")).status_code == 200
