"""Choosing the language in a real browser with JavaScript turned off."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.browser.conftest import OUTPUT

pytestmark = pytest.mark.django_db(transaction=True)


def test_footer_switcher_works_without_javascript(browser, live_server):
    """An English browser presses "Français" in the footer: the page turns French."""
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    page = context.new_page()
    page.goto(live_server.url + reverse("account_login"))
    assert page.get_attribute("html", "lang") == "en"
    page.get_by_role("button", name="Français").click()
    page.wait_for_load_state()
    assert page.url == live_server.url + reverse("account_login")
    assert page.get_attribute("html", "lang") == "fr"
    assert page.get_by_role("link", name="S’inscrire").is_visible()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "sign-in-fr.png"), full_page=True)
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "en"
    context.close()


def test_preference_beats_a_french_browser(browser, live_server, user):
    """A French browser, English chosen in the settings: the pages are English."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(java_script_enabled=False, locale="fr-FR")
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    page.goto(live_server.url + reverse("accounts:preferences"))
    assert page.get_attribute("html", "lang") == "fr"
    page.get_by_label("Langue", exact=True).select_option("en")
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "en"
    assert page.get_by_text("Your preferences are saved.").is_visible()
    page.goto(live_server.url + reverse("mailbox:account_list"))
    assert page.get_by_role("heading", name="Mail accounts").is_visible()
    context.close()
