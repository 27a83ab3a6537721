"""Reading IMAP mail in the browser, through the URLs, against the real Dovecot."""

from __future__ import annotations

import email.policy
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.http import urlencode

from mailbox.imap import pool
from tests.conftest import login
from tests.data.loader import load_eml

# A 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture(autouse=True)
def _fresh_pool(trust_test_ca):
    """Each test starts without pooled logins (its account is new anyway)."""
    yield
    pool.close_all()


def make(
    subject: str,
    *,
    sender: str = "Ann <ann@example.net>",
    body: str = "Hi",
    html: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "me@example.test"
    message["Subject"] = subject
    message["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message.as_bytes(policy=email.policy.SMTP)


def list_url(account, folder="INBOX", **params) -> str:
    query = urlencode({"folder": folder, **params})
    return reverse("mailbox:message_list", args=[account.pk]) + "?" + query


def first_message_link(page: str) -> str:
    match = re.search(r'href="(/mail/\d+/message/\?[^"]+)"', page)
    assert match, "no message link in the list"
    return match.group(1).replace("&amp;", "&")


def message_ref(link: str) -> dict[str, str]:
    return dict(re.findall(r"(folder|v|uid)=([^&]+)", link))


def test_list_shows_headers_newest_first_with_unread_bold(
    user_client, imap_account, dovecot, mail_user
):
    """The inbox lists subjects, newest first; unread rows are marked."""
    dovecot.deliver(
        mail_user.username,
        make("Older one"),
        flags="S",
        internaldate=datetime(2026, 1, 1, tzinfo=UTC),
    )
    dovecot.deliver(
        mail_user.username,
        make("Newer one"),
        internaldate=datetime(2026, 1, 2, tzinfo=UTC),
    )
    page = user_client.get(list_url(imap_account)).content.decode()
    assert page.index("Newer one") < page.index("Older one")
    row = page[page.rindex("<tr", 0, page.index("Newer one")) : page.index("Newer one")]
    assert "unread" in row
    assert "2 messages" in page


def test_home_goes_to_the_first_inbox(user_client, imap_account):
    """The start page opens the first account's inbox."""
    response = user_client.get(reverse("mailbox:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(
        reverse("mailbox:message_list", args=[imap_account.pk])
    )


def test_pages_of_fifty(user_client, imap_account, dovecot, mail_user):
    """A long folder is shown 50 messages a page."""
    dovecot.generate(mail_user.username, 60)
    first = user_client.get(list_url(imap_account)).content.decode()
    second = user_client.get(list_url(imap_account, page=2)).content.decode()
    assert first.count('name="uids"') == 50
    assert second.count('name="uids"') == 10
    assert "Page 2 of 2" in second


def test_search_by_subject(user_client, imap_account, dovecot, mail_user):
    """Search finds by subject, with non-ASCII text."""
    dovecot.deliver(mail_user.username, make("Réunion de lundi"), make("Other"))
    page = user_client.get(
        list_url(imap_account, q="Réunion", field="subject")
    ).content.decode()
    assert "Réunion de lundi" in page
    assert "Other" not in page


def test_open_marks_read_and_shows_text(user_client, imap_account, dovecot, mail_user):
    """Opening a message shows it and marks it read."""
    dovecot.deliver(
        mail_user.username, make("Hello there", body="Line one\nhttps://example.org/x")
    )
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    page = user_client.get(link).content.decode()
    assert "Hello there" in page
    assert "Line one" in page
    assert 'href="https://example.org/x"' in page
    listing = user_client.get(list_url(imap_account)).content.decode()
    assert 'class="unread"' not in listing


def test_open_without_marking_when_the_user_says_so(
    user, user_client, imap_account, dovecot, mail_user
):
    """With the preference off, opening leaves the message unread."""
    user.mark_read_on_open = False
    user.save()
    dovecot.deliver(mail_user.username, make("Keep unread"))
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    user_client.get(link)
    assert 'class="unread"' in user_client.get(list_url(imap_account)).content.decode()


def test_html_mail_goes_into_a_sandboxed_frame_with_its_own_policy(
    user_client, imap_account, dovecot, mail_user
):
    """HTML bodies are sanitized, framed without scripts, with a strict CSP."""
    html = '<p>Hello <b>bold</b></p><script>alert(1)</script><img src="https://tracker.example/p.gif">'
    dovecot.deliver(mail_user.username, make("Newsletter", html=html))
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    page = user_client.get(link).content.decode()
    frame = re.search(r"<iframe[^>]*>", page, re.S).group(0)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    assert "allow-scripts" not in frame
    assert "allow-same-origin" not in frame
    assert "Remote images are blocked" in page
    body_url = re.search(r'src="([^"]+)"', frame).group(1).replace("&amp;", "&")
    body = user_client.get(body_url)
    text = body.content.decode()
    assert "<b>bold</b>" in text
    assert "<script" not in text
    assert "tracker.example" not in text
    policy = body["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert body["X-Frame-Options"] == "SAMEORIGIN"


def test_remote_content_on_request_goes_through_the_proxy(
    user_client, imap_account, dovecot, mail_user
):
    """Allowed remote images are rewritten to our signed proxy, never loaded direct."""
    html = '<img src="https://tracker.example/p.gif">'
    dovecot.deliver(mail_user.username, make("Pics", html=html))
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    ref = message_ref(link)
    body_url = reverse("mailbox:message_body", args=[imap_account.pk])
    text = user_client.get(body_url, {**ref, "remote": "1"}).content.decode()
    assert reverse("mailbox:image_proxy") in text
    assert "https://tracker.example" not in text


def test_trusted_sender_shows_remote_content(
    user_client, imap_account, dovecot, mail_user
):
    """“Always for this sender” shows remote content of that sender from then on."""
    dovecot.deliver(
        mail_user.username, make("Pics", html='<img src="https://t.example/a.png">')
    )
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    user_client.post(
        reverse("mailbox:trust_sender", args=[imap_account.pk]),
        {"email": "ann@example.net"},
    )
    page = user_client.get(link).content.decode()
    assert "Remote images are blocked" not in page
    assert "remote=1" in page


def test_inline_cid_image_loads_through_a_signed_link(
    user_client, imap_account, dovecot, mail_user
):
    """cid: images become signed links that work without the session cookie."""
    dovecot.deliver(mail_user.username, load_eml("related_cid.eml"))
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    ref = message_ref(link)
    body = user_client.get(reverse("mailbox:message_body", args=[imap_account.pk]), ref)
    image_urls = re.findall(r'src="(/mail/inline/\?t=[^"]+)"', body.content.decode())
    assert image_urls
    anonymous = Client()
    image = anonymous.get(image_urls[0].replace("&amp;", "&"))
    assert image.status_code == 200
    assert image["Content-Type"].startswith("image/")
    assert image["X-Content-Type-Options"] == "nosniff"
    tampered = anonymous.get(image_urls[0].replace("&amp;", "&")[:-3] + "xyz")
    assert tampered.status_code == 404


def test_attachment_download_is_streamed_with_a_safe_name(
    user_client, imap_account, dovecot, mail_user
):
    """Attachments download with an RFC 6266 name and nosniff."""
    raw = load_eml("attachments.eml")
    dovecot.deliver(mail_user.username, raw)
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    page = user_client.get(link).content.decode()
    assert "naïve résumé.pdf" in page
    part_link = (
        re.search(r'href="([^"]+part=[^"]+)"', page).group(1).replace("&amp;", "&")
    )
    response = user_client.get(part_link)
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" + quote("naïve résumé.pdf", safe="") in disposition
    assert response["X-Content-Type-Options"] == "nosniff"
    data = b"".join(response.streaming_content)
    assert data.startswith(b"%PDF")


def test_show_original(user_client, imap_account, dovecot, mail_user):
    """“Show original” returns the raw source as plain text."""
    raw = make("Source please")
    dovecot.deliver(mail_user.username, raw)
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    ref = message_ref(link)
    response = user_client.get(
        reverse("mailbox:message_raw", args=[imap_account.pk]), ref
    )
    assert response["Content-Type"].startswith("text/plain")
    assert b"".join(response.streaming_content).replace(b"\r\n", b"\n") == raw.replace(
        b"\r\n", b"\n"
    )


def bulk(client, account, ref, action, **extra):
    data = {
        "folder": ref["folder"],
        "validity": ref["v"],
        "uids": [ref["uid"]],
        "action": action,
        **extra,
    }
    return client.post(reverse("mailbox:bulk_action", args=[account.pk]), data)


def test_bulk_actions_flag_move_and_delete(
    user_client, imap_account, dovecot, mail_user
):
    """Flag, move to a folder, then delete to Trash."""
    dovecot.deliver(mail_user.username, make("Move me"))
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    ref = message_ref(link)
    assert bulk(user_client, imap_account, ref, "flag").status_code == 302
    assert "★" in user_client.get(list_url(imap_account)).content.decode()
    bulk(user_client, imap_account, ref, "move", to_folder="Archive")
    assert dovecot.count(mail_user.username, "INBOX") == 0
    assert dovecot.count(mail_user.username, "Archive") == 1
    archived = user_client.get(list_url(imap_account, "Archive")).content.decode()
    ref = message_ref(first_message_link(archived))
    bulk(user_client, imap_account, ref, "delete")
    assert dovecot.count(mail_user.username, "Archive") == 0
    assert dovecot.count(mail_user.username, "Trash") == 1


def test_stale_validity_reloads_instead_of_acting(
    user_client, imap_account, dovecot, mail_user
):
    """An action with an old UIDVALIDITY changes nothing and reloads the list."""
    dovecot.deliver(mail_user.username, make("Careful"))
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    ref = message_ref(link)
    ref["v"] = str(int(ref["v"]) + 1)
    response = bulk(user_client, imap_account, ref, "delete")
    assert response.status_code == 302
    assert dovecot.count(mail_user.username, "INBOX") == 1
    stale = user_client.get(
        link.replace(f"v={message_ref(link)['v']}", f"v={ref['v']}")
    )
    assert stale.status_code == 302


def test_message_gone(user_client, imap_account, dovecot, mail_user):
    """A uid that is not there answers a clear 404 page."""
    dovecot.deliver(mail_user.username, make("Here"))
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    ref = message_ref(link)
    gone = user_client.get(
        reverse("mailbox:message_view", args=[imap_account.pk]), {**ref, "uid": 999}
    )
    assert gone.status_code == 404
    assert "no longer there" in gone.content.decode()


def test_unreachable_server_shows_which_account_and_why(
    user_client, imap_account, settings
):
    """A server that cannot be reached gives a page naming the account, not a 500."""
    from tests.servers.ports import free_port

    imap_account.port = free_port()
    imap_account.save()
    response = user_client.get(list_url(imap_account))
    assert response.status_code == 503
    page = response.content.decode()
    assert imap_account.label in page
    assert "refused the connection" in page
    assert "Traceback" not in page


def test_folders_are_listed_and_managed(user_client, imap_account, dovecot, mail_user):
    """Special folders come first; folders can be created, renamed and deleted."""
    url = reverse("mailbox:folder_manage", args=[imap_account.pk])
    page = user_client.get(url).content.decode()
    assert page.index("Inbox") < page.index("Trash")
    user_client.post(url, {"action": "create", "name": "Projets été"})
    assert "Projets été" in user_client.get(url).content.decode()
    user_client.post(url, {"action": "rename", "folder": "Projets été", "name": "Fait"})
    page = user_client.get(url).content.decode()
    assert "Fait" in page
    assert "Projets été" not in page
    user_client.post(url, {"action": "delete", "folder": "Fait"})
    assert "Fait" not in user_client.get(url).content.decode()
    refused = user_client.post(
        url, {"action": "delete", "folder": "INBOX"}, follow=True
    )
    assert refused.status_code == 200
    assert dovecot.count(mail_user.username, "INBOX") == 0


MAIL_URLS = [
    ("mailbox:message_list", "get", {}),
    ("mailbox:message_view", "get", {"folder": "INBOX", "v": 1, "uid": 1}),
    ("mailbox:message_body", "get", {"folder": "INBOX", "v": 1, "uid": 1}),
    ("mailbox:message_raw", "get", {"folder": "INBOX", "v": 1, "uid": 1}),
    ("mailbox:attachment", "get", {"folder": "INBOX", "v": 1, "uid": 1, "part": "2"}),
    ("mailbox:folder_manage", "get", {}),
    (
        "mailbox:bulk_action",
        "post",
        {"folder": "INBOX", "validity": 1, "uids": [1], "action": "delete"},
    ),
    ("mailbox:trust_sender", "post", {"email": "x@example.org"}),
]


@pytest.mark.parametrize(("name", "method", "data"), MAIL_URLS)
def test_another_users_account_answers_404(
    other_user, imap_account, name, method, data
):
    """Every mail page of another user's account answers 404."""
    response = getattr(login(other_user), method)(
        reverse(name, args=[imap_account.pk]), data
    )
    assert response.status_code == 404


class _Images(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        kind, data = {
            "/a.png": ("image/png", PNG),
            "/x.svg": ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        }.get(self.path, ("text/plain", b"nope"))
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[str]:
    """A real HTTP server on loopback that serves a PNG and an SVG."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_image_proxy_serves_raster_images_only(image_server, settings):
    """The proxy fetches PNGs for signed URLs; SVG, forgeries, private hosts fail."""
    from mailbox.imageproxy import proxy_url

    client = Client()
    ok = client.get(proxy_url(image_server + "/a.png"))
    assert ok.status_code == 200
    assert ok.content == PNG
    assert ok["Content-Type"] == "image/png"
    assert client.get(proxy_url(image_server + "/x.svg")).status_code == 404
    forged = reverse("mailbox:image_proxy") + "?u=" + quote(image_server + "/a.png")
    assert client.get(forged).status_code == 404
    settings.WEBMAIL_ALLOW_PRIVATE_HOSTS = False
    assert client.get(proxy_url(image_server + "/a.png")).status_code == 404


def test_forwarded_message_is_shown_as_an_attached_message(
    user_client, imap_account, dovecot, mail_user
):
    """A message/rfc822 part shows its subject, sender and text below the body."""
    dovecot.deliver(mail_user.username, load_eml("forwarded.eml"))
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    page = user_client.get(link).content.decode()
    assert "Attached message" in page
    assert 'class="attached-message"' in page


def test_damaged_message_still_renders_with_a_note(
    user_client, imap_account, dovecot, mail_user
):
    """Malformed MIME renders what it can, with a note, never a 500."""
    for name in (
        "missing_boundary.eml",
        "broken_base64.eml",
        "unknown_charset.eml",
        "raw_latin1_headers.eml",
        "deep_nesting.eml",
        "nul_bytes.eml",
        "bad_date.eml",
        "no_body.eml",
    ):
        dovecot.deliver(mail_user.username, load_eml(name))
    listing = user_client.get(list_url(imap_account)).content.decode()
    links = re.findall(r'href="(/mail/\d+/message/\?[^"]+)"', listing)
    assert len(links) == 8
    notes = 0
    for link in links:
        response = user_client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200
        notes += "This message is damaged" in response.content.decode()
    assert notes >= 4


def test_original_downloads_as_eml(user_client, imap_account, dovecot, mail_user):
    """The original can be downloaded as a .eml file."""
    dovecot.deliver(mail_user.username, make("Keep a copy"))
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    page = user_client.get(link).content.decode()
    assert "download=1" in page
    ref = message_ref(link)
    response = user_client.get(
        reverse("mailbox:message_raw", args=[imap_account.pk]), {**ref, "download": 1}
    )
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"].startswith("attachment;")
    assert b"Keep a copy" in b"".join(response.streaming_content)


def test_body_frame_reuses_the_page_work(user_client, imap_account, dovecot, mail_user):
    """The frame's body comes from what the message page just sanitized: it is
    served even if the mail server went away in between."""
    from tests.servers.ports import free_port

    dovecot.deliver(mail_user.username, make("Framed", html="<p>Kept <b>body</b></p>"))
    link = first_message_link(user_client.get(list_url(imap_account)).content.decode())
    page = user_client.get(link).content.decode()
    frame = re.search(r"<iframe[^>]*>", page, re.S).group(0)
    body_url = re.search(r'src="([^"]+)"', frame).group(1).replace("&amp;", "&")
    pool.close_all()
    imap_account.port = free_port()
    imap_account.save()
    body = user_client.get(body_url)
    assert body.status_code == 200
    assert "<b>body</b>" in body.content.decode()
