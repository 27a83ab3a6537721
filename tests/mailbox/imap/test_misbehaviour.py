"""Servers that change under our feet: another client, a restart, a lost session.

A second IMAP client (a phone, say) acts on the same mailbox between or inside
our requests, and the private Dovecot is restarted or stopped in the middle of
a command. Each case goes through the browser views: never a 500, never the
wrong message.
"""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from django.urls import reverse
from django.utils.http import urlencode
from imapclient import IMAPClient

from mailbox.imap import fetch, listing, pool


@pytest.fixture(autouse=True)
def _fresh_pool(trust_test_ca):
    yield
    pool.close_all()


def _message(subject: str) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = "Ann <ann@example.net>"
    msg["To"] = "reader@example.test"
    msg["Date"] = "Mon, 03 Mar 2025 10:00:00 +0000"
    msg.set_content(f"The text of {subject}.\n")
    return msg.as_bytes()


def _list_url(account, folder: str = "INBOX") -> str:
    query = urlencode({"folder": folder})
    return reverse("mailbox:message_list", args=[account.pk]) + "?" + query


def _links(client, account, folder: str = "INBOX") -> dict[str, str]:
    """Subject -> message link, from the list page."""
    page = client.get(_list_url(account, folder)).content.decode()
    rows = re.findall(r'href="(/mail/\d+/message/\?[^"]+)"[^>]*>(.*?)</a>', page, re.S)
    links = {}
    for href, inner in rows:
        subject = re.sub(r"<[^>]+>", "", inner).strip()
        links[subject] = href.replace("&amp;", "&")
    return links


def _other(dovecot, mail_user) -> IMAPClient:
    return dovecot.login(mail_user)


def _uid_of(other: IMAPClient, subject: str) -> int:
    for uid, data in other.fetch(other.search(["ALL"]), ["ENVELOPE"]).items():
        if data[b"ENVELOPE"].subject.decode() == subject:
            return uid
    raise AssertionError(f"no message {subject!r}")


def _expunge(dovecot, mail_user, subject: str, folder: str = "INBOX") -> None:
    other = _other(dovecot, mail_user)
    try:
        other.select_folder(folder)
        uid = _uid_of(other, subject)
        other.add_flags([uid], [b"\\Deleted"])
        other.uid_expunge([uid])
    finally:
        other.logout()


def test_message_expunged_between_list_and_open(
    user_client, imap_account, dovecot, mail_user
):
    """A message another client expunged after our list was shown answers
    "message gone"; its neighbours still open as themselves."""
    dovecot.deliver(mail_user.username, _message("Alpha"), _message("Bravo"))
    dovecot.deliver(mail_user.username, _message("Charlie"))
    links = _links(user_client, imap_account)
    assert set(links) == {"Alpha", "Bravo", "Charlie"}

    _expunge(dovecot, mail_user, "Bravo")
    gone = user_client.get(links["Bravo"])

    assert gone.status_code == 404
    assert "Bravo" not in gone.content.decode()
    for subject in ("Alpha", "Charlie"):
        page = user_client.get(links[subject])
        assert page.status_code == 200
        assert f"The text of {subject}." in page.content.decode()
    assert set(_links(user_client, imap_account)) == {"Alpha", "Charlie"}


@pytest.mark.parametrize("noop", [True, False], ids=["before-fetch", "with-fetch"])
def test_expunge_inside_our_list_command(
    monkeypatch, user_client, imap_account, dovecot, mail_user, noop
):
    """Another client expunges a message after our search and before our FETCH:
    the server's unsolicited EXPUNGE arrives in the middle of our commands (on a
    NOOP, or with the UID FETCH itself), and the page shows the remaining
    messages, each under its own subject."""
    for subject in ("One", "Two", "Three", "Four"):
        dovecot.deliver(mail_user.username, _message(subject))
    original = listing.fetch_summaries
    done = []

    def meanwhile(client, uids):
        if not done:
            done.append(True)
            _expunge(dovecot, mail_user, "Two")
            if noop:
                client.noop()  # the EXPUNGE reaches our session before the FETCH
        return original(client, uids)

    monkeypatch.setattr(listing, "fetch_summaries", meanwhile)

    links = _links(user_client, imap_account)

    assert set(links) == {"One", "Three", "Four"}
    for subject, link in links.items():
        assert f"The text of {subject}." in user_client.get(link).content.decode()


