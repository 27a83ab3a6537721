"""StoreSource: the store read through the MailSource protocol, like IMAP mail."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from django.core.files.storage import default_storage

from mailbox import mime
from mailbox.sources import (
    FolderChanged,
    ListQuery,
    MessageGone,
    SearchField,
    SortKey,
    SpecialUse,
)
from mailbox.store import services
from mailbox.store.models import LocalFolder, StoredMessage
from mailbox.store.source import StoreSource
from tests.data.loader import load_eml
from tests.mailbox.store import offline_pop_account, store_eml

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def source(user) -> StoreSource:
    return StoreSource(offline_pop_account(user))


def make(
    subject: str, *, sender: str = "Ann <ann@example.net>", body: str = "Hi"
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "me@example.test"
    message["Subject"] = subject
    message.set_content(body)
    return message.as_bytes()


def inbox_validity(user) -> int:
    return services.folders_ensure(user=user)[LocalFolder.Use.INBOX].pk


def test_folders_in_display_order_with_counts(user, source):
    """Inbox, Drafts, Sent, Trash, then the rest by name, children after parents."""
    zeta = services.folder_create(user=user, name="zeta")
    services.folder_create(user=user, name="Folder 10")
    services.folder_create(user=user, name="Folder 2")
    services.folder_create(user=user, name="Kid", parent=zeta)
    store_eml(user, "plain_utf8.eml")
    seen = store_eml(user, "alternative.eml")
    StoredMessage.objects.filter(pk=seen.pk).update(seen=True)
    folders = source.folders()
    assert [f.name for f in folders] == [
        "Inbox",
        "Drafts",
        "Sent",
        "Trash",
        "Folder 2",
        "Folder 10",
        "zeta",
        "zeta/Kid",
    ]
    inbox, kid = folders[0], folders[-1]
    assert inbox.special_use == SpecialUse.INBOX
    assert (inbox.total, inbox.unread) == (2, 1)
    assert folders[3].special_use == SpecialUse.TRASH
    assert (kid.display_name, kid.depth, kid.delimiter) == ("Kid", 1, "/")
    assert folders[-2].has_children


def test_another_users_folders_are_invisible(user, other_user, source):
    """Only the account owner's folders are listed or reachable."""
    services.folder_create(user=other_user, name="Secret")
    assert "Secret" not in [f.name for f in source.folders()]
    with pytest.raises(FolderChanged):
        source.messages("Secret", ListQuery())


def test_list_newest_first_in_pages(user, source):
    """Arrival order, newest first, 50 a page; the validity is the folder's id."""
    for i in range(55):
        store_eml(user, make(f"Message {i}"), received_at=T0 + timedelta(minutes=i))
    first = source.messages("INBOX", ListQuery())
    second = source.messages("Inbox", ListQuery(page=2))
    assert first.total == 55
    assert len(first.messages) == 50
    assert first.messages[0].subject == "Message 54"
    assert [m.subject for m in second.messages] == [
        f"Message {i}" for i in range(4, -1, -1)
    ]
    assert first.validity == inbox_validity(user)
    assert first.has_next
    assert not second.has_next
    assert source.messages("INBOX", ListQuery(page=9)).messages == ()


def test_summary_fields(user, source):
    """A row has decoded sender and recipients, the Date header, size and flags."""
    stored = store_eml(user, "intl_headers.eml")
    (row,) = source.messages("INBOX", ListQuery()).messages
    assert row.uid == stored.pk
    assert row.from_[0].name == "François Lefèvre"
    assert [a.email for a in row.to] == ["taro@example.jp", "john@example.com"]
    assert row.to[1].name == "Smith, John"
    assert row.date == datetime(2024, 5, 1, 14, 15, tzinfo=UTC)
    assert row.size == len(load_eml("intl_headers.eml"))
    assert not row.seen


