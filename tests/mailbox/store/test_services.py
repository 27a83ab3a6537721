"""Writes to the server-side store: folders, added messages, flags, moves, deletes."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from django.core.files.storage import default_storage
from django.db import transaction

from accounts.selectors import user_quota_get
from mailbox.store import services
from mailbox.store.models import ChangeCounter, LocalFolder, StoredMessage, UidlEntry
from tests.mailbox.store import offline_pop_account, store_eml

Use = LocalFolder.Use


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_special_folders_are_created_once(user):
    """Inbox, Sent, Drafts and Trash are made on first use, and only once."""
    first = services.folders_ensure(user=user)
    second = services.folders_ensure(user=user)
    assert {use: f.name for use, f in first.items()} == {
        Use.INBOX: "Inbox",
        Use.SENT: "Sent",
        Use.DRAFTS: "Drafts",
        Use.TRASH: "Trash",
    }
    assert {f.pk for f in first.values()} == {f.pk for f in second.values()}
    assert LocalFolder.objects.filter(user=user).count() == 4


def test_a_plain_folder_with_a_special_name_takes_the_role(user):
    """A "Trash" the user already had becomes the Trash instead of a duplicate."""
    own = LocalFolder.objects.create(user=user, name="Trash")
    assert services.folders_ensure(user=user)[Use.TRASH].pk == own.pk


def test_modseq_counts_up_per_user(user, other_user):
    """Each call returns the next value of the user's own counter."""
    assert [services.next_modseq(user=user) for _ in range(3)] == [1, 2, 3]
    assert services.next_modseq(user=other_user) == 1
    assert ChangeCounter.objects.get(user=user).value == 3


def test_message_add_fills_the_list_columns(user):
    """Subject, sender, recipients, Date, Message-ID and source come from the blob."""
    account = offline_pop_account(user)
    message = store_eml(user, "intl_headers.eml", account=account)
    assert message.subject == "Привет из Москвы"
    assert (message.from_name, message.from_email) == (
        "François Lefèvre",
        "francois@example.fr",
    )
    assert "taro@example.jp" in message.to_text
    assert '"Smith, John" <john@example.com>' in message.to_text
    assert message.date == datetime(2024, 5, 1, 14, 15, tzinfo=UTC)
    assert message.message_id
    assert message.source == "pop.example.net (Home)"
    assert message.modseq > 0
    assert not message.has_attachments


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("attachments.eml", True),
        ("forwarded.eml", True),
        ("toplevel_attachment.eml", True),
        ("related_cid.eml", False),  # inline pictures only
        ("alternative.eml", False),
        ("plain_utf8.eml", False),
    ],
)
def test_has_attachments_from_the_structure(user, sample, expected):
    """Non-inline parts and attached messages count; inline pictures do not."""
    assert store_eml(user, sample).has_attachments is expected


def test_large_message_is_described_from_its_header(user, settings):
    """Past 256 KiB only the header is read; multipart/mixed hints at attachments."""
    message = EmailMessage()
    message["From"] = "Big <big@example.com>"
    message["Subject"] = "Large"
    message.set_content("x" * 10)
    message.add_attachment(b"\0" * (400 * 1024), "application", "octet-stream")
    stored = store_eml(user, message.as_bytes())
    assert stored.subject == "Large"
    assert stored.from_email == "big@example.com"
    assert stored.has_attachments


@pytest.mark.parametrize(
    "raw", [b"", b"\x00\xff garbage", b"Subject: =?bogus?Q?x?=\r\n\r\n"]
)
def test_bad_message_still_gets_a_row(user, raw):
    """Whatever the bytes, message_add stores a row and never raises."""
    stored = store_eml(user, raw)
    assert StoredMessage.objects.filter(pk=stored.pk).exists()


def test_message_add_refuses_another_users_folder(user, other_user):
    """A folder of someone else is never filled."""
    theirs = services.folders_ensure(user=other_user)[Use.INBOX]
    with pytest.raises(ValueError, match="another user"), transaction.atomic():
        services.message_add(
            user=user,
            account=None,
            folder=theirs,
            uidl="x",
            blob_name="nothing.eml",
            size=1,
        )


