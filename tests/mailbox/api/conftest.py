"""An app's view of the API: a session token from allauth's headless login."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from mailbox.imap import pool
from tests.conftest import PASSWORD

LOGIN_URL = "/_allauth/app/v1/auth/login"


@pytest.fixture(autouse=True)
def _fresh(trust_test_ca) -> Iterator[None]:
    """No pooled logins, login rate limits or throttle counts from other tests."""
    cache.clear()
    yield
    pool.close_all()


class App:
    """A mobile app: JSON in and out, the session token on every call."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"X-Session-Token": self.token} if self.token else {}

    def get(self, url: str, **params: Any):
        return self.client.get(url, params, headers=self._headers())

    def _send(self, method: str, url: str, body: Any = None):
        call = getattr(self.client, method)
        if body is None:
            return call(url, headers=self._headers())
        return call(
            url,
            data=json.dumps(body),
            content_type="application/json",
            headers=self._headers(),
        )

    def post(self, url: str, body: Any = None):
        return self._send("post", url, body if body is not None else {})

    def patch(self, url: str, body: Any = None):
        return self._send("patch", url, body)

    def delete(self, url: str, body: Any = None):
        return self._send("delete", url, body)


def app_login(email: str, password: str = PASSWORD) -> tuple[App, Any]:
    """Log in as an app would; the App carries the token (also when a step is due)."""
    app = App()
    response = app.post(LOGIN_URL, {"email": email, "password": password})
    token = response.json().get("meta", {}).get("session_token")
    app.token = token
    return app, response


@pytest.fixture
def app(user: User) -> App:
    signed_in, response = app_login(user.email)
    assert response.status_code == 200, response.content
    return signed_in


@pytest.fixture
def other_app(other_user: User) -> App:
    signed_in, response = app_login(other_user.email)
    assert response.status_code == 200, response.content
    return signed_in


def error_of(response) -> dict[str, Any]:
    """The error object of an error response (the one shape of every error)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "detail"} <= set(body["error"]), body
    return body["error"]