@pytest.mark.parametrize(
    ("sort", "reverse", "expected"),
    [
        (SortKey.DATE, True, ["c", "b", "a"]),
        (SortKey.DATE, False, ["a", "b", "c"]),
        (SortKey.FROM, False, ["b", "c", "a"]),
        (SortKey.SUBJECT, True, ["c", "b", "a"]),
        (SortKey.SIZE, False, ["a", "c", "b"]),
    ],
)
def test_sort_orders(user, source, sort, reverse, expected):
    """Each sort key orders the list, either way."""
    store_eml(user, make("a", sender="Zed <z@x.org>"), received_at=T0)
    store_eml(
        user,
        make("B", sender="<adam@x.org>", body="x" * 500),
        received_at=T0 + timedelta(hours=1),
    )
    store_eml(
        user,
        make("c", sender="Mia <m@x.org>", body="x" * 100),
        received_at=T0 + timedelta(hours=2),
    )
    page = source.messages("INBOX", ListQuery(sort=sort, reverse=reverse))
    assert [m.subject.lower() for m in page.messages] == expected


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        (SearchField.SUBJECT, "réunion", {"Réunion de lundi"}),
        (SearchField.FROM, "ANNA@", {"Grüße aus Köln"}),
        (SearchField.TO, "bob example", {"Grüße aus Köln"}),
        (SearchField.BODY, "commence à 10h", {"Réunion de lundi"}),  # QP in Latin-1
        (SearchField.BODY, "schöne grüße", {"Grüße aus Köln"}),
        (SearchField.ALL, "köln", {"Grüße aus Köln"}),
        (SearchField.ALL, "10h", {"Réunion de lundi"}),
        (SearchField.SUBJECT, "nothing like this", set()),
    ],
)
@pytest.mark.parametrize("inline", [False, True], ids=["file", "inline"])
def test_search(user, source, field, text, expected, inline):
    """Search by header fields in the database, and in bodies by reading the
    messages' bytes (blob files, or rows of the database)."""
    store_eml(user, "plain_utf8.eml", inline=inline)
    store_eml(user, "alternative.eml", inline=inline)
    store_eml(user, "attachments.eml", inline=inline)
    page = source.messages("INBOX", ListQuery(text=text, field=field))
    assert {m.subject for m in page.messages} == expected
    assert page.total == len(expected)


def test_unread_and_flagged_filters(user, source):
    """The filters keep only unread, or only flagged, messages."""
    read = store_eml(user, make("read"))
    flagged = store_eml(user, make("flagged"))
    store_eml(user, make("plain"))
    StoredMessage.objects.filter(pk=read.pk).update(seen=True)
    StoredMessage.objects.filter(pk=flagged.pk).update(flagged=True)
    unread = source.messages("INBOX", ListQuery(unread_only=True))
    assert {m.subject for m in unread.messages} == {"flagged", "plain"}
    only_flagged = source.messages("INBOX", ListQuery(flagged_only=True))
    assert [m.subject for m in only_flagged.messages] == ["flagged"]


def test_neighbours_follow_the_list_order(user, source):
    """Previous and next are the rows shown above and below in the list."""
    a, b, c = (
        store_eml(user, make(s), received_at=T0 + timedelta(hours=i))
        for i, s in enumerate("abc")
    )
    validity = inbox_validity(user)
    middle = source.neighbours("INBOX", b.pk, ListQuery(), validity=validity)
    assert (middle.previous_uid, middle.next_uid) == (c.pk, a.pk)
    first = source.neighbours("INBOX", c.pk, ListQuery(), validity=validity)
    assert (first.previous_uid, first.next_uid) == (None, b.pk)
    ascending = source.neighbours(
        "INBOX", b.pk, ListQuery(reverse=False), validity=validity
    )
    assert (ascending.previous_uid, ascending.next_uid) == (a.pk, c.pk)
    filtered = source.neighbours(
        "INBOX", b.pk, ListQuery(flagged_only=True), validity=validity
    )
    assert (filtered.previous_uid, filtered.next_uid) == (None, None)