def test_import_folder_is_created_or_the_inbox(user):
    """The account's import folder is made on demand; empty or INBOX means Inbox."""
    account = offline_pop_account(user)
    inbox = services.folders_ensure(user=user)[Use.INBOX]
    assert services.import_folder_for(account=account).pk == inbox.pk
    account.import_folder = "inbox"
    assert services.import_folder_for(account=account).pk == inbox.pk
    account.import_folder = "Lists/Python"
    folder = services.import_folder_for(account=account)
    assert folder.name == "Lists/Python"
    assert LocalFolder.objects.filter(user=user, name="Lists").exists()
    assert services.import_folder_for(account=account).pk == folder.pk


def test_flags_change_only_the_named_messages_and_bump_modseq(user, other_user):
    """Flags apply to the user's ids in that folder; others are ignored."""
    inbox = services.folders_ensure(user=user)[Use.INBOX]
    mine = store_eml(user, "plain_utf8.eml")
    theirs = store_eml(other_user, "plain_utf8.eml")
    changed = services.messages_set_flags(
        user=user, folder=inbox, ids=[mine.pk, theirs.pk], seen=True, flagged=True
    )
    assert changed == 1
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.seen
    assert mine.flagged
    assert not theirs.seen
    assert not theirs.flagged
    before = mine.modseq
    assert (
        services.messages_set_flags(user=user, folder=inbox, ids=[mine.pk], seen=True)
        == 0
    )
    services.messages_set_flags(user=user, folder=inbox, ids=[mine.pk], flagged=False)
    mine.refresh_from_db()
    assert mine.seen
    assert not mine.flagged
    assert mine.modseq > before


def test_move_between_folders(user):
    """Messages move to another of the user's folders; a new modseq marks the change."""
    folders = services.folders_ensure(user=user)
    archive = services.folder_create(user=user, name="Archive")
    message = store_eml(user, "plain_utf8.eml")
    assert (
        services.messages_move(
            user=user, folder=folders[Use.INBOX], ids=[message.pk], to_folder=archive
        )
        == 1
    )
    moved = StoredMessage.objects.get(pk=message.pk)
    assert moved.folder_id == archive.pk
    assert moved.modseq > message.modseq


def test_move_to_another_users_folder_is_refused(user, other_user):
    """A target folder of someone else raises and moves nothing."""
    inbox = services.folders_ensure(user=user)[Use.INBOX]
    theirs = services.folders_ensure(user=other_user)[Use.INBOX]
    message = store_eml(user, "plain_utf8.eml")
    with pytest.raises(ValueError, match="another user"):
        services.messages_move(
            user=user, folder=inbox, ids=[message.pk], to_folder=theirs
        )
    assert StoredMessage.objects.get(pk=message.pk).folder_id == inbox.pk


def test_delete_goes_to_trash_then_for_good(user, django_capture_on_commit_callbacks):
    """Delete moves to Trash; in Trash it removes row and blob, frees the quota,
    and marks the ledger entry so the importer never brings the message back."""
    account = offline_pop_account(user)
    folders = services.folders_ensure(user=user)
    message = store_eml(user, "attachments.eml", account=account)
    used = user_quota_get(user=user).used_bytes
    assert used == message.size
    services.messages_delete(user=user, folder=folders[Use.INBOX], ids=[message.pk])
    assert StoredMessage.objects.get(pk=message.pk).folder_id == folders[Use.TRASH].pk
    assert default_storage.exists(message.blob)

    with django_capture_on_commit_callbacks(execute=True):
        services.messages_delete(user=user, folder=folders[Use.TRASH], ids=[message.pk])
    assert not StoredMessage.objects.filter(pk=message.pk).exists()
    assert not default_storage.exists(message.blob)
    assert user_quota_get(user=user).used_bytes == 0
    entry = UidlEntry.objects.get(account=account, uidl=message.uidl)
    assert entry.state == UidlEntry.State.DELETED_HERE


def test_blobs_stay_when_the_transaction_rolls_back(
    user, django_capture_on_commit_callbacks
):
    """Blobs are deleted only after commit: a rollback leaves the mail intact."""
    trash = services.folders_ensure(user=user)[Use.TRASH]
    message = store_eml(user, "plain_utf8.eml", folder=trash)

    @transaction.atomic
    def delete_then_fail() -> None:
        services.messages_delete(user=user, folder=trash, ids=[message.pk])
        raise RuntimeError("boom")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        delete_then_fail()
    assert callbacks == []
    assert StoredMessage.objects.filter(pk=message.pk).exists()
    assert default_storage.exists(message.blob)