def test_expunge_inside_our_message_fetch(
    monkeypatch, user_client, imap_account, dovecot, mail_user
):
    """Another client expunges the message after we opened its folder and before
    our FETCH (the server answers with empty data): the page says the message is
    gone rather than showing an empty one."""
    dovecot.deliver(mail_user.username, _message("Alpha"), _message("Bravo"))
    links = _links(user_client, imap_account)
    original = fetch.open_checked

    def then_expunge(client, folder, validity):
        state = original(client, folder, validity)
        _expunge(dovecot, mail_user, "Alpha")
        return state

    monkeypatch.setattr(fetch, "open_checked", then_expunge)

    response = user_client.get(links["Alpha"])

    assert response.status_code == 404
    assert "The text of Alpha." not in response.content.decode()
    monkeypatch.setattr(fetch, "open_checked", original)
    assert "The text of Bravo." in user_client.get(links["Bravo"]).content.decode()


def test_flags_changed_by_another_client_show_up(
    user_client, imap_account, dovecot, mail_user
):
    """Flag changes made elsewhere reach our open session as unsolicited FETCH
    responses; the next list shows them and actions still hit the right
    message."""
    dovecot.deliver(mail_user.username, _message("Alpha"), _message("Bravo"))
    links = _links(user_client, imap_account)
    other = _other(dovecot, mail_user)
    try:
        other.select_folder("INBOX")
        other.add_flags([_uid_of(other, "Alpha")], [b"\\Flagged", b"\\Seen"])
    finally:
        other.logout()

    page = user_client.get(_list_url(imap_account)).content.decode()

    assert page.count("★") == 1
    bravo = user_client.get(links["Bravo"])
    assert "The text of Bravo." in bravo.content.decode()


def test_folder_recreated_elsewhere_is_a_changed_folder(
    user_client, imap_account, dovecot, mail_user
):
    """When another client deletes a folder and creates it again (a new
    UIDVALIDITY, UIDs starting over), an old link reloads the list and an old
    selection acts on nothing: the new message with the same UID is never shown
    or deleted."""
    dovecot.deliver(mail_user.username, _message("Original"), folder="Projects")
    link = _links(user_client, imap_account, "Projects")["Original"]
    ref = dict(re.findall(r"(folder|v|uid)=([^&]+)", link))
    other = _other(dovecot, mail_user)
    try:
        other.delete_folder("Projects")
        other.create_folder("Projects")
        other.append("Projects", _message("Impostor"))
    finally:
        other.logout()

    opened = user_client.get(link, follow=True)
    deleted = user_client.post(
        reverse("mailbox:bulk_action", args=[imap_account.pk]),
        {
            "folder": "Projects",
            "validity": ref["v"],
            "uids": [ref["uid"]],
            "action": "delete",
        },
        follow=True,
    )

    for response in (opened, deleted):
        assert response.status_code == 200
        assert "The folder changed on the server" in response.content.decode()
        assert "The text of Impostor." not in response.content.decode()
    assert dovecot.count(mail_user.username, "Projects") == 1
    assert "Impostor" in _links(user_client, imap_account, "Projects")


def test_list_after_the_open_folder_is_recreated_elsewhere(
    user_client, imap_account, dovecot, mail_user
):
    """The pooled connection still has the old folder open; Dovecot goes on
    answering STATUS from it, so the next list selects the folder afresh."""
    dovecot.deliver(mail_user.username, _message("Original"), folder="Projects")
    assert "Original" in _links(user_client, imap_account, "Projects")
    other = _other(dovecot, mail_user)
    try:
        other.delete_folder("Projects")
        other.create_folder("Projects")
        other.append("Projects", _message("Replacement"))
    finally:
        other.logout()

    links = _links(user_client, imap_account, "Projects")

    assert "Replacement" in links
    assert "Original" not in links


def test_folder_deleted_elsewhere_while_open(
    user_client, imap_account, dovecot, mail_user
):
    """A folder another client deleted while we had it open: its list, its
    messages and actions on them end on a page that says so, not a 500 or a
    redirect loop."""
    dovecot.deliver(mail_user.username, _message("Doomed"), folder="Projects")
    link = _links(user_client, imap_account, "Projects")["Doomed"]
    other = _other(dovecot, mail_user)
    try:
        other.delete_folder("Projects")
    finally:
        other.logout()

    listed = user_client.get(_list_url(imap_account, "Projects"), follow=True)
    opened = user_client.get(link, follow=True)

    for response in (listed, opened):
        assert response.status_code == 200
        text = response.content.decode()
        assert "The text of Doomed." not in text
        assert "Projects" in text
        assert response.redirect_chain
        assert response.redirect_chain[-1][0] == _list_url(imap_account)
    assert "Projects" not in user_client.get(_list_url(imap_account)).content.decode()


