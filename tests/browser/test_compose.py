"""The compose page in a real browser: autosave and address completion by script."""

from __future__ import annotations

import re

from django.urls import reverse

from mailbox.compose import services
from mailbox.compose.build import Mailbox
from mailbox.compose.models import OutgoingMessage
from mailbox.views import compose as compose_views
from tests.browser.conftest import OUTPUT
from tests.mailbox.compose.helpers import folder_messages, parse


def test_autosave_keeps_the_draft_and_completes_addresses(
    signed_in_page, live_server, imap_account, trust_test_ca, monkeypatch
):
    """Typing is saved to Drafts by the script; known addresses are suggested."""
    monkeypatch.setattr(compose_views, "AUTOSAVE_SECONDS", 1)
    services.correspondents_record(
        user=imap_account.user, mailboxes=[Mailbox("Carol Jones", "carol@example.net")]
    )
    page = signed_in_page
    failed: list[str] = []
    page.on(
        "response",
        lambda r: (
            failed.append(r.url)
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.goto(live_server.url + reverse("mailbox:compose_new", args=[imap_account.pk]))
    page.fill("#id_to", "car")
    page.wait_for_function(
        "document.querySelectorAll('#correspondents option').length > 0"
    )
    assert (
        page.eval_on_selector("#correspondents option", "o => o.value")
        == "Carol Jones <carol@example.net>"
    )

    page.fill("#id_to", "Carol Jones <carol@example.net>")
    page.fill("#id_subject", "Typed in the browser ✓")
    page.fill("#id_body", "autosaved text")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "compose.png"), full_page=True)
    page.wait_for_url(re.compile(r"/compose/\d+/$"), timeout=15_000)
    message = OutgoingMessage.objects.get()
    assert page.url.endswith(reverse("mailbox:compose_edit", args=[message.pk]))
    assert message.subject == "Typed in the browser ✓"
    assert message.body == "autosaved text"
    [(_uid, data)] = folder_messages(imap_account, "Drafts")
    assert parse(data)["Subject"] == "Typed in the browser ✓"

    # More typing: the same draft is saved again, not a second one.
    page.fill("#id_body", "autosaved text, more")
    page.wait_for_function(
        "document.getElementById('autosave-status').textContent !== ''"
    )
    for _ in range(50):
        message.refresh_from_db()
        if message.body.endswith("more"):
            break
        page.wait_for_timeout(200)
    assert message.body == "autosaved text, more"
    assert OutgoingMessage.objects.count() == 1
    assert failed == []
