"""The mail screens in a real browser: reading pane, keyboard, partial updates,
phone layout, new-mail checks, and the same pages with JavaScript off."""

from __future__ import annotations

import email.policy
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils.http import urlencode
from playwright.sync_api import expect

from mailbox.imap import pool
from tests.browser.conftest import OUTPUT
from tests.conftest import login, make_account

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def _fresh_pool(trust_test_ca):
    """Each test starts without pooled logins (its account is new anyway)."""
    yield
    pool.close_all()


@pytest.fixture
def open_page(browser, live_server, user) -> Iterator[Callable[..., object]]:
    """Pages of the signed-in user in new browser contexts (viewport, JS on/off…)."""
    contexts = []

    def new_page(**options: object) -> object:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        context = browser.new_context(**options)
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": cookie.value,
                    "url": live_server.url,
                }
            ]
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield new_page
    for context in contexts:
        context.close()


def list_url(live_server, account, **params: object) -> str:
    query = urlencode({"folder": "INBOX", **params})
    return (
        live_server.url
        + reverse("mailbox:message_list", args=[account.pk])
        + "?"
        + query
    )


def make(subject: str, body: str = "Hello") -> bytes:
    message = EmailMessage()
    message["From"] = "Ann Example <ann@example.net>"
    message["To"] = "me@example.test"
    message["Subject"] = subject
    message.set_content(body)
    return message.as_bytes(policy=email.policy.SMTP)


def shot(page, name: str, *, full_page: bool = True) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"mail-ui-{name}.png"), full_page=full_page)


def server_flags(dovecot, mail_user) -> dict[int, set[bytes]]:
    """Every message of the INBOX with its flags, read by another IMAP client."""
    other = dovecot.login(mail_user)
    try:
        other.select_folder("INBOX")
        uids = other.search(["ALL"])
        return {uid: set(flags) for uid, flags in other.get_flags(uids).items()}
    finally:
        other.logout()


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the server never showed the change")
        time.sleep(0.1)


def current_subject(page) -> str:
    return page.eval_on_selector(
        "#list-region tr[aria-selected=true] td.subject a", "a => a.textContent"
    )


