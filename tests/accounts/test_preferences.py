"""The settings page: language, time zone, reading; the footer's language switcher."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.conftest import login

PREFERENCES = "/settings/"


def preferences_data(**changes: str) -> dict[str, str]:
    data = {"language": "", "time_zone": "", "mark_read_on_open": "on"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_preferences_need_sign_in(client, db):
    """Signed out, the settings page sends to the sign-in page."""
    response = client.get(reverse("accounts:preferences"))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_saved_language_overrides_the_browser(user_client, user):
    """With French chosen, pages are French even for an English browser."""
    response = user_client.post(
        reverse("accounts:preferences"),
        preferences_data(language="fr"),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.language == "fr"
    page = user_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    assert page["Content-Language"] == "fr"
    assert "Vos préférences sont enregistrées." in text
    assert "Préférences" in text


def test_english_choice_overrides_a_french_browser(user_client, user):
    """With English chosen, a French browser still gets English."""
    user.language = "en"
    user.save()
    page = user_client.get(reverse("mailbox:account_list"), HTTP_ACCEPT_LANGUAGE="fr")
    assert page["Content-Language"] == "en"
    assert "Mail accounts" in page.content.decode()


def test_no_choice_follows_the_browser(user_client, user):
    """An empty preference leaves the choice to the browser."""
    assert user.language == ""
    french = user_client.get(reverse("mailbox:account_list"), HTTP_ACCEPT_LANGUAGE="fr")
    assert "Comptes de messagerie" in french.content.decode()
    english = user_client.get(
        reverse("mailbox:account_list"), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "Mail accounts" in english.content.decode()


def test_saving_a_language_keeps_it_after_sign_out(user_client, user):
    """The choice goes into the language cookie; "the browser's" removes it."""
    cookie = settings.LANGUAGE_COOKIE_NAME
    response = user_client.post(
        reverse("accounts:preferences"), preferences_data(language="fr")
    )
    assert response.cookies[cookie].value == "fr"
    user_client.post(reverse("account_logout"))
    page = user_client.get(reverse("account_login"), HTTP_ACCEPT_LANGUAGE="en")
    assert page["Content-Language"] == "fr"

    user_client.force_login(user)
    response = user_client.post(
        reverse("accounts:preferences"), preferences_data(language="")
    )
    assert response.cookies[cookie].value == ""  # deleted
    user.refresh_from_db()
    assert user.language == ""


def test_unknown_language_is_refused(user_client, user):
    """A code outside LANGUAGES is a form error, and nothing is saved."""
    response = user_client.post(
        reverse("accounts:preferences"), preferences_data(language="de")
    )
    assert response.status_code == 200
    assert response.context["form"].errors["language"]
    user.refresh_from_db()
    assert user.language == ""


def test_preferences_page_lists_the_languages(user_client):
    """The language menu offers "the browser's" and each language, named in itself."""
    page = user_client.get(reverse("accounts:preferences")).content.decode()
    assert '<select name="language"' in page
    assert '<option value="" selected>The browser&#x27;s language</option>' in page
    assert '<option value="fr">Français</option>' in page


def test_time_zone_and_reading_preferences_are_saved(user_client, user):
    """The other preferences of the page are saved with the language."""
    user_client.post(
        reverse("accounts:preferences"),
        preferences_data(time_zone="Europe/Paris", mark_read_on_open=None),
    )
    user.refresh_from_db()
    assert user.time_zone == "Europe/Paris"
    assert user.mark_read_on_open is False


# --- the footer's switcher, as a browser without JavaScript submits it --------------


class _Forms(HTMLParser):
    """The footer's language form: its action and fields, and its buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, str] = {}
        self._inside = False
        self._button: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and "language-switcher" in a.get("class", ""):
            self._inside = True
            self.action = a["action"]
            assert a["method"] == "post"
        elif self._inside and tag == "input":
            self.fields[a["name"]] = a.get("value", "")
        elif self._inside and tag == "button" and a.get("name") == "language":
            assert a.get("type", "submit") == "submit"
            self._button = a["value"]

    def handle_data(self, data: str) -> None:
        if self._button and data.strip():
            self.buttons[data.strip()] = self._button
            self._button = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def switch(client: Client, page_url: str, label: str, **headers: str):
    """Load ``page_url`` and press the footer button named ``label``."""
    page = client.get(page_url, **headers)
    forms = _Forms()
    forms.feed(page.content.decode())
    assert label in forms.buttons, f"no {label!r} button in {forms.buttons}"
    data = {**forms.fields, "language": forms.buttons[label]}
    return client.post(forms.action, data, **headers)


@pytest.mark.django_db
def test_switcher_without_javascript_when_signed_out():
    """Pressing "Français" in the footer reloads the same page in French."""
    client = Client(enforce_csrf_checks=True)
    url = reverse("account_login")
    response = switch(client, url, "Français", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert response["Location"] == url
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="fr">' in page
    assert "Se connecter" in page
    # The current language is shown, not offered; the other one is.
    assert re.search(r'<strong lang="fr" aria-current="true">Français</strong>', page)
    response = switch(client, url, "English", HTTP_ACCEPT_LANGUAGE="en")
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert '<html lang="en">' in page


def test_switcher_when_signed_in_saves_the_preference(user):
    """Signed in, the switcher also saves the choice in the user's settings."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = reverse("mailbox:account_list")
    response = switch(client, url, "Français", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert response["Location"] == url
    user.refresh_from_db()
    assert user.language == "fr"
    # Another device (no cookie) gets French too.
    other = login(User.objects.get(pk=user.pk))
    page = other.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Comptes de messagerie" in page


def test_switcher_refuses_an_outside_redirect(client, db):
    """A ``next`` off this site is ignored: the switcher goes back home instead."""
    response = client.post(
        reverse("set_language"),
        {"language": "fr", "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_switcher_ignores_an_unknown_language(user_client, user):
    """An unknown code changes nothing, neither the preference nor the cookie."""
    response = user_client.post(
        reverse("accounts:language"), {"language": "xx", "next": "/settings/"}
    )
    assert response.status_code == 302
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    user.refresh_from_db()
    assert user.language == ""


def test_signed_in_switcher_needs_sign_in_and_post(client, user_client, db):
    """Signed out, the signed-in switcher sends to sign-in; a GET is refused."""
    response = client.post(reverse("accounts:language"), {"language": "fr"})
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]
    assert user_client.get(reverse("accounts:language")).status_code == 405