def test_open_parses_and_marks_seen(user, source):
    """Opening parses the blob and marks the message seen, with a new modseq."""
    stored = store_eml(user, "plain_utf8.eml")
    message = source.message("INBOX", stored.pk, validity=inbox_validity(user))
    assert message.parsed.subject == "Grüße aus Köln"
    assert "Köln" in message.parsed.text
    assert message.seen
    assert message.received == stored.received_at
    after = StoredMessage.objects.get(pk=stored.pk)
    assert after.seen
    assert after.modseq > stored.modseq


def test_open_without_marking(user, source):
    """With mark_seen False the message stays unread."""
    stored = store_eml(user, "plain_utf8.eml")
    message = source.message(
        "INBOX", stored.pk, validity=inbox_validity(user), mark_seen=False
    )
    assert not message.seen
    assert not StoredMessage.objects.get(pk=stored.pk).seen


def test_stale_validity_raises_folder_changed(user, source):
    """A validity that is not the folder's id is refused, whatever the call."""
    stored = store_eml(user, "plain_utf8.eml")
    stale = inbox_validity(user) + 1000
    calls = [
        lambda: source.message("INBOX", stored.pk, validity=stale),
        lambda: source.raw("INBOX", stored.pk, validity=stale),
        lambda: source.attachment("INBOX", stored.pk, "1", validity=stale),
        lambda: source.set_flags("INBOX", [stored.pk], validity=stale, seen=True),
        lambda: source.move("INBOX", [stored.pk], validity=stale, to_folder="Trash"),
        lambda: source.delete("INBOX", [stored.pk], validity=stale),
        lambda: source.neighbours("INBOX", stored.pk, ListQuery(), validity=stale),
    ]
    for call in calls:
        with pytest.raises(FolderChanged):
            call()
    unchanged = StoredMessage.objects.get(pk=stored.pk)
    assert not unchanged.seen
    assert unchanged.folder_id == inbox_validity(user)


def test_a_recreated_folder_has_a_new_validity(user, source):
    """A folder deleted and made again under its name is another folder."""
    old = services.folder_create(user=user, name="Again")
    services.folder_delete(user=user, folder=old)
    new = services.folder_create(user=user, name="Again")
    assert source.messages("Again", ListQuery()).validity == new.pk != old.pk


def test_other_users_and_other_folders_ids_are_gone(user, other_user, source):
    """Ids of another user's mail, or of another folder, are MessageGone."""
    theirs = store_eml(other_user, "plain_utf8.eml")
    archive = services.folder_create(user=user, name="Archive")
    elsewhere = store_eml(user, "plain_utf8.eml", folder=archive)
    validity = inbox_validity(user)
    for uid in (theirs.pk, elsewhere.pk, 999_999):
        with pytest.raises(MessageGone):
            source.message("INBOX", uid, validity=validity)
        with pytest.raises(MessageGone):
            source.raw("INBOX", uid, validity=validity)
        with pytest.raises(MessageGone):
            source.attachment("INBOX", uid, "2", validity=validity)
    source.set_flags("INBOX", [theirs.pk], validity=validity, seen=True)
    source.delete("INBOX", [theirs.pk], validity=validity)
    theirs.refresh_from_db()
    assert not theirs.seen
    assert theirs.folder.user_id == other_user.pk


def test_raw_is_the_stored_bytes(user, source):
    """The original comes back byte for byte, in chunks."""
    stored = store_eml(user, "raw_latin1_headers.eml")
    chunks = source.raw("INBOX", stored.pk, validity=inbox_validity(user))
    assert b"".join(chunks) == load_eml("raw_latin1_headers.eml")