def test_server_restart_between_requests(user_client, imap_account, dovecot, mail_user):
    """After the server restarts (our pooled login is dead), the next page logs
    in again and works."""
    dovecot.deliver(mail_user.username, _message("Survivor"))
    link = _links(user_client, imap_account)["Survivor"]

    dovecot.restart()

    response = user_client.get(link)
    assert response.status_code == 200
    assert "The text of Survivor." in response.content.decode()


def test_bye_during_the_list_fetch_is_retried(
    monkeypatch, user_client, imap_account, dovecot, mail_user
):
    """The server goes away (BYE) in the middle of our list: the list is fetched
    again on a fresh login and shown whole."""
    dovecot.deliver(mail_user.username, _message("Alpha"), _message("Bravo"))
    user_client.get(_list_url(imap_account))  # a pooled, selected session
    original = listing.fetch_summaries
    restarted = []

    def restart_first(client, uids):
        if not restarted:
            restarted.append(True)
            dovecot.restart()
        return original(client, uids)

    monkeypatch.setattr(listing, "fetch_summaries", restart_first)

    assert set(_links(user_client, imap_account)) == {"Alpha", "Bravo"}
    assert restarted


def test_bye_during_the_message_fetch_while_down_is_a_clear_error(
    monkeypatch, user_client, imap_account, dovecot, mail_user
):
    """The server dies during the body FETCH and stays down: a page names the
    account and the problem (503, no 500); once it is back, the message opens
    as itself."""
    dovecot.deliver(mail_user.username, _message("Patience"))
    link = _links(user_client, imap_account)["Patience"]
    original = fetch._fetch_one

    def stop_first(client, uid, items):
        monkeypatch.setattr(fetch, "_fetch_one", original)
        dovecot.stop()
        return original(client, uid, items)

    monkeypatch.setattr(fetch, "_fetch_one", stop_first)
    try:
        down = user_client.get(link)
    finally:
        dovecot.start()

    assert down.status_code == 503
    assert "The connection to the server failed" in down.content.decode() or (
        "refused the connection" in down.content.decode()
    )
    again = user_client.get(link)
    assert again.status_code == 200
    assert "The text of Patience." in again.content.decode()


def test_bye_in_the_middle_of_a_download_cuts_it_and_the_next_works(
    user_client, imap_account, dovecot, mail_user
):
    """The server restarts while a 3 MiB original is being streamed: the
    download fails instead of ending as a shorter file that looks complete, and
    the next download logs in again and is whole."""
    big = _message("Big") + b"x" * (3 * 1024 * 1024) + b"\n"
    dovecot.deliver(mail_user.username, big)
    link = _links(user_client, imap_account)["Big"]
    raw_url = link.replace("/message/?", "/message/raw/?") + "&download=1"

    response = user_client.get(raw_url)
    assert response.status_code == 200
    stream = iter(response.streaming_content)
    first = next(stream)
    dovecot.restart()
    with pytest.raises(Exception) as cut:  # noqa: PT011 (whatever the transport)
        for _chunk in stream:
            pass
    assert not isinstance(cut.value, AssertionError)
    assert 0 < len(first) < len(big)

    again = user_client.get(raw_url)
    assert again.status_code == 200
    assert b"".join(again.streaming_content) == big.replace(b"\n", b"\r\n")


@pytest.mark.parametrize("action", ["rename", "delete"])
def test_changing_the_open_folder_keeps_the_login_usable(
    caplog, user_client, imap_account, dovecot, mail_user, action
):
    """Renaming or deleting the folder that was just listed works, and the next
    pages reuse the same login: the folder is closed first, since Dovecot ends a
    session whose selected folder is renamed or deleted."""
    dovecot.deliver(mail_user.username, _message("Inside"), folder="Old")
    assert "Inside" in _links(user_client, imap_account, "Old")
    url = reverse("mailbox:folder_manage", args=[imap_account.pk])

    changed = user_client.post(
        url, {"action": action, "folder": "Old", "name": "New"}, follow=True
    )

    assert changed.status_code == 200
    assert user_client.get(_list_url(imap_account)).status_code == 200
    assert user_client.get(url).status_code == 200
    if action == "rename":
        assert "Inside" in _links(user_client, imap_account, "New")
    assert "lost its connection" not in caplog.text
    assert dovecot.count(mail_user.username, "INBOX") == 0
