"""POP3 mail in the store, read through the same URLs as IMAP mail."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils.http import urlencode

from mailbox import mime
from mailbox.store import services
from mailbox.store.models import LocalFolder, StoredMessage, UidlEntry
from tests.conftest import login
from tests.data.loader import load_eml
from tests.mailbox.store import store_eml

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def list_url(account, folder="INBOX", **params) -> str:
    query = urlencode({"folder": folder, **params})
    return reverse("mailbox:message_list", args=[account.pk]) + "?" + query


def ref(message: StoredMessage) -> dict[str, object]:
    return {"folder": message.folder.name, "v": message.folder_id, "uid": message.pk}


def test_list_newest_first_with_unread_marked(user_client, user, pop_account):
    """The inbox lists stored mail newest first; unread rows are marked."""
    older = store_eml(user, "plain_utf8.eml", account=pop_account, received_at=T0)
    store_eml(
        user, "alternative.eml", account=pop_account, received_at=T0 + timedelta(1)
    )
    StoredMessage.objects.filter(pk=older.pk).update(seen=True)
    page = user_client.get(list_url(pop_account)).content.decode()
    assert page.index("Réunion de lundi") < page.index("Grüße aus Köln")
    row = page[page.rindex("<tr", 0, page.index("Réunion")) : page.index("Réunion")]
    assert "unread" in row
    assert "2 messages" in page


def test_pages_of_fifty_and_search(user_client, user, pop_account):
    """Long folders come 50 a page; search narrows the list."""
    for i in range(52):
        store_eml(user, "plain_utf8.eml", received_at=T0 + timedelta(minutes=i))
    store_eml(user, "alternative.eml", received_at=T0 - timedelta(1))
    first = user_client.get(list_url(pop_account)).content.decode()
    second = user_client.get(list_url(pop_account, page=2)).content.decode()
    assert first.count('name="uids"') == 50
    assert second.count('name="uids"') == 3
    found = user_client.get(
        list_url(pop_account, q="réunion", field="subject")
    ).content.decode()
    assert found.count('name="uids"') == 1


def test_open_marks_read(user_client, user, pop_account):
    """Opening a message shows it and marks it read."""
    message = store_eml(user, "plain_utf8.eml", account=pop_account)
    response = user_client.get(
        reverse("mailbox:message_view", args=[pop_account.pk]), ref(message)
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Grüße aus Köln" in page
    assert StoredMessage.objects.get(pk=message.pk).seen
    # Where and when it came from.
    assert "Imported" in page
    assert pop_account.host in page


def test_open_without_marking_when_the_user_says_so(user_client, user, pop_account):
    """With the preference off, opening leaves the message unread."""
    user.mark_read_on_open = False
    user.save()
    message = store_eml(user, "plain_utf8.eml", account=pop_account)
    user_client.get(
        reverse("mailbox:message_view", args=[pop_account.pk]), ref(message)
    )
    assert not StoredMessage.objects.get(pk=message.pk).seen


def test_html_body_in_its_own_frame(user_client, user, pop_account):
    """The HTML body is served by its own view with a strict policy."""
    message = store_eml(user, "alternative.eml", account=pop_account)
    response = user_client.get(
        reverse("mailbox:message_body", args=[pop_account.pk]), ref(message)
    )
    assert response.status_code == 200
    assert "sandbox" in response["Content-Security-Policy"]


def test_attachment_download(user_client, user, pop_account):
    """An attachment streams with its safe name and the decoded bytes."""
    message = store_eml(user, "attachments.eml", account=pop_account)
    page = user_client.get(
        reverse("mailbox:message_view", args=[pop_account.pk]), ref(message)
    ).content.decode()
    assert "naïve résumé.pdf" in page
    part_link = (
        re.search(r'href="([^"]+part=2[^"]*)"', page).group(1).replace("&amp;", "&")
    )
    response = user_client.get(part_link)
    assert response.status_code == 200
    assert (
        "filename*=UTF-8''" + quote("naïve résumé.pdf", safe="")
        in (response["Content-Disposition"])
    )
    expected = b"".join(
        mime.iter_part_payload(io.BytesIO(load_eml("attachments.eml")), "2")
    )
    assert b"".join(response.streaming_content) == expected


def test_show_original(user_client, user, pop_account):
    """“Show original” streams the stored bytes."""
    message = store_eml(user, "raw_utf8_headers.eml", account=pop_account)
    response = user_client.get(
        reverse("mailbox:message_raw", args=[pop_account.pk]),
        {**ref(message), "download": "1"},
    )
    assert response["Content-Type"] == "message/rfc822"
    assert b"".join(response.streaming_content) == load_eml("raw_utf8_headers.eml")


def bulk(client, account, message, action, **extra):
    data = {
        "folder": message.folder.name,
        "validity": message.folder_id,
        "uids": [message.pk],
        "action": action,
        **extra,
    }
    return client.post(reverse("mailbox:bulk_action", args=[account.pk]), data)


def test_bulk_flag_move_delete_then_delete_for_good(
    user_client, user, pop_account, django_capture_on_commit_callbacks
):
    """Flag, move, delete to Trash, then delete for good: blob, quota, ledger."""
    message = store_eml(user, "plain_utf8.eml", account=pop_account)
    assert bulk(user_client, pop_account, message, "flag").status_code == 302
    assert "★" in user_client.get(list_url(pop_account)).content.decode()
    services.folder_create(user=user, name="Archive")
    bulk(user_client, pop_account, message, "move", to_folder="Archive")
    message.refresh_from_db()
    assert message.folder.name == "Archive"
    bulk(user_client, pop_account, message, "delete")
    message.refresh_from_db()
    assert message.folder.special_use == LocalFolder.Use.TRASH
    with django_capture_on_commit_callbacks(execute=True):
        bulk(user_client, pop_account, message, "delete")
    assert not StoredMessage.objects.filter(pk=message.pk).exists()
    assert not default_storage.exists(message.blob)
    entry = UidlEntry.objects.get(account=pop_account, uidl=message.uidl)
    assert entry.state == UidlEntry.State.DELETED_HERE


def test_stale_validity_reloads_instead_of_acting(user_client, user, pop_account):
    """An old validity changes nothing and sends the user back to the list."""
    message = store_eml(user, "plain_utf8.eml", account=pop_account)
    stale = {**ref(message), "v": message.folder_id + 100}
    response = user_client.post(
        reverse("mailbox:bulk_action", args=[pop_account.pk]),
        {**stale, "validity": stale["v"], "uids": [message.pk], "action": "delete"},
    )
    assert response.status_code == 302
    assert StoredMessage.objects.get(pk=message.pk).folder_id == message.folder_id
    view = user_client.get(
        reverse("mailbox:message_view", args=[pop_account.pk]), stale
    )
    assert view.status_code == 302


def test_someone_elses_message_is_gone(user_client, user, other_user, pop_account):
    """Another user's message id answers the “no longer there” page."""
    theirs = store_eml(other_user, "plain_utf8.eml")
    inbox = services.folders_ensure(user=user)[LocalFolder.Use.INBOX]
    response = user_client.get(
        reverse("mailbox:message_view", args=[pop_account.pk]),
        {"folder": "INBOX", "v": inbox.pk, "uid": theirs.pk},
    )
    assert response.status_code == 404
    assert "no longer there" in response.content.decode()


def test_folders_are_listed_and_managed(user_client, pop_account):
    """Special folders first; create, rename, delete; special ones are refused."""
    url = reverse("mailbox:folder_manage", args=[pop_account.pk])
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
    assert "special folder" in refused.content.decode()


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
]


@pytest.mark.parametrize(("name", "method", "data"), MAIL_URLS)
def test_another_users_account_answers_404(
    user, other_user, pop_account, name, method, data
):
    """Every mail page of another user's POP3 account answers 404."""
    store_eml(user, "attachments.eml", account=pop_account)
    response = getattr(login(other_user), method)(
        reverse(name, args=[pop_account.pk]), data
    )
    assert response.status_code == 404
    assert StoredMessage.objects.filter(user=user).count() == 1
