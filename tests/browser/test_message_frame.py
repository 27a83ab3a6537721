"""The message frame on a phone: a newsletter's fixed-width table fits it."""

from __future__ import annotations

import pytest

from tests.browser.conftest import OUTPUT
from tests.browser.test_hostile_mail import message_url

pytestmark = pytest.mark.django_db(transaction=True)

NEWSLETTER = (
    b"From: Field Notes <hello@newsletter.example>\r\n"
    b"To: victim@example.test\r\n"
    b"Subject: Spring issue\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    b'<table width="600" style="width:600px" cellpadding="0"><tr><td>'
    b'<h1 style="font-size:40px">Spring issue: the garden wakes up</h1>'
    b"<p>Dear reader, the first tulips are out and so is the pruning of roses."
    b"</p></td></tr></table>\r\n"
)


def test_fixed_width_table_fits_a_phone(
    signed_in_page, live_server, imap_account, dovecot, mail_user, trust_test_ca
):
    dovecot.deliver(mail_user.username, NEWSLETTER)
    page = signed_in_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(message_url(page, live_server, imap_account, 1))
    page.wait_for_selector("iframe.message-body")
    frame = page.frame_locator("iframe.message-body")
    frame.locator("h1").wait_for()
    body = next(f for f in page.frames if "/message/body/" in f.url)
    widths = body.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "message-frame-phone.png"), full_page=True)
    assert widths[0] <= widths[1], f"the frame scrolls sideways: {widths}"
