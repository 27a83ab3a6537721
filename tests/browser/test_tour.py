"""A tour of every main screen, screenshotted on a desktop and a phone, light and dark.

The screens run on a lived-in mailbox (tests.browser.conftest.tour): a real
Dovecot with an IMAP inbox of several senders, an HTML newsletter with a remote
image, attachments, unread and flagged mail and a French subject, plus a POP3
account imported into the store. Each picture lands in ``test-output/screenshots/``
as ``<screen>-<desktop|phone>-<light|dark>.png`` for a reviewer to look at; the
test itself checks what a reviewer would notice first.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser.conftest import OUTPUT, SCREENS, VARIANTS, visit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("screen", SCREENS, ids=[s.name for s in SCREENS])
def test_screen(browser, live_server, tour, screen):
    """In each variant: no failed request, no console error, the main heading
    shows, and a phone never scrolls sideways."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for variant in VARIANTS:
        with visit(browser, live_server, tour, screen, variant) as seen:
            page = seen.page
            page.screenshot(
                path=str(OUTPUT / f"{screen.name}-{variant}.png"), full_page=True
            )
            found = [f"{variant}: {p}" for p in seen.problems]
            heading = page.get_by_role("heading", level=1)
            if heading.count() != 1:
                found.append(f"{variant}: {heading.count()} main headings, not 1")
            elif not heading.is_visible():
                found.append(f"{variant}: the main heading is hidden")
            if variant.startswith("phone"):
                widths = page.evaluate(
                    "() => [document.documentElement.scrollWidth, innerWidth]"
                )
                if widths[0] > widths[1]:
                    found.append(
                        f"{variant}: scrolls sideways ({widths[0]}px on {widths[1]}px)"
                    )
            problems += found
    assert problems == [], "\n".join(problems)


def test_import_job_leads_to_the_imported_mail(browser, live_server, tour):
    """From the finished import, one click shows the messages it brought in."""
    screen = next(s for s in SCREENS if s.name == "import-job")
    with visit(browser, live_server, tour, screen, "phone-light") as seen:
        page = seen.page
        with page.expect_navigation():
            page.get_by_role("link", name="Read the imported mail").click()
        assert page.get_by_text("Recette du gâteau").first.is_visible()
        assert page.get_by_text("Votre demande d’acte").first.is_visible()
        assert seen.problems == []


def test_import_job_into_an_imap_folder_links_there(browser, live_server, tour):
    """Mail imported into a folder of an IMAP account is read there."""
    tour.pop.import_imap_account = tour.imap
    tour.pop.import_folder = "Travel"
    tour.pop.save()
    screen = next(s for s in SCREENS if s.name == "import-job")
    with visit(browser, live_server, tour, screen, "desktop-light") as seen:
        page = seen.page
        with page.expect_navigation():
            page.get_by_role("link", name="Read the imported mail").click()
        assert page.url.endswith(
            reverse("mailbox:message_list", args=[tour.imap.pk]) + "?folder=Travel"
        )
        assert page.get_by_text("Your tickets: Lyon → Marseille").first.is_visible()
        assert seen.problems == []


def test_the_newsletter_opens_with_its_remote_image_blocked(browser, live_server, tour):
    """The HTML newsletter shows, its remote banner is not fetched, and the
    page says so with a way to show it."""
    screen = next(s for s in SCREENS if s.name == "message-view")
    with visit(browser, live_server, tour, screen, "desktop-light") as seen:
        page = seen.page
        frame = page.frame_locator("iframe.message-body")
        assert frame.get_by_text("the first tulips are out").is_visible()
        assert page.get_by_text("Remote images are blocked").is_visible()
        assert page.get_by_role("link", name="Show remote content").is_visible()
        # Any request to images.newsletter.example would be listed here.
        assert seen.problems == []
