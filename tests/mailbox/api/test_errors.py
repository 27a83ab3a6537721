"""Every API error has one JSON shape; mail-server trouble is 503, never a 500."""

from __future__ import annotations

import socket

import pytest

from accounts.models import AccountKind, Security
from accounts.servers import ServerSettings
from accounts.services import AccountOptions, mail_account_create
from mailbox.imap import pool
from mailbox.imap.session import connect
from tests.data.loader import load_eml
from tests.mailbox.api.conftest import App, error_of

API = "/api/v1"


@pytest.mark.parametrize(
    "url",
    [
        f"{API}/me/",
        f"{API}/accounts/",
        f"{API}/quota/",
        f"{API}/accounts/1/messages/",
        f"{API}/jobs/1/",
    ],
)
@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_without_a_valid_token_is_401(user, url, token):
    """No token, or an unknown one: 401 not_authenticated, naming the header."""
    response = App(token).get(url)
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "X-Session-Token"


def test_logged_in_browser_session_works_and_needs_csrf(user_client, user):
    """The browsable API: a browser session reads, and writes only with CSRF."""
    from django.test import Client

    assert user_client.get(f"{API}/me/").json()["email"] == user.email
    page = user_client.get(f"{API}/accounts/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    response = strict.post(
        f"{API}/accounts/", data="{}", content_type="application/json"
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    assert "CSRF" in error_of(response)["detail"]


def test_unknown_ids_are_404(app):
    """Unknown accounts and jobs: 404 not_found."""
    for url in (
        f"{API}/accounts/999/",
        f"{API}/jobs/999/",
        f"{API}/accounts/9/folders/",
    ):
        response = app.get(url)
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"


def test_bad_input_is_400_with_fields(app, imap_account):
    """Invalid parameters and bodies: 400 invalid, with the fields named."""
    base = f"{API}/accounts/{imap_account.pk}"
    response = app.get(f"{base}/messages/", folder="IN\x00BOX", limit=0, sort="x")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"folder", "limit", "sort"}

    response = app.get(f"{base}/messages/", cursor="forged")
    assert error_of(response)["fields"] == {"cursor": ["This cursor is not valid."]}

    response = app.get(f"{base}/messages/5/")  # no validity
    assert response.status_code == 400
    assert "validity" in error_of(response)["fields"]

    response = app.post(
        f"{base}/messages/bulk/",
        {"folder": "INBOX", "validity": 1, "uids": list(range(1, 1002)), "action": "x"},
    )
    assert set(error_of(response)["fields"]) == {"uids", "action"}

    response = app.post(
        f"{base}/messages/bulk/",
        {"folder": "INBOX", "validity": 1, "uids": [1], "action": "move"},
    )
    assert error_of(response)["fields"] == {
        "to_folder": ["Choose the folder to move to."]
    }

    response = app.client.post(
        f"{API}/accounts/",
        data="{not json",
        content_type="application/json",
        headers={"X-Session-Token": app.token},
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"

    response = app.post(f"{API}/accounts/", [1, 2])
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


def test_wrong_method_is_405(app):
    """A method an endpoint does not have: 405 in the same shape."""
    response = app.delete(f"{API}/me/")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_stale_validity_is_409_and_a_gone_message_404(
    app, imap_account, dovecot, mail_user
):
    """A validity the folder no longer has: 409 folder_changed; a uid that is
    not there: 404 message_gone."""
    dovecot.deliver(mail_user.username, load_eml("plain_utf8.eml"))
    base = f"{API}/accounts/{imap_account.pk}/messages"
    page = app.get(f"{base}/").json()
    uid, validity = page["messages"][0]["uid"], page["validity"]

    response = app.get(f"{base}/{uid}/", folder="INBOX", validity=validity + 1)
    assert response.status_code == 409
    assert error_of(response)["code"] == "folder_changed"
    response = app.patch(
        f"{base}/{uid}/?folder=INBOX&validity={validity + 1}", {"seen": True}
    )
    assert response.status_code == 409

    response = app.get(f"{base}/{uid + 100}/", folder="INBOX", validity=validity)
    assert response.status_code == 404
    assert error_of(response)["code"] == "message_gone"


def test_a_cursor_from_before_the_folder_was_recreated_is_409(
    app, imap_account, dovecot, mail_user
):
    """Another client deletes and recreates the folder (new UIDVALIDITY): the
    old cursor answers 409, never a page of other messages."""
    dovecot.generate(mail_user.username, 30, folder="Work")
    base = f"{API}/accounts/{imap_account.pk}/messages/"
    page = app.get(base, folder="Work", limit=10).json()
    assert page["next_cursor"]
    pool.close_all()  # our pooled login must not hold the folder selected

    other = connect(
        ServerSettings(
            dovecot.host, dovecot.imap_port, Security.NONE, mail_user.username
        ),
        mail_user.password,
        timeout=5,
    )
    other.delete_folder("Work")
    other.create_folder("Work")
    other.logout()
    dovecot.generate(mail_user.username, 30, folder="Work")

    response = app.get(base, cursor=page["next_cursor"])
    assert response.status_code == 409
    assert error_of(response)["code"] == "folder_changed"
    fresh = app.get(base, folder="Work", limit=10).json()
    assert fresh["validity"] != page["validity"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_is_503_with_retry_after(app, user):
    """The mail server refuses connections: 503 server_unavailable, Retry-After."""
    account = mail_account_create(
        user=user,
        kind=AccountKind.IMAP,
        options=AccountOptions(label="Down", email="down@example.test"),
        server=ServerSettings("127.0.0.1", closed_port(), Security.SSL, "down"),
        password="x",
    )
    base = f"{API}/accounts/{account.pk}"
    for url in (f"{base}/folders/", f"{base}/messages/", f"{base}/quota/"):
        response = app.get(url)
        assert response.status_code == 503, (url, response.content)
        error = error_of(response)
        assert error["code"] == "server_unavailable"
        assert "refused the connection" in error["detail"]
        assert int(response["Retry-After"]) > 0


def test_stopped_dovecot_is_503(app, imap_account, dovecot):
    """Dovecot stopped in the middle of a session: 503, and fine once it is back."""
    base = f"{API}/accounts/{imap_account.pk}"
    assert app.get(f"{base}/folders/").status_code == 200
    dovecot.stop()
    try:
        response = app.get(f"{base}/messages/")
        assert response.status_code == 503
        assert error_of(response)["code"] == "server_unavailable"
    finally:
        dovecot.start()
    assert app.get(f"{base}/folders/").status_code == 200


def test_throttled_per_user_is_429(settings, app, other_app):
    """Past the per-user rate: 429 throttled with Retry-After; others unaffected."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "3/min"},
    }
    for _ in range(3):
        assert app.get(f"{API}/me/").status_code == 200
    response = app.get(f"{API}/me/")
    assert response.status_code == 429
    assert error_of(response)["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60
    assert other_app.get(f"{API}/me/").status_code == 200


def test_a_password_the_server_no_longer_takes_is_503_without_retry(
    app, user, dovecot, mail_user
):
    """The stored password is refused: 503 server_login_refused, no Retry-After
    (waiting will not help; the account needs its password changed)."""
    account = mail_account_create(
        user=user,
        kind=AccountKind.IMAP,
        options=AccountOptions(label="Old", email=mail_user.email),
        server=ServerSettings(
            dovecot.host, dovecot.imap_port, Security.STARTTLS, mail_user.username
        ),
        password="changed since",
    )
    response = app.get(f"{API}/accounts/{account.pk}/folders/")
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "server_login_refused"
    assert "user name or password" in error["detail"]
    assert "Retry-After" not in response
