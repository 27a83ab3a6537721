"""Small messages kept in the database next to blob files: read back alike,
deleted without a file, their quota freed."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction

from accounts.models import UserQuota
from accounts.selectors import user_quota_get
from mailbox.compose.store import StoreFull, copy_add
from mailbox.sources import ListQuery, MessageGone
from mailbox.store import blobs, services
from mailbox.store.models import InlineRaw, LocalFolder, StoredMessage, UidlEntry
from mailbox.store.raw import raw_chunks, raw_read
from mailbox.store.source import StoreSource
from tests.data.loader import eml_names, load_eml
from tests.mailbox.store import offline_pop_account, store_eml

Use = LocalFolder.Use


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def source(user) -> StoreSource:
    return StoreSource(offline_pop_account(user))


def store_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "store"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def inbox_validity(user) -> int:
    return services.folders_ensure(user=user)[Use.INBOX].pk


@pytest.mark.parametrize("sample", eml_names())
def test_an_inline_and_a_file_message_read_back_alike(user, source, sample, settings):
    """The same bytes stored both ways: raw source, parsed message and every
    part are identical, and only the file one has a file."""
    raw = load_eml(sample)
    on_file = store_eml(user, raw)
    inline = store_eml(user, raw, inline=True)
    assert on_file.blob
    assert inline.blob == ""
    assert InlineRaw.objects.filter(message=inline).exists()
    assert not InlineRaw.objects.filter(message=on_file).exists()
    assert len(store_files(settings)) == 1
    validity = inbox_validity(user)

    def read(stored):
        chunks = b"".join(source.raw("INBOX", stored.pk, validity=validity))
        parsed = source.message(
            "INBOX", stored.pk, validity=validity, mark_seen=False
        ).parsed
        parts = {
            info.part_id: (
                info,
                b"".join(
                    source.attachment(
                        "INBOX", stored.pk, info.part_id, validity=validity
                    ).chunks
                ),
            )
            for info in parsed.attachments
        }
        return chunks, parsed, parts

    file_raw, file_parsed, file_parts = read(on_file)
    inline_raw, inline_parsed, inline_parts = read(inline)
    assert file_raw == inline_raw == raw
    assert raw_read(inline) == raw_read(on_file) == raw
    assert inline_parsed == file_parsed
    assert inline_parts == file_parts
    # Columns come from the bytes either way.
    for field in ("subject", "from_email", "to_text", "date", "has_attachments"):
        assert getattr(inline, field) == getattr(on_file, field), field


def test_an_attachment_of_an_inline_message_downloads(user, source):
    """A named attachment of a message kept in the database streams decoded."""
    stored = store_eml(user, "attachments.eml", inline=True)
    validity = inbox_validity(user)
    parsed = source.message("INBOX", stored.pk, validity=validity).parsed
    named = [info for info in parsed.attachments if not info.is_inline]
    assert named
    download = source.attachment(
        "INBOX", stored.pk, named[0].part_id, validity=validity
    )
    assert download.info.filename == named[0].filename
    assert b"".join(download.chunks)


def test_raw_source_of_an_inline_message_comes_in_chunks(user):
    """The raw source is handed out a chunk at a time, inline or not."""
    data = b"Subject: big\r\n\r\n" + b"x" * 5000 + b"\r\n"
    stored = store_eml(user, data, inline=True)
    chunks = list(raw_chunks(stored, chunk_size=1024))
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) == 1024


def test_an_inline_message_without_its_bytes_is_gone(user, source):
    """A row whose bytes are missing answers MessageGone, never a 500."""
    stored = store_eml(user, "attachments.eml", inline=True)
    InlineRaw.objects.filter(message=stored).delete()
    validity = inbox_validity(user)
    with pytest.raises(MessageGone):
        source.message("INBOX", stored.pk, validity=validity)
    with pytest.raises(MessageGone):
        source.raw("INBOX", stored.pk, validity=validity)
    with pytest.raises(MessageGone):
        source.attachment("INBOX", stored.pk, "2", validity=validity)
    # A body search skips it instead of failing.
    page = source.messages("INBOX", ListQuery(text="anything at all"))
    assert page.total == 0


def test_deleting_an_inline_message_frees_its_quota_and_leaves_no_file(
    user, settings, django_capture_on_commit_callbacks
):
    """Trash, then delete for good: row and bytes gone, usage back to what the
    file message holds, the ledger entry DELETED_HERE, no file ever made or
    deleted, no file of the other message touched."""
    account = offline_pop_account(user)
    folders = services.folders_ensure(user=user)
    inline = store_eml(user, "attachments.eml", account=account, inline=True)
    on_file = store_eml(user, "plain_utf8.eml", account=account)
    files = store_files(settings)
    assert len(files) == 1
    assert user_quota_get(user=user).used_bytes == inline.size + on_file.size
    services.messages_delete(user=user, folder=folders[Use.INBOX], ids=[inline.pk])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.trash_empty(user=user) == 1
    assert callbacks == []  # no file to delete
    assert not StoredMessage.objects.filter(pk=inline.pk).exists()
    assert not InlineRaw.objects.filter(message_id=inline.pk).exists()
    assert user_quota_get(user=user).used_bytes == on_file.size
    entry = UidlEntry.objects.get(account=account, uidl=inline.uidl)
    assert entry.state == UidlEntry.State.DELETED_HERE
    assert store_files(settings) == files


def test_deleting_mixed_messages_deletes_only_the_files_there_are(
    user, settings, django_capture_on_commit_callbacks
):
    """Emptying a Trash of inline and file messages deletes each file once."""
    trash = services.folders_ensure(user=user)[Use.TRASH]
    store_eml(user, "plain_utf8.eml", folder=trash, inline=True)
    store_eml(user, "plain_utf8.eml", folder=trash)
    assert len(store_files(settings)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert services.trash_empty(user=user) == 2
    assert store_files(settings) == []
    assert not InlineRaw.objects.exists()
    assert user_quota_get(user=user).used_bytes == 0


def test_message_add_takes_a_blob_or_the_bytes(user):
    """Neither, or both, is a programming error."""
    inbox = services.folders_ensure(user=user)[Use.INBOX]
    for kwargs in ({}, {"blob_name": "store/x.eml", "data": b"x"}):
        with pytest.raises(ValueError, match="either"), transaction.atomic():
            services.message_add(
                user=user, account=None, folder=inbox, uidl="", size=1, **kwargs
            )
    with pytest.raises(ValueError, match="either"), transaction.atomic():
        services.messages_add(
            user=user,
            account=None,
            folder=inbox,
            items=[("a", "", 1)],
            inline=[None],
        )
    assert not StoredMessage.objects.exists()


def test_messages_add_mixes_inline_and_blob_items(user):
    """A batch of both kinds: ids in order, bytes only for the inline ones."""
    inbox = services.folders_ensure(user=user)[Use.INBOX]
    small = b"Subject: small\r\n\r\nhello\r\n"
    big = b"Subject: big\r\n\r\n" + b"y" * 300 + b"\r\n"
    name, path = blobs.blob_reserve(user_id=user.pk)
    path.write_bytes(big)
    with transaction.atomic():
        ids = services.messages_add(
            user=user,
            account=None,
            folder=inbox,
            items=[("u1", "", len(small)), ("u2", name, len(big)), ("u3", "", 5)],
            inline=[small, None, b"Sub:\n"],
        )
    rows = {row.pk: row for row in StoredMessage.objects.filter(pk__in=ids)}
    assert [rows[pk].uidl for pk in ids] == ["u1", "u2", "u3"]
    assert [rows[pk].subject for pk in ids] == ["small", "big", ""]
    assert [rows[pk].blob for pk in ids] == ["", name, ""]
    assert [raw_read(rows[pk]) for pk in ids] == [small, big, b"Sub:\n"]
    assert set(InlineRaw.objects.values_list("message_id", flat=True)) == {
        ids[0],
        ids[2],
    }


@pytest.mark.parametrize(("extra", "inline"), [(0, True), (1, False)])
def test_sent_and_drafts_copies_follow_the_threshold(user, settings, extra, inline):
    """A copy of exactly the limit is kept in the database, one byte more is
    a file; both read back as given and count towards the quota."""
    settings.WEBMAIL_STORE_INLINE_MAX_BYTES = 2000
    head = b"Subject: copy\r\n\r\n"
    data = head + b"z" * (2000 + extra - len(head))
    assert len(data) == 2000 + extra
    account = offline_pop_account(user)
    row = copy_add(user=user, account=account, use=Use.SENT, data=data)
    assert (row.blob == "") is inline
    assert len(store_files(settings)) == (0 if inline else 1)
    assert raw_read(row) == data
    assert row.subject == "copy"
    assert user_quota_get(user=user).used_bytes == len(data)


@pytest.mark.parametrize("size", [500, 5000], ids=["inline", "file"])
def test_a_copy_refused_for_quota_leaves_nothing(user, settings, size):
    """StoreFull: no row, no bytes, no file left behind."""
    settings.WEBMAIL_STORE_INLINE_MAX_BYTES = 2000
    user_quota_get(user=user)
    UserQuota.objects.filter(user=user).update(limit_mb=0)
    account = offline_pop_account(user)
    with pytest.raises(StoreFull):
        copy_add(user=user, account=account, use=Use.SENT, data=b"x" * size)
    assert not StoredMessage.objects.exists()
    assert not InlineRaw.objects.exists()
    assert store_files(settings) == []