def test_trash_empty(user, other_user, django_capture_on_commit_callbacks):
    """Emptying the Trash deletes only the user's trashed mail, for good."""
    trash = services.folders_ensure(user=user)[Use.TRASH]
    trashed = [store_eml(user, "plain_utf8.eml", folder=trash) for _ in range(2)]
    kept = store_eml(user, "plain_utf8.eml")
    theirs = store_eml(
        other_user,
        "plain_utf8.eml",
        folder=services.folders_ensure(user=other_user)[Use.TRASH],
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.trash_empty(user=user) == 2
    assert not any(default_storage.exists(m.blob) for m in trashed)
    assert StoredMessage.objects.filter(pk__in=[kept.pk, theirs.pk]).count() == 2
    assert user_quota_get(user=user).used_bytes == kept.size


def test_folder_create_below_a_parent(user):
    """A folder is made at the top or below a parent, joined with "/"."""
    parent = services.folder_create(user=user, name="Projects")
    child = services.folder_create(user=user, name=" Été 2026 ", parent=parent)
    assert child.name == "Projects/Été 2026"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ("a/b", "cannot contain “/”"),
        ("tab\there", "control characters"),
        ("x" * 101, "at most 100 characters"),
        ("INBOX", "Inbox already exists"),
        ("Trash", "already exists"),
    ],
)
def test_folder_names_are_checked(user, name, message):
    """Bad names are refused with a message for the user."""
    services.folders_ensure(user=user)
    with pytest.raises(ValueError, match=message):
        services.folder_create(user=user, name=name)


def test_folder_rename_takes_its_children_along(user):
    """Renaming keeps the folder's id (its validity) and renames its subfolders."""
    parent = services.folder_create(user=user, name="Old")
    child = services.folder_create(user=user, name="Kid", parent=parent)
    grandchild = services.folder_create(user=user, name="Baby", parent=child)
    other = services.folder_create(user=user, name="Older")
    renamed = services.folder_rename(user=user, folder=parent, new_leaf="New")
    assert renamed.pk == parent.pk
    names = dict(LocalFolder.objects.filter(user=user).values_list("pk", "name"))
    assert names[parent.pk] == "New"
    assert names[child.pk] == "New/Kid"
    assert names[grandchild.pk] == "New/Kid/Baby"
    assert names[other.pk] == "Older"


def test_folder_rename_refusals(user):
    """Special folders, taken names and bad names cannot be renamed to."""
    folders = services.folders_ensure(user=user)
    services.folder_create(user=user, name="Taken")
    mine = services.folder_create(user=user, name="Mine")
    with pytest.raises(ValueError, match="special folder"):
        services.folder_rename(user=user, folder=folders[Use.SENT], new_leaf="Out")
    with pytest.raises(ValueError, match="already exists"):
        services.folder_rename(user=user, folder=mine, new_leaf="Taken")
    with pytest.raises(ValueError, match="cannot contain"):
        services.folder_rename(user=user, folder=mine, new_leaf="a/b")


def test_folder_delete_moves_its_mail_to_trash(user):
    """Deleting a folder keeps its mail: the messages go to the Trash."""
    folders = services.folders_ensure(user=user)
    doomed = services.folder_create(user=user, name="Doomed")
    message = store_eml(user, "plain_utf8.eml", folder=doomed)
    assert services.folder_delete(user=user, folder=doomed) == 1
    assert not LocalFolder.objects.filter(pk=doomed.pk).exists()
    assert StoredMessage.objects.get(pk=message.pk).folder_id == folders[Use.TRASH].pk


def test_folder_delete_refusals(user, other_user):
    """Special folders, folders with subfolders and others' folders stay."""
    folders = services.folders_ensure(user=user)
    parent = services.folder_create(user=user, name="Parent")
    services.folder_create(user=user, name="Child", parent=parent)
    with pytest.raises(ValueError, match="special folder"):
        services.folder_delete(user=user, folder=folders[Use.INBOX])
    with pytest.raises(ValueError, match="subfolders"):
        services.folder_delete(user=user, folder=parent)
    with pytest.raises(LocalFolder.DoesNotExist):
        services.folder_delete(user=other_user, folder=parent)
    assert LocalFolder.objects.filter(pk=parent.pk).exists()
