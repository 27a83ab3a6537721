"""The setup assistant through the API."""

from __future__ import annotations

from tests.mailbox.api.conftest import App, error_of

URL = "/api/v1/autoconfig/"


def test_known_provider(app):
    """An app gets the same suggestion as the browser's add-account page."""
    response = app.get(URL, email="jeanne@free.fr")
    assert response.status_code == 200
    body = response.json()
    assert body["found"] is True
    assert body["source"] == "builtin"
    assert body["imap"] == {
        "host": "imap.free.fr",
        "port": 993,
        "security": "ssl",
        "username": "jeanne",
    }
    assert body["pop3"]["host"] == "pop.free.fr"


def test_oauth_provider_is_said(app):
    body = app.get(URL, email="someone@gmail.com").json()
    assert body["oauth"] == "google"
    assert "app password" in body["note"]


def test_nothing_found(app):
    body = app.get(URL, email="x@unknown.example").json()
    assert body["found"] is False
    assert body["imap"] is None


def test_bad_address_and_no_token(app):
    response = app.get(URL, email="nope")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"
    assert App().get(URL, email="a@free.fr").status_code == 401