def no_failed_requests(page) -> list[str]:
    failed: list[str] = []
    page.on(
        "response",
        lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.on("pageerror", lambda error: failed.append(f"script error: {error}"))
    return failed


def poll_every_second(page) -> None:
    """The list pages served to ``page`` check for new mail every second."""

    def rewrite(route) -> None:
        response = route.fetch()
        body = response.text().replace(
            'data-poll-seconds="60"', 'data-poll-seconds="1"'
        )
        route.fulfill(response=response, body=body)

    page.route(re.compile(r"/mail/\d+/\?"), rewrite)


def test_keyboard_reading_pane_and_partial_updates(
    open_page, live_server, imap_account, dovecot, mail_user
):
    """j/k move the current row; o opens in the pane; s, #, U, I act on the server
    without a page load; the pager swaps the list and Back restores it."""
    dovecot.generate(mail_user.username, 60)
    page = open_page(viewport=DESKTOP)
    failed = no_failed_requests(page)
    page.goto(list_url(live_server, imap_account))
    page.wait_for_selector("#reading-pane .pane-empty")
    page.evaluate("window.__marker = 'kept'")

    page.keyboard.press("j")
    page.keyboard.press("j")
    assert current_subject(page).startswith("Generated message 59 of 60")
    page.keyboard.press("k")
    assert current_subject(page).startswith("Generated message 60 of 60")
    assert (
        page.eval_on_selector_all("tr[aria-selected=true]", "rows => rows.length") == 1
    )

    page.keyboard.press("o")
    heading = page.wait_for_selector("#reading-pane .subject-heading")
    assert heading.text_content().startswith("Generated message 60 of 60")
    wait_for(lambda: b"\\Seen" in server_flags(dovecot, mail_user)[60])
    assert "unread" not in page.get_attribute("tr[aria-selected=true]", "class")
    shot(page, "desktop-pane")

    page.keyboard.press("s")
    wait_for(lambda: b"\\Flagged" in server_flags(dovecot, mail_user)[60])
    # The pane's own buttons work by fetch too.
    page.click("#reading-pane button[name=action][value=unflag]")
    wait_for(lambda: b"\\Flagged" not in server_flags(dovecot, mail_user)[60])
    page.wait_for_selector("#reading-pane button[name=action][value=flag]")
    page.keyboard.press("s")
    wait_for(lambda: b"\\Flagged" in server_flags(dovecot, mail_user)[60])
    page.wait_for_selector("#reading-pane button[name=action][value=unflag]")
    assert page.evaluate("window.__marker") == "kept"

    page.keyboard.press("j")  # the next one, fetched ahead, is shown at once
    heading = page.wait_for_selector(
        "#reading-pane .subject-heading:has-text('Generated message 59 of 60')"
    )
    wait_for(lambda: b"\\Seen" in server_flags(dovecot, mail_user)[59])

    page.keyboard.press("#")
    wait_for(lambda: 59 not in server_flags(dovecot, mail_user))
    page.wait_for_selector("text=Deleted 1 message.")
    assert (
        page.locator("td.subject", has_text="Generated message 59 of 60").count() == 0
    )
    page.wait_for_selector("#reading-pane .pane-empty")

    current = current_subject(page)
    uid = int(re.search(r"message (\d+) of", current).group(1))
    page.keyboard.press("Shift+I")
    wait_for(lambda: b"\\Seen" in server_flags(dovecot, mail_user)[uid])
    page.keyboard.press("Shift+U")
    wait_for(lambda: b"\\Seen" not in server_flags(dovecot, mail_user)[uid])
    page.wait_for_selector("tr[aria-selected=true].unread")

    # The selection form: two rows flagged at once, by fetch.
    boxes = page.locator("#list-region input[name=uids]")
    first_uid, second_uid = (int(boxes.nth(i).get_attribute("value")) for i in (2, 3))
    boxes.nth(2).check()
    boxes.nth(3).check()
    page.select_option("#bulk-action", "flag")
    page.click("#list-region form.bulk button[type=submit]")
    page.wait_for_selector("#list-region input[name=uids]:checked", state="detached")
    flags = server_flags(dovecot, mail_user)
    assert b"\\Flagged" in flags[first_uid]
    assert b"\\Flagged" in flags[second_uid]
    assert page.locator("#list-region .star.on").count() == 3
    assert page.evaluate("window.__marker") == "kept"

    page.click("nav.pager a[rel=next]")
    page.wait_for_selector("text=Page 2 of 2")
    assert "page=2" in page.url
    page.go_back()
    page.wait_for_selector("text=Page 1 of 2")
    assert "page=2" not in page.url
    assert page.evaluate("window.__marker") == "kept"

    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.press("j")  # typing in the search field is not a shortcut
    assert page.input_value("#q") == "j"
    page.fill("#q", "")
    page.evaluate("document.activeElement.blur()")

    page.keyboard.press("?")
    help_dialog = page.locator("#key-help")
    assert help_dialog.is_visible()
    assert "Keyboard shortcuts" in help_dialog.text_content()
    shot(page, "desktop-help", full_page=False)  # a modal covers the window only
    page.keyboard.press("Escape")
    assert not help_dialog.is_visible()
    page.click("[data-key-help]")  # the same help from a button
    assert help_dialog.is_visible()
    page.click("#key-help button[type=submit]")
    assert not help_dialog.is_visible()
    page.evaluate("document.activeElement.blur()")
    assert page.evaluate("window.__marker") == "kept"

    page.keyboard.press("o")
    page.wait_for_selector("#reading-pane .subject-heading")
    page.keyboard.press("u")
    page.wait_for_selector("#reading-pane .pane-empty")
    page.keyboard.press("Enter")
    page.wait_for_selector("#reading-pane .subject-heading")
    page.keyboard.press("r")
    page.wait_for_url(re.compile(r"/compose/"))
    assert page.input_value("#id_subject").startswith("Re: Generated message")
    assert failed == []


def test_message_page_keys_and_next_message_fetched_ahead(
    open_page, live_server, imap_account, dovecot, mail_user
):
    """On the message page j shows the next message in place, marks it read,
    u goes back to the list; medium widths keep two panes."""
    for i in range(1, 4):
        dovecot.deliver(
            mail_user.username,
            make(f"Note {i}"),
            internaldate=datetime(2026, 1, i, tzinfo=UTC),
        )
    page = open_page(viewport={"width": 1000, "height": 800})
    failed = no_failed_requests(page)
    page.goto(list_url(live_server, imap_account))
    assert page.locator("#reading-pane").count() == 0 or not page.is_visible(
        "#reading-pane"
    )
    with page.expect_response(lambda r: "peek=1" in r.url and "uid=2" in r.url):
        page.click("text=Note 3")
    page.wait_for_selector("h1#subject:has-text('Note 3')")
    page.evaluate("window.__marker = 'kept'")
    page.keyboard.press("j")
    page.wait_for_selector("h1#subject:has-text('Note 2')")
    assert page.evaluate("window.__marker") == "kept"
    assert "uid=2" in page.url
    assert re.fullmatch(r"(\(\d+\) )?Note 2 · .*", page.title())
    wait_for(lambda: b"\\Seen" in server_flags(dovecot, mail_user)[2])
    assert b"\\Seen" not in server_flags(dovecot, mail_user)[1]  # only fetched ahead
    page.keyboard.press("s")
    wait_for(lambda: b"\\Flagged" in server_flags(dovecot, mail_user)[2])
    page.wait_for_selector("button[name=action][value=unflag]")
    page.keyboard.press("u")
    page.wait_for_selector("#list-region")
    assert "/message/" not in page.url
    page.keyboard.press("c")
    page.wait_for_url(re.compile(r"/compose/"))
    assert failed == []


def test_phone_one_pane_at_a_time(
    open_page, live_server, imap_account, dovecot, mail_user
):
    """On a phone the folders hide behind a link; list → message → back."""
    for i in range(1, 4):
        dovecot.deliver(mail_user.username, make(f"A rather long subject line {i}"))
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    failed = no_failed_requests(page)
    page.goto(list_url(live_server, imap_account))
    assert not page.is_visible("#folders")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    shot(page, "phone-list")

    page.click("a.folders-toggle")
    assert page.is_visible("#folders .folders")
    assert not page.is_visible("#list-region")
    shot(page, "phone-folders")
    page.click("#folders a.folders-close")
    assert not page.is_visible("#folders")
    assert page.is_visible("#list-region")

    page.click("text=A rather long subject line 3")
    page.wait_for_selector("h1#subject")
    back = page.locator("a.back-link")
    box = back.bounding_box()
    assert box is not None
    assert box["y"] < 200  # at the top, not under the folders
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    shot(page, "phone-message")
    back.click()
    page.wait_for_selector("#list-region")
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    page.click("text=A rather long subject line 2")
    page.wait_for_selector("h1#subject")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert failed == []


def test_everything_works_without_javascript(
    open_page, live_server, imap_account, dovecot, mail_user
):
    """JavaScript off: list, open, flag and delete are links and forms."""
    dovecot.deliver(mail_user.username, make("First"), make("Second"))
    page = open_page(viewport=DESKTOP, java_script_enabled=False)
    page.goto(list_url(live_server, imap_account))
    assert page.locator("#reading-pane").count() == 0
    page.click("text=Second")
    page.wait_for_selector("h1#subject:has-text('Second')")
    assert b"\\Seen" in server_flags(dovecot, mail_user)[2]
    page.click("button[name=action][value=flag]")
    page.wait_for_selector("button[name=action][value=unflag]")
    assert b"\\Flagged" in server_flags(dovecot, mail_user)[2]
    page.click("button[name=action][value=delete]")
    page.wait_for_selector("text=Deleted 1 message.")
    assert 2 not in server_flags(dovecot, mail_user)
    assert page.locator("td.subject", has_text="First").count() == 1
    shot(page, "nojs-list")
    page.set_viewport_size(PHONE)
    page.click("a.folders-toggle")
    assert page.is_visible("#folders .folders")


def test_new_mail_appears_after_a_check(
    open_page, live_server, imap_account, dovecot, mail_user
):
    """A message added by another client shows up at the next check, with the
    unread count in the tab title."""
    dovecot.deliver(mail_user.username, make("Old news"), flags="S")
    page = open_page(viewport=DESKTOP)
    failed = no_failed_requests(page)

    poll_every_second(page)
    page.goto(list_url(live_server, imap_account))
    page.evaluate("window.__marker = 'kept'")
    # The first check (at load) has a state to compare the next ones with.
    page.wait_for_timeout(1500)
    other = dovecot.login(mail_user)
    try:
        other.append("INBOX", make("Fresh from the phone"))
    finally:
        other.logout()
    page.wait_for_selector("td.subject:has-text('Fresh from the phone')")
    expect(page).to_have_title(re.compile(r"^\(1\) "))
    assert page.evaluate("window.__marker") == "kept"
    inbox_count = page.locator('.folders .count[data-folder="INBOX"]')
    assert inbox_count.text_content().strip() == "1"
    shot(page, "desktop-new-mail")

    # A flag set on another device shows at the next check too.
    assert page.locator("#list-region .star.on").count() == 0
    other = dovecot.login(mail_user)
    try:
        other.select_folder("INBOX")
        other.add_flags(other.search(["SUBJECT", "Old news"]), [b"\\Flagged"])
    finally:
        other.logout()
    page.wait_for_selector("#list-region tr:has-text('Old news') .star.on")
    assert page.evaluate("window.__marker") == "kept"

    # Away from the first page's default order the list is left as it is: a bar
    # offers the new mail instead.
    page.goto(list_url(live_server, imap_account, sort="subject", order="asc"))
    page.evaluate("window.__marker = 'kept'")
    page.wait_for_timeout(1500)
    other = dovecot.login(mail_user)
    try:
        other.append("INBOX", make("Second from the phone"))
    finally:
        other.logout()
    page.wait_for_selector("#new-mail-bar:not([hidden])")
    assert page.locator("td.subject", has_text="Second from the phone").count() == 0
    shot(page, "desktop-new-mail-bar")
    page.click("#new-mail-bar button")
    page.wait_for_selector("td.subject:has-text('Second from the phone')")
    assert "sort=" not in page.url
    assert not page.is_visible("#new-mail-bar")
    assert page.evaluate("window.__marker") == "kept"
    assert failed == []


def test_all_inboxes_reading_pane_and_sidebar(
    open_page, live_server, imap_account, user, dovecot, mail_user
):
    """With two accounts the sidebar offers All inboxes; its rows open in the pane
    and the keys act on the right account."""
    second_user = dovecot.new_user()
    second = make_account(user, dovecot, second_user)
    dovecot.deliver(
        mail_user.username,
        make("From the first"),
        internaldate=datetime(2026, 1, 1, tzinfo=UTC),
    )
    dovecot.deliver(
        second_user.username,
        make("From the second"),
        internaldate=datetime(2026, 1, 2, tzinfo=UTC),
    )
    page = open_page(viewport=DESKTOP)
    failed = no_failed_requests(page)
    page.goto(list_url(live_server, imap_account))
    assert page.is_visible(f'.account-link[href*="/mail/{second.pk}/"]')
    page.click(".all-inboxes-link a")
    page.wait_for_selector("#list-region tr[data-uid]")
    page.wait_for_selector("#reading-pane .pane-empty")
    assert page.get_attribute(".all-inboxes-link a", "aria-current") == "page"
    page.keyboard.press("j")
    assert current_subject(page) == "From the second"
    page.keyboard.press("Enter")
    page.wait_for_selector("#reading-pane .subject-heading:has-text('From the second')")
    page.keyboard.press("s")
    wait_for(lambda: b"\\Flagged" in server_flags(dovecot, second_user)[1])
    assert b"\\Flagged" not in server_flags(dovecot, mail_user)[1]
    expect(page).to_have_title(re.compile(r"^\(1\) "))
    assert not page.title().startswith("(1) (")
    shot(page, "desktop-all-inboxes")
    assert failed == []


def message_url(account, uid: int, validity: int, **params: object) -> str:
    query = urlencode({"folder": "INBOX", "v": validity, "uid": uid, **params})
    return reverse("mailbox:message_view", args=[account.pk]) + "?" + query


def inbox_validity(dovecot, mail_user) -> int:
    other = dovecot.login(mail_user)
    try:
        return other.select_folder("INBOX", readonly=True)[b"UIDVALIDITY"]
    finally:
        other.logout()


def test_pane_fragment_is_the_article_alone_with_its_forms(
    user_client, imap_account, dovecot, mail_user
):
    """?pane=1 answers the article without the page: forms keep their CSRF
    token, an HTML body stays in the sandboxed frame; the message is read."""
    message = EmailMessage()
    message["From"] = "Ann <ann@example.net>"
    message["Subject"] = "In the pane"
    message.set_content("plain")
    message.add_alternative("<p>rich</p>", subtype="html")
    dovecot.deliver(mail_user.username, message.as_bytes(policy=email.policy.SMTP))
    validity = inbox_validity(dovecot, mail_user)
    response = user_client.get(message_url(imap_account, 1, validity, pane=1))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<article")
    assert "<html" not in html
    assert 'class="sidebar"' not in html
    assert html.count('name="csrfmiddlewaretoken"') == 3
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in html
    assert "In the pane" in html
    assert b"\\Seen" in server_flags(dovecot, mail_user)[1]


def test_peek_leaves_the_message_unread(user_client, imap_account, dovecot, mail_user):
    """?peek=1 (fetching ahead) does not mark the message read."""
    dovecot.deliver(mail_user.username, make("Not yet read"))
    validity = inbox_validity(dovecot, mail_user)
    response = user_client.get(message_url(imap_account, 1, validity, pane=1, peek=1))
    assert response.status_code == 200
    assert "Not yet read" in response.content.decode()
    assert b"\\Seen" not in server_flags(dovecot, mail_user)[1]


def test_pane_of_another_users_account_is_not_found(
    imap_account, other_user, dovecot, mail_user
):
    """The pane goes through the same gate as the page: not yours, 404."""
    dovecot.deliver(mail_user.username, make("Private"))
    validity = inbox_validity(dovecot, mail_user)
    response = login(other_user).get(message_url(imap_account, 1, validity, pane=1))
    assert response.status_code == 404
    assert b"Private" not in response.content


def test_checks_stop_once_signed_out(
    open_page, live_server, imap_account, dovecot, mail_user
):
    """When the session ends, the page stops asking for new mail."""
    from django.contrib.sessions.models import Session

    page = open_page(viewport=DESKTOP)
    checks: list[str] = []

    poll_every_second(page)
    page.on("request", lambda r: checks.append(r.url) if "/status/" in r.url else None)
    page.goto(list_url(live_server, imap_account))
    page.wait_for_timeout(2500)
    assert len(checks) >= 2  # at load, then every second
    Session.objects.all().delete()
    before = len(checks)
    page.wait_for_timeout(2500)
    after = len(checks)
    assert after - before <= 1  # the one that found the session gone
    page.wait_for_timeout(3000)
    assert len(checks) == after


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_current_row_pane_and_help_pass_axe(
    open_page, live_server, imap_account, dovecot, mail_user, scheme
):
    """What the script adds (current row, reading pane, help dialog) passes
    axe-core with nothing serious or critical."""
    from tests.browser.test_accessibility import AXE, FAILING_IMPACTS, RUN_AXE, TAGS

    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` at the top of the repository.")
    for i in range(1, 4):
        dovecot.deliver(mail_user.username, make(f"Checked {i}"))
    # axe is injected, which the pages' Content-Security-Policy would refuse.
    page = open_page(viewport=DESKTOP, color_scheme=scheme, bypass_csp=True)
    page.goto(list_url(live_server, imap_account))
    page.keyboard.press("j")
    page.keyboard.press("o")
    page.wait_for_selector("#reading-pane .subject-heading")
    page.add_script_tag(path=str(AXE))
    found = []
    for state in ("pane", "help"):
        if state == "help":
            page.keyboard.press("?")
        violations = page.evaluate(RUN_AXE, TAGS)
        found += [
            f"{state}: {v['id']} {v['nodes']}"
            for v in violations
            if v["impact"] in FAILING_IMPACTS
        ]
    assert found == []


def test_pane_and_peek_on_imported_pop_mail(
    user_client, pop_account, dovecot, mail_user
):
    """The store's messages open in the pane too; peeking leaves them unread."""
    from mailbox.pop import importer
    from mailbox.store.models import StoredMessage

    dovecot.deliver(mail_user.username, make("Imported here"))
    importer.run(account_id=pop_account.pk)
    listing = user_client.get(
        reverse("mailbox:message_list", args=[pop_account.pk])
    ).content.decode()
    link = re.search(r'href="(/mail/\d+/message/\?[^"]+)"', listing).group(1)
    link = link.replace("&amp;", "&")
    stored = StoredMessage.objects.get(account=pop_account)

    peeked = user_client.get(link + "&pane=1&peek=1")
    assert peeked.status_code == 200
    assert "Imported here" in peeked.content.decode()
    stored.refresh_from_db()
    assert not stored.seen

    opened = user_client.get(link + "&pane=1")
    assert opened.content.decode().lstrip().startswith("<article")
    stored.refresh_from_db()
    assert stored.seen
