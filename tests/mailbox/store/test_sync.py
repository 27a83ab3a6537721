"""Delta sync of store folders: imports, flag changes, deletions and moves."""

from __future__ import annotations

import secrets
from datetime import timedelta
from email.message import EmailMessage

import pytest
from django.db import transaction

from mailbox import tasks
from mailbox.sources import BadSyncState, Changes, FolderChanged
from mailbox.store import blobs, services
from mailbox.store import sync as store_sync
from mailbox.store.models import LocalFolder, StoreTombstone
from mailbox.store.source import StoreSource
from tests.mailbox.store import offline_pop_account, store_eml


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def source(user) -> StoreSource:
    return StoreSource(offline_pop_account(user))


def make(subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.net>"
    message["To"] = "me@example.test"
    message["Subject"] = subject
    message.set_content("Hi")
    return message.as_bytes()


def inbox(user) -> LocalFolder:
    return services.folders_ensure(user=user)[LocalFolder.Use.INBOX]


def trash(user) -> LocalFolder:
    return services.folders_ensure(user=user)[LocalFolder.Use.TRASH]


def empty(result: Changes) -> bool:
    return (result.added, result.changed, result.removed) == ((), (), ())


def test_no_since_gives_only_a_state(user, source):
    """Without a state: no lists, the folder's validity and a state."""
    store_eml(user, make("one"))
    result = source.changes("INBOX", None)
    assert result.state
    assert result.validity == inbox(user).pk
    assert empty(result)
    assert not result.full_resync
    assert empty(source.changes("INBOX", result.state))


def test_imported_mail_is_added_once(user, source):
    """Imported mail comes back in added with its list headers, then not again."""
    store_eml(user, make("old"))
    first = source.changes("INBOX", None)
    new = store_eml(user, make("new"))
    result = source.changes("INBOX", first.state)
    assert [(m.uid, m.subject) for m in result.added] == [(new.pk, "new")]
    assert result.changed == ()
    assert result.removed == ()
    assert empty(source.changes("INBOX", result.state))


def test_bulk_imported_mail_is_added(user, source):
    """Rows of one batch insert (the POP importer's path) are all added."""
    first = source.changes("INBOX", None)
    items = []
    for subject in ("a", "b"):
        path = blobs.temp_dir() / f"test-{secrets.token_hex(8)}.part"
        path.write_bytes(make(subject))
        name = blobs.blob_save(path, user_id=user.pk)
        items.append((secrets.token_hex(8), name, len(make(subject))))
    with transaction.atomic():
        ids = services.messages_add(
            user=user, account=None, folder=inbox(user), items=items
        )
    result = source.changes("INBOX", first.state)
    assert sorted(m.uid for m in result.added) == sorted(ids)
    assert [m.subject for m in result.added] == ["a", "b"]


def test_flag_changes_are_changed(user, source):
    """Flag changes (also opening a message) of mail already synced: changed."""
    one = store_eml(user, make("one"))
    two = store_eml(user, make("two"))
    first = source.changes("INBOX", None)
    source.set_flags("INBOX", [one.pk], validity=inbox(user).pk, flagged=True)
    source.message("INBOX", two.pk, validity=inbox(user).pk)  # marks it seen
    result = source.changes("INBOX", first.state)
    changed = {c.uid: c for c in result.changed}
    assert set(changed) == {one.pk, two.pk}
    assert changed[one.pk].flagged
    assert not changed[one.pk].seen
    assert changed[two.pk].seen
    assert result.added == ()
    assert result.removed == ()


def test_mail_new_since_the_state_stays_added_after_a_flag_change(user, source):
    """A message imported and then flagged after the state is added, not changed."""
    first = source.changes("INBOX", None)
    new = store_eml(user, make("new"))
    source.set_flags("INBOX", [new.pk], validity=inbox(user).pk, seen=True)
    result = source.changes("INBOX", first.state)
    assert [(m.uid, m.seen) for m in result.added] == [(new.pk, True)]
    assert result.changed == ()


def test_delete_removes_from_the_folder_and_adds_to_the_trash(user, source):
    """Delete: removed from the Inbox, added to the Trash; purged: removed there."""
    keep = store_eml(user, make("keep"))
    gone = store_eml(user, make("gone"))
    in_inbox = source.changes("INBOX", None)
    in_trash = source.changes("Trash", None)
    source.delete("INBOX", [gone.pk], validity=inbox(user).pk)
    result = source.changes("INBOX", in_inbox.state)
    assert list(result.removed) == [gone.pk]
    assert result.added == ()
    trash_result = source.changes("Trash", in_trash.state)
    assert [m.uid for m in trash_result.added] == [gone.pk]
    source.delete("Trash", [gone.pk], validity=trash(user).pk)
    purged = source.changes("Trash", trash_result.state)
    assert list(purged.removed) == [gone.pk]
    assert keep.pk not in purged.removed
    assert empty(source.changes("INBOX", result.state))


def test_emptying_the_trash_removes_all(user, source):
    """Emptying the Trash reports every message it held as removed."""
    a = store_eml(user, make("a"), folder=trash(user))
    b = store_eml(user, make("b"), folder=trash(user))
    first = source.changes("Trash", None)
    services.trash_empty(user=user)
    assert sorted(source.changes("Trash", first.state).removed) == [a.pk, b.pk]


def test_move_out_and_back(user, source):
    """Moved out: removed; moved back in: added again and not removed."""
    work = services.folder_create(user=user, name="Work")
    message = store_eml(user, make("m"))
    first = source.changes("INBOX", None)
    source.move("INBOX", [message.pk], validity=inbox(user).pk, to_folder="Work")
    out = source.changes("INBOX", first.state)
    assert list(out.removed) == [message.pk]
    source.move("Work", [message.pk], validity=work.pk, to_folder="INBOX")
    back = source.changes("INBOX", first.state)
    assert [m.uid for m in back.added] == [message.pk]
    assert back.removed == ()


def test_deleted_or_remade_folder_is_a_full_resync(user, source):
    """A folder that is gone: full resync without state; made again under the
    same name (a new id): full resync with a fresh state."""
    work = services.folder_create(user=user, name="Work")
    first = source.changes("Work", None)
    services.folder_delete(user=user, folder=work)
    gone = source.changes("Work", first.state)
    assert gone.full_resync
    assert gone.state is None
    with pytest.raises(FolderChanged):
        source.changes("Work", None)
    again = services.folder_create(user=user, name="Work")
    remade = source.changes("Work", first.state)
    assert remade.full_resync
    assert remade.validity == again.pk
    assert not source.changes("Work", remade.state).full_resync


def test_state_older_than_pruned_tombstones_is_a_full_resync(user, source):
    """Once tombstones after a state are pruned, the state gets a full resync;
    a state newer than the pruning still diffs."""
    a = store_eml(user, make("a"))
    first = source.changes("INBOX", None)
    source.delete("INBOX", [a.pk], validity=inbox(user).pk)
    StoreTombstone.objects.update(
        created_at=StoreTombstone.objects.get().created_at - timedelta(days=90)
    )
    assert tasks.prune_sync_tombstones() == 1  # beyond the 60-day window
    later = source.changes("INBOX", None)
    result = source.changes("INBOX", first.state)
    assert result.full_resync
    assert empty(result)
    assert not source.changes("INBOX", later.state).full_resync


def test_added_come_in_chunks(user, source, monkeypatch):
    """Over the limit, added is cut with more; the next states bring the rest,
    and a message sent in a chunk whose flags change meanwhile comes again."""
    monkeypatch.setattr(store_sync, "ADDED_LIMIT", 2)
    first = source.changes("INBOX", None)
    rows = [store_eml(user, make(f"m{i}")) for i in range(5)]
    one = source.changes("INBOX", first.state)
    assert [m.uid for m in one.added] == [r.pk for r in rows[:2]]
    assert one.more
    source.set_flags("INBOX", [rows[0].pk], validity=inbox(user).pk, flagged=True)
    sent = [m.uid for m in one.added]
    flagged_again = False
    state = one.state
    result = one
    while result.more:
        result = source.changes("INBOX", state)
        sent += [m.uid for m in result.added]
        flagged_again |= any(m.uid == rows[0].pk and m.flagged for m in result.added)
        state = result.state
    assert sorted(set(sent)) == [r.pk for r in rows]
    assert flagged_again
    assert empty(source.changes("INBOX", state))


def test_too_many_changes_is_a_full_resync(user, source, monkeypatch):
    """A diff larger than the limit is answered with a full resync."""
    monkeypatch.setattr(store_sync, "CHANGES_LIMIT", 1)
    rows = [store_eml(user, make(str(i))) for i in range(2)]
    first = source.changes("INBOX", None)
    source.set_flags("INBOX", [r.pk for r in rows], validity=inbox(user).pk, seen=True)
    result = source.changes("INBOX", first.state)
    assert result.full_resync
    assert result.changed == ()


def test_foreign_and_forged_states_are_refused(user, other_user, source):
    """Tokens not signed here, of another folder or of another user's account
    raise BadSyncState."""
    first = source.changes("INBOX", None)
    for bad in ("", "x", first.state + "x", first.state[:-3]):
        with pytest.raises(BadSyncState):
            source.changes("INBOX", bad)
    with pytest.raises(BadSyncState):
        source.changes("Trash", first.state)
    theirs = StoreSource(offline_pop_account(other_user))
    with pytest.raises(BadSyncState):
        theirs.changes("INBOX", first.state)


def test_long_folder_names_make_short_states(user, source):
    """A state does not grow with its folder's name, and works for it."""
    name = "Ü" * 100
    services.folder_create(user=user, name=name)
    first = source.changes(name, None)
    assert len(first.state) < 200
    assert not source.changes(name, first.state).full_resync


def test_a_replaced_draft_is_removed_and_an_answer_is_a_change(user, source):
    """Compose's own store writes follow the sync rules: a draft replaced by a
    newer version is a removal, a reply's \\Answered a change, not an arrival."""
    from mailbox.compose import store as compose_store

    account = source.account
    draft = compose_store.copy_add(
        user=user, account=account, use=LocalFolder.Use.DRAFTS, data=make("v1")
    )
    original = compose_store.copy_add(
        user=user, account=account, use=LocalFolder.Use.SENT, data=make("Hello")
    )
    drafts = source.changes("Drafts", None).state
    sent = source.changes("Sent", None).state

    compose_store.copy_remove(user=user, message_id=draft.pk)
    compose_store.answered_set(user=user, message_id=original.pk)

    assert list(source.changes("Drafts", drafts).removed) == [draft.pk]
    delta = source.changes("Sent", sent)
    assert [change.uid for change in delta.changed] == [original.pk]
    assert not delta.added