@pytest.mark.parametrize(
    ("sample", "part_id", "filename"),
    [
        ("attachments.eml", "2", "naïve résumé.pdf"),
        ("attachments.eml", "4", "日本語.jpg"),
        ("nested_numbering.eml", "2.2", "slides.zip"),
        ("forwarded.eml", "2", "Quarterly figures.eml"),
        ("toplevel_attachment.eml", "1", "scan.pdf"),
    ],
)
def test_attachment_is_streamed_decoded(user, source, sample, part_id, filename):
    """A part comes described as listed, with the bytes mime decodes for it."""
    stored = store_eml(user, sample)
    download = source.attachment(
        "INBOX", stored.pk, part_id, validity=inbox_validity(user)
    )
    assert download.info.filename == filename
    expected = b"".join(mime.iter_part_payload(io.BytesIO(load_eml(sample)), part_id))
    assert b"".join(download.chunks) == expected
    assert expected


def test_body_part_can_be_fetched_too(user, source):
    """A part that is not listed as an attachment (the body) still downloads."""
    stored = store_eml(user, "plain_utf8.eml")
    download = source.attachment("INBOX", stored.pk, "1", validity=inbox_validity(user))
    assert download.info.content_type == "text/plain"
    assert "Köln".encode() in b"".join(download.chunks)


@pytest.mark.parametrize("part_id", ["9", "2.7", "0", "x", "1..2"])
def test_missing_part_is_gone(user, source, part_id):
    """A part number the message does not have is MessageGone."""
    stored = store_eml(user, "attachments.eml")
    with pytest.raises(MessageGone):
        source.attachment("INBOX", stored.pk, part_id, validity=inbox_validity(user))


def test_flags_move_and_delete_through_the_source(
    user, source, django_capture_on_commit_callbacks
):
    """set_flags, move and delete reach the store; delete in Trash is for good."""
    stored = store_eml(user, "plain_utf8.eml")
    inbox = inbox_validity(user)
    source.set_flags("INBOX", [stored.pk], validity=inbox, flagged=True, seen=True)
    row = StoredMessage.objects.get(pk=stored.pk)
    assert row.flagged
    assert row.seen
    services.folder_create(user=user, name="Archive")
    source.move("INBOX", [stored.pk], validity=inbox, to_folder="Archive")
    archive = source.messages("Archive", ListQuery())
    assert [m.uid for m in archive.messages] == [stored.pk]
    with pytest.raises(FolderChanged):
        source.move("Archive", [stored.pk], validity=archive.validity, to_folder="Nope")
    source.delete("Archive", [stored.pk], validity=archive.validity)
    trash = source.messages("Trash", ListQuery())
    assert [m.uid for m in trash.messages] == [stored.pk]
    with django_capture_on_commit_callbacks(execute=True):
        source.delete("Trash", [stored.pk], validity=trash.validity)
    assert not StoredMessage.objects.filter(pk=stored.pk).exists()
    assert not default_storage.exists(stored.blob)


def test_folder_management_through_the_source(user, source):
    """Folders are made, renamed and deleted by name; bad requests raise ValueError."""
    assert source.create_folder("Projects") == "Projects"
    assert source.create_folder("2026", parent="Projects") == "Projects/2026"
    assert source.rename_folder("Projects", "Work") == "Work"
    assert [f.name for f in source.folders()][-2:] == ["Work", "Work/2026"]
    source.delete_folder("Work/2026")
    with pytest.raises(ValueError, match="does not exist"):
        source.delete_folder("Work/2026")
    with pytest.raises(ValueError, match="special folder"):
        source.delete_folder("INBOX")
    with pytest.raises(ValueError, match="does not exist"):
        source.create_folder("x", parent="Nowhere")


def test_quota_is_the_users_store_usage(user, source, settings):
    """The quota bar shows the bytes stored against the user's limit."""
    settings.WEBMAIL_DEFAULT_QUOTA_MB = 10
    stored = store_eml(user, "attachments.eml")
    quota = source.quota()
    assert quota.used_bytes == stored.size
    assert quota.limit_bytes == 10 * 1024 * 1024
