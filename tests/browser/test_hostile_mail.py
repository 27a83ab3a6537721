"""Hostile HTML mail opened in a real browser: no script runs, nothing leaves.

Every vector of the corpus is delivered to the test Dovecot, opened through the
message page in headless Chromium, and watched: a dialog, a console message from
a script, a change of the page or a request to any host but the webmail fails
the test.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils.http import urlencode

from mailbox.imap import pool
from tests.browser.conftest import OUTPUT
from tests.data.xss.vectors import VECTORS

pytestmark = pytest.mark.django_db(transaction=True)


def hostile(html: str, index: int) -> bytes:
    """An HTML-only message carrying ``html`` as 8-bit UTF-8, broken bytes included."""
    head = (
        "From: Mallory <mallory@evil.example>\r\n"
        "To: victim@example.test\r\n"
        f"Subject: Vector {index}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode() + html.encode("utf-8", "surrogatepass") + b"\r\n"


def message_url(page, live_server, account, uid: int, **extra: str) -> str:
    """The URL of message ``uid`` in INBOX, with the folder's validity read off
    the list page as a browser would."""
    listing = reverse("mailbox:message_list", args=[account.pk])
    page.goto(live_server.url + listing + "?" + urlencode({"folder": "INBOX"}))
    validity = re.search(r"(?:[?;])v=(\d+)", page.content()).group(1)
    view = reverse("mailbox:message_view", args=[account.pk])
    query = {"folder": "INBOX", "v": validity, "uid": uid, **extra}
    return live_server.url + view + "?" + urlencode(query)


def test_no_vector_runs_script_or_reaches_a_remote_host(
    signed_in_page, live_server, imap_account, dovecot, mail_user, trust_test_ca
):
    """Across the whole corpus: no dialog, no script, no request off the webmail."""
    page = signed_in_page
    local = urlsplit(live_server.url).netloc
    escaped: list[str] = []
    dialogs: list[str] = []

    def watch(route) -> None:
        if urlsplit(route.request.url).netloc not in (local, ""):
            escaped.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.context.route("**/*", watch)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    for index, vector in enumerate(VECTORS):
        dovecot.deliver(mail_user.username, hostile(vector.html, index))
    listing = reverse("mailbox:message_list", args=[imap_account.pk])
    page.goto(live_server.url + listing + "?" + urlencode({"folder": "INBOX"}))
    validity = re.search(r"(?:[?;])v=(\d+)", page.content()).group(1)
    view = reverse("mailbox:message_view", args=[imap_account.pk])

    OUTPUT.mkdir(parents=True, exist_ok=True)
    for uid, vector in enumerate(VECTORS, start=1):
        url = (
            live_server.url
            + view
            + "?"
            + urlencode({"folder": "INBOX", "v": validity, "uid": uid})
        )
        page.goto(url)
        page.wait_for_load_state("load")
        frame = page.frame_locator("iframe.message-body")
        frame.locator("body").wait_for(state="attached")
        # A script that ran inside the frame could only have left marks there.
        assert page.evaluate("() => window.xss === undefined"), vector.id
        assert "Vector" in page.title(), vector.id
        if uid == 1:
            page.screenshot(path=str(OUTPUT / "hostile-message.png"), full_page=True)
    assert dialogs == []
    assert escaped == []
    pool.close_all()


def test_allowed_remote_content_loads_only_through_the_proxy(
    signed_in_page, live_server, imap_account, dovecot, mail_user, trust_test_ca
):
    """With remote content allowed, images are asked of the webmail, not the sender."""
    page = signed_in_page
    local = urlsplit(live_server.url).netloc
    seen: list[str] = []

    def watch(route) -> None:
        seen.append(route.request.url)
        if urlsplit(route.request.url).netloc != local:
            route.abort()
        else:
            route.continue_()

    page.context.route("**/*", watch)
    dovecot.deliver(
        mail_user.username,
        hostile('<p>News</p><img src="https://tracker.example/pixel.gif">', 0),
    )
    page.goto(message_url(page, live_server, imap_account, 1, remote="1"))
    page.wait_for_load_state("networkidle")
    assert not [u for u in seen if "tracker.example" in urlsplit(u).netloc]
    assert [u for u in seen if reverse("mailbox:image_proxy") in u]
    pool.close_all()


def test_inline_images_show_inside_the_sandboxed_frame(
    signed_in_page, live_server, imap_account, dovecot, mail_user, trust_test_ca
):
    """cid: images load in the frame, although it sends no session cookie."""
    from tests.data.loader import load_eml

    page = signed_in_page
    dovecot.deliver(mail_user.username, load_eml("related_cid.eml"))
    page.goto(message_url(page, live_server, imap_account, 1))
    page.wait_for_load_state("networkidle")
    images = page.frame_locator("iframe.message-body").locator("img")
    assert images.count() >= 1
    loaded = images.first.evaluate("img => img.complete && img.naturalWidth > 0")
    assert loaded
    page.screenshot(path=str(OUTPUT / "inline-images.png"), full_page=True)
    pool.close_all()
