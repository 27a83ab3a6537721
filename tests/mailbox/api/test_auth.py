"""Apps sign in through allauth's headless app API and use its session token."""

from __future__ import annotations

import time

from accounts.models import User
from tests.conftest import PASSWORD
from tests.mailbox.api.conftest import App, app_login

AUTH = "/_allauth/app/v1/auth"


def totp_code(secret: str) -> str:
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_login_gives_a_token_that_opens_the_api(user):
    """E-mail and password give a session token; X-Session-Token opens /api/v1/."""
    app, response = app_login(user.email)
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["is_authenticated"] is True
    assert body["data"]["user"]["email"] == user.email
    assert app.get("/api/v1/me/").json()["email"] == user.email


def test_wrong_password_gives_no_token(user):
    """A wrong password: 400 from allauth, and no access."""
    app, response = app_login(user.email, "wrong password")
    assert response.status_code == 400
    assert app.token is None
    assert app.get("/api/v1/me/").status_code == 401


def test_totp_step_is_required_when_two_factor_is_on(user):
    """With TOTP on, the password alone leaves the token unauthenticated; the
    code completes the login."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)

    app, response = app_login(user.email)
    assert response.status_code == 401
    flows = {f["id"]: f for f in response.json()["data"]["flows"]}
    assert flows["mfa_authenticate"]["is_pending"] is True
    assert app.token
    assert app.get("/api/v1/me/").status_code == 401

    response = app.post(f"{AUTH}/2fa/authenticate", {"code": "000000"})
    assert response.status_code == 400
    assert app.get("/api/v1/me/").status_code == 401

    response = app.post(f"{AUTH}/2fa/authenticate", {"code": totp_code(secret)})
    assert response.status_code == 200, response.content
    # allauth hands out a new token once the login completes.
    app.token = response.json()["meta"]["session_token"]
    assert app.get("/api/v1/me/").json()["email"] == user.email


def test_logout_ends_the_token(user):
    """After logout the token opens nothing."""
    app, _ = app_login(user.email)
    assert app.get("/api/v1/me/").status_code == 200
    response = app.delete(f"{AUTH}/session")
    assert response.status_code == 401  # allauth: "no longer authenticated"
    assert app.get("/api/v1/me/").status_code == 401


def test_sessions_are_listed_and_one_can_end_another(user):
    """The session list shows each app login; ending one ends its token."""
    phone, _ = app_login(user.email)
    tablet, _ = app_login(user.email)
    sessions = phone.get(f"{AUTH}/sessions").json()["data"]
    assert len(sessions) == 2
    other = next(s for s in sessions if not s["is_current"])
    response = phone.delete(f"{AUTH}/sessions", {"sessions": [other["id"]]})
    assert response.status_code == 200, response.content
    assert phone.get("/api/v1/me/").status_code == 200
    assert tablet.get("/api/v1/me/").status_code == 401


def test_signup_when_open_and_refused_when_closed(settings, db):
    """Sign-up through the app API follows WEBMAIL_SIGNUP_OPEN."""
    app = App()
    response = app.post(
        f"{AUTH}/signup", {"email": "new@example.org", "password": PASSWORD}
    )
    assert response.status_code == 200, response.content
    assert User.objects.filter(email="new@example.org").exists()

    settings.WEBMAIL_SIGNUP_OPEN = False
    response = App().post(
        f"{AUTH}/signup", {"email": "late@example.org", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert not User.objects.filter(email="late@example.org").exists()
