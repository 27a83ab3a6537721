"""The POP3 import against the private Dovecot: nothing lost, nothing twice."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from imapclient import IMAPClient

from accounts.models import AccountKind, AccountStatus, UserQuota
from mailbox import net
from mailbox.errors import ServerProblem
from mailbox.imap import pool
from mailbox.pop import importer
from mailbox.pop.lock import ImportBusy, account_lock
from mailbox.store.models import ImportJob, InlineRaw, StoredMessage, UidlEntry
from mailbox.store.raw import raw_read
from tests.conftest import make_account
from tests.data.loader import eml_names, load_eml

pytestmark = pytest.mark.usefixtures("trust_test_ca")


# -- a fault injector: a real TCP proxy that cuts the connection -----------------


class CuttingProxy:
    """Forwards a local port to ``target_port``; the first connection is cut
    after ``cut_after`` bytes from the server, later ones pass untouched."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept_loop)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        first = True
        while not self._closing:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            limit = self.cut_after if first else None
            first = False
            self._spawn(self._pump, downstream, upstream, None)
            self._spawn(self._pump, upstream, downstream, limit)

    def _pump(self, source, sink, limit) -> None:
        passed = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if limit is not None and passed + len(data) >= limit:
                    sink.sendall(data[: limit - passed])
                    self.cuts += 1
                    break
                sink.sendall(data)
                passed += len(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._closing = True
        self._listener.close()


# -- helpers ----------------------------------------------------------------------


def stored(account) -> list[str]:
    return list(
        StoredMessage.objects.filter(account=account).values_list("uidl", flat=True)
    )


def used_bytes(user) -> int:
    return UserQuota.objects.get(user=user).used_bytes


def stored_bytes(account) -> int:
    return sum(
        StoredMessage.objects.filter(account=account).values_list("size", flat=True)
    )


def keep_no_copy(account):
    account.leave_on_server = False
    account.save()
    return account


# -- the tests -------------------------------------------------------------------


def test_import_twice_stores_each_message_once(pop_account, dovecot):
    """A second run finds nothing new; a copy stays on the server."""
    dovecot.generate(pop_account.username, 5)
    job = importer.run(account_id=pop_account.pk)
    assert (job.status, job.total, job.done, job.imported) == ("done", 5, 5, 5)
    assert job.bytes == stored_bytes(pop_account) == used_bytes(pop_account.user)
    again = importer.run(account_id=pop_account.pk)
    assert (again.status, again.total, again.imported) == ("done", 0, 0)
    assert len(stored(pop_account)) == 5 == len(set(stored(pop_account)))
    assert UidlEntry.objects.filter(account=pop_account).count() == 5
    assert dovecot.count(pop_account.username) == 5
    pop_account.refresh_from_db()
    assert pop_account.last_import_at is not None
    assert pop_account.status == AccountStatus.OK


def test_five_hundred_messages(pop_account, dovecot, capsys):
    """500 messages are imported in one run (the rate is printed with -s)."""
    dovecot.generate(pop_account.username, 500)
    started = time.monotonic()
    job = importer.run(account_id=pop_account.pk)
    elapsed = time.monotonic() - started
    assert job.imported == 500
    with capsys.disabled():
        print(f"\n500 messages in {elapsed:.2f} s: {500 / elapsed:.0f} messages/s")


def test_without_a_copy_the_server_keeps_exactly_what_was_not_stored(
    pop_account, dovecot
):
    """With "leave a copy" off, every stored message (and only those) is removed."""
    keep_no_copy(pop_account)
    dovecot.generate(pop_account.username, 4)
    job = importer.run(account_id=pop_account.pk)
    assert (job.imported, job.removed_from_server) == (4, 4)
    assert dovecot.count(pop_account.username) == 0
    assert not UidlEntry.objects.filter(
        account=pop_account, removed_from_server_at=None
    ).exists()
    dovecot.generate(pop_account.username, 2)
    importer.run(account_id=pop_account.pk)
    assert len(stored(pop_account)) == 6
    assert dovecot.count(pop_account.username) == 0


def test_known_messages_are_removed_after_the_set_days(pop_account, dovecot):
    """With a copy kept for N days, older ledger entries are DELEd, newer kept."""
    dovecot.generate(pop_account.username, 3)
    importer.run(account_id=pop_account.pk)
    pop_account.remove_after_days = 7
    pop_account.save()
    old, *_recent = UidlEntry.objects.filter(account=pop_account).order_by("pk")
    UidlEntry.objects.filter(pk=old.pk).update(
        imported_at=old.imported_at - timedelta(days=8)
    )
    job = importer.run(account_id=pop_account.pk)
    assert (job.imported, job.removed_from_server) == (0, 1)
    assert dovecot.count(pop_account.username) == 2
    old.refresh_from_db()
    assert old.removed_from_server_at is not None
    assert len(stored(pop_account)) == 3


def test_deleted_mail_is_not_imported_again(pop_account, dovecot):
    """A message deleted here stays in the ledger and does not come back."""
    dovecot.generate(pop_account.username, 2)
    importer.run(account_id=pop_account.pk)
    message = StoredMessage.objects.filter(account=pop_account).first()
    UidlEntry.objects.filter(account=pop_account, uidl=message.uidl).update(
        state=UidlEntry.State.DELETED_HERE, message=None
    )
    message.delete()
    job = importer.run(account_id=pop_account.pk)
    assert job.imported == 0
    assert len(stored(pop_account)) == 1


def test_over_quota_stops_and_continues_once_there_is_room(pop_account, dovecot):
    """No room: the run stops, the rest stays on the server, the user is told;
    with more room the next run imports the rest."""
    keep_no_copy(pop_account)
    UserQuota.objects.update_or_create(user=pop_account.user, defaults={"limit_mb": 1})
    dovecot.generate(pop_account.username, 4, size=300_000)
    job = importer.run(account_id=pop_account.pk)
    assert job.status == ImportJob.Status.OVER_QUOTA
    assert (job.imported, job.total) == (3, 4)
    assert dovecot.count(pop_account.username) == 1
    assert used_bytes(pop_account.user) == stored_bytes(pop_account)
    pop_account.refresh_from_db()
    assert "1 messages were left on the server" in pop_account.status_detail

    UserQuota.objects.filter(user=pop_account.user).update(limit_mb=10)
    job = importer.run(account_id=pop_account.pk)
    assert (job.status, job.imported) == ("done", 1)
    assert dovecot.count(pop_account.username) == 0
    assert len(set(stored(pop_account))) == 4
    assert used_bytes(pop_account.user) == stored_bytes(pop_account)
    pop_account.refresh_from_db()
    assert pop_account.status_detail == ""


@pytest.mark.parametrize(
    ("count", "size", "cut_after"),
    [(10, 200_000, 900_000), (100, 4_000, 200_000)],
    ids=["files", "inline"],
)
def test_a_connection_cut_during_retr_loses_nothing_and_duplicates_nothing(
    pop_account, dovecot, count, size, cut_after
):
    """The cut run raises ServerProblem (retry); the rerun completes the set.
    Large messages are blob files, small ones rows of the database."""
    keep_no_copy(pop_account)
    dovecot.generate(pop_account.username, count, size=size)
    proxy = CuttingProxy(dovecot.pop3_port, cut_after=cut_after)
    try:
        pop_account.port = proxy.port
        pop_account.save()
        with pytest.raises(ServerProblem):
            importer.run(account_id=pop_account.pk)
        assert proxy.cuts == 1
        failed = ImportJob.objects.get(account=pop_account)
        assert failed.status == ImportJob.Status.FAILED
        assert failed.error
        first = len(stored(pop_account))
        assert 0 < first < count
        # No QUIT: the server still has every message.
        assert dovecot.count(pop_account.username) == count
        job = importer.run(account_id=pop_account.pk)
    finally:
        proxy.close()
    assert job.imported == count - first
    assert len(stored(pop_account)) == count == len(set(stored(pop_account)))
    assert dovecot.count(pop_account.username) == 0
    assert used_bytes(pop_account.user) == stored_bytes(pop_account)
    inline = size <= importer.inline_max_bytes()
    assert all(
        (message.blob == "") is inline and raw_read(message)
        for message in StoredMessage.objects.filter(account=pop_account)
    )


def test_a_refused_login_is_recorded_and_not_retried(pop_account, dovecot):
    """Wrong password: job and account LOGIN_FAILED, nothing raised."""
    pop_account.set_password("wrong")
    pop_account.save()
    job = importer.run(account_id=pop_account.pk)
    assert job.status == ImportJob.Status.LOGIN_FAILED
    assert job.error
    pop_account.refresh_from_db()
    assert pop_account.status == AccountStatus.LOGIN_FAILED
    assert pop_account.status_detail


def test_malformed_messages_are_stored_and_block_nothing(pop_account, dovecot):
    """Every sample, broken or not, is stored."""
    names = eml_names()
    dovecot.deliver(pop_account.username, *(load_eml(name) for name in names))
    job = importer.run(account_id=pop_account.pk)
    assert (job.imported, job.failed) == (len(names), 0)
    assert len(stored(pop_account)) == len(names)


def test_a_thirty_megabyte_message_is_imported(pop_account, dovecot):
    """A large message goes through the whole import."""
    dovecot.generate(pop_account.username, 1, size=30 * 1024 * 1024)
    job = importer.run(account_id=pop_account.pk)
    assert job.imported == 1
    assert job.bytes > 30 * 1024 * 1024


def test_import_into_an_imap_folder(pop_account, dovecot, user, monkeypatch):
    """Messages are APPENDed to the target folder; the ledger holds the
    APPENDUID before the DELE; the store and its quota are untouched."""
    target_user = dovecot.new_user()
    target = make_account(user, dovecot, target_user, kind=AccountKind.IMAP)
    keep_no_copy(pop_account)
    pop_account.import_imap_account = target
    pop_account.import_folder = "Imported"
    pop_account.save()
    dovecot.generate(pop_account.username, 3)

    seen_before_dele = []

    def check(uidl):
        entry = UidlEntry.objects.get(account=pop_account, uidl=uidl)
        seen_before_dele.append((entry.imap_uidvalidity, entry.imap_uid))
        assert dovecot.count(pop_account.username) == 3

    monkeypatch.setattr(importer, "_after_commit", check)
    try:
        job = importer.run(account_id=pop_account.pk)
    finally:
        pool.close_all()
    assert job.imported == 3
    assert all(validity and uid for validity, uid in seen_before_dele)
    assert dovecot.count(pop_account.username) == 0
    assert dovecot.count(target_user.username, "Imported") == 3
    assert StoredMessage.objects.filter(account=pop_account).count() == 0

    with IMAPClient(dovecot.host, dovecot.imap_port, ssl=False) as imap:
        imap.starttls(net.tls_context())
        imap.login(target_user.username, target_user.password)
        info = imap.select_folder("Imported", readonly=True)
        uids = sorted(imap.search(["ALL"]))
    ledger = UidlEntry.objects.filter(account=pop_account)
    assert sorted(ledger.values_list("imap_uid", flat=True)) == uids
    assert set(ledger.values_list("imap_uidvalidity", flat=True)) == {
        info[b"UIDVALIDITY"]
    }


def test_a_crash_between_append_and_commit_appends_no_second_copy(
    pop_account, dovecot, user, monkeypatch
):
    """After a run died between APPEND and its ledger commit, the next run finds
    the copy by Message-ID and size in the target folder instead of appending."""
    target_user = dovecot.new_user()
    target = make_account(user, dovecot, target_user, kind=AccountKind.IMAP)
    pop_account.import_imap_account = target
    pop_account.save()
    dovecot.generate(pop_account.username, 3)
    real_ledger_add = importer._ledger_add
    calls = []

    def crash_on_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise SystemExit("worker killed")
        real_ledger_add(*args, **kwargs)

    monkeypatch.setattr(importer, "_ledger_add", crash_on_second)
    try:
        with pytest.raises(SystemExit):
            importer.run(account_id=pop_account.pk)
        monkeypatch.undo()
        assert dovecot.count(target_user.username) == 2
        job = importer.run(account_id=pop_account.pk)
    finally:
        pool.close_all()
    assert job.imported == 2
    assert dovecot.count(target_user.username) == 3
    uids = UidlEntry.objects.filter(account=pop_account).values_list(
        "imap_uid", flat=True
    )
    assert sorted(uids) == [1, 2, 3]


@pytest.mark.parametrize("use_redis", [True, False], ids=["redis", "file"])
def test_a_second_import_of_one_account_is_refused(
    pop_account, dovecot, settings, redis_url, use_redis
):
    """While one import holds the account, another raises ImportBusy and
    touches nothing."""
    settings.REDIS_URL = redis_url if use_redis else ""
    dovecot.generate(pop_account.username, 2)
    waiting = ImportJob.objects.create(account=pop_account)
    with account_lock(pop_account.pk), pytest.raises(ImportBusy):
        importer.run(account_id=pop_account.pk, job_id=waiting.pk)
    assert stored(pop_account) == []
    waiting.refresh_from_db()
    assert (waiting.status, waiting.imported) == (ImportJob.Status.DONE, 0)
    # Released: the next run imports.
    assert importer.run(account_id=pop_account.pk).imported == 2


@pytest.mark.parametrize("size", [2_000, 100_000], ids=["inline", "files"])
@pytest.mark.parametrize("hook", ["_after_retrieve", "_after_commit", "_before_quit"])
def test_a_crash_then_a_rerun_imports_each_message_exactly_once(
    pop_account, dovecot, monkeypatch, hook, size
):
    """A worker dying after RETR, after the commit or before QUIT (DELEs sent)
    leaves the store and the server so that the next run completes them once,
    small messages (in the database) and large ones (files) alike."""
    keep_no_copy(pop_account)
    dovecot.generate(pop_account.username, 5, size=size)
    calls = []

    def crash(*args):
        calls.append(args)
        if len(calls) == 3 or hook == "_before_quit":
            raise SystemExit("worker killed")

    monkeypatch.setattr(importer, hook, crash)
    with pytest.raises(SystemExit):
        importer.run(account_id=pop_account.pk)
    monkeypatch.undo()
    # The server deleted nothing: there was no QUIT.
    assert dovecot.count(pop_account.username) == 5
    job = importer.run(account_id=pop_account.pk)
    assert job.status == ImportJob.Status.DONE
    assert len(stored(pop_account)) == 5 == len(set(stored(pop_account)))
    assert dovecot.count(pop_account.username) == 0
    assert used_bytes(pop_account.user) == stored_bytes(pop_account)
    crashed = ImportJob.objects.exclude(pk=job.pk).get(account=pop_account)
    assert crashed.status == ImportJob.Status.FAILED  # closed by the rerun


def _blob_files(settings) -> list:
    root = Path(settings.MEDIA_ROOT) / "store"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.mark.parametrize("depth", [1, 3])
def test_batches_cut_short_by_time_import_every_message_once(
    pop_account, dovecot, monkeypatch, depth
):
    """With the batch time already up, each batch sends only its first RETRs
    (one, or one pipeline's worth), reads every answer it asked for, and the
    next batch reserves and fetches the rest: each message once, none lost,
    the usage exact. Depth 1 is a server without PIPELINING."""
    keep_no_copy(pop_account)
    dovecot.generate(pop_account.username, 10)
    monkeypatch.setattr(importer, "_BATCH_SECONDS", 0.0)
    monkeypatch.setattr(importer.pop, "pipeline_depth", lambda client: depth)
    batches = []
    real = importer._import_batch

    def counting(state, client, batch):
        handled = real(state, client, batch)
        batches.append(handled)
        return handled

    monkeypatch.setattr(importer, "_import_batch", counting)
    job = importer.run(account_id=pop_account.pk)
    assert (job.status, job.imported, job.done) == ("done", 10, 10)
    assert batches == [depth] * (10 // depth) + ([10 % depth] if 10 % depth else [])
    assert len(stored(pop_account)) == 10 == len(set(stored(pop_account)))
    assert dovecot.count(pop_account.username) == 0
    assert used_bytes(pop_account.user) == stored_bytes(pop_account)


def test_blobs_that_cannot_be_made_durable_commit_nothing(
    pop_account, dovecot, monkeypatch, settings, tmp_path
):
    """A disk that refuses to sync the batch's blobs: no row, no ledger entry,
    no usage, no DELE, the blobs removed; the next run imports them all.
    (Messages larger than the inline limit: small ones have no blob.)

    The sync error is injected (STYLE §7: a fault the test machine's disk
    cannot be made to produce on demand).
    """
    settings.MEDIA_ROOT = tmp_path / "media"
    keep_no_copy(pop_account)
    dovecot.generate(
        pop_account.username, 5, size=settings.WEBMAIL_STORE_INLINE_MAX_BYTES + 1000
    )

    def refuse(self):
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr(importer.blobs.DurableBatch, "wait", refuse)
        with pytest.raises(OSError, match="Input/output error"):
            importer.run(account_id=pop_account.pk)
    assert stored(pop_account) == []
    assert not UidlEntry.objects.filter(account=pop_account).exists()
    assert used_bytes(pop_account.user) == 0
    assert _blob_files(settings) == []
    assert dovecot.count(pop_account.username) == 5
    job = importer.run(account_id=pop_account.pk)
    assert job.imported == 5
    assert len(_blob_files(settings)) == 5
    assert dovecot.count(pop_account.username) == 0


def test_imported_blobs_are_the_messages_as_the_server_sent_them(pop_account, dovecot):
    """Each stored blob holds its message's bytes, CRLF lines, dots unstuffed."""
    dovecot.deliver(
        pop_account.username,
        b"Subject: one\n\n.dot\n..two\nend\n",
        b"Subject: two\nFrom: A B <a@example.org>\n\nbody\n",
    )
    importer.run(account_id=pop_account.pk)
    blobs_by_subject = {
        message.subject: raw_read(message)
        for message in StoredMessage.objects.filter(account=pop_account)
    }
    assert blobs_by_subject == {
        "one": b"Subject: one\r\n\r\n.dot\r\n..two\r\nend\r\n",
        "two": b"Subject: two\r\nFrom: A B <a@example.org>\r\n\r\nbody\r\n",
    }
    two = StoredMessage.objects.get(account=pop_account, subject="two")
    assert (two.from_name, two.from_email) == ("A B", "a@example.org")


# -- small messages in the database, larger ones in files -------------------------


def sized_message(size: int, tag: str) -> bytes:
    """A message of exactly ``size`` bytes once its lines end in CRLF (as POP3
    sends it), written with LF line ends (as in the Maildir)."""
    head = f"Subject: {tag}\nMessage-ID: <{tag}@example.test>\n\n".encode()
    remaining = size - len(head) - head.count(b"\n")
    assert remaining >= 2
    lines = []
    while remaining:
        width = remaining - 2 if remaining <= 78 else 76
        if remaining - (width + 2) == 1:
            width -= 1
        lines.append(b"x" * width + b"\n")
        remaining -= width + 2
    data = head + b"".join(lines)
    assert len(data) + data.count(b"\n") == size
    return data


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def attached(subject: str, payload: bytes) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "Ann <ann@example.net>"
    message["To"] = "me@example.test"
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject}@example.test>"
    message.set_content("See the attachment.")
    message.add_attachment(
        payload, maintype="application", subtype="octet-stream", filename="data.bin"
    )
    return message.as_bytes()


def test_small_and_large_messages_side_by_side_read_back_byte_identical(
    pop_account, dovecot, settings, tmp_path
):
    """A small message is kept in the database (no file), a large one in a
    file; raw source, parsed message and attachment of each are what the
    server sent."""
    from mailbox.store.source import StoreSource

    settings.MEDIA_ROOT = tmp_path / "media"
    limit = settings.WEBMAIL_STORE_INLINE_MAX_BYTES
    small_payload = bytes(range(256)) * 4
    large_payload = bytes(range(256)) * (limit // 256 + 100)
    small = attached("small", small_payload)
    large = attached("large", large_payload)
    assert len(_crlf(small)) <= limit < len(_crlf(large))
    dovecot.deliver(pop_account.username, small, large)
    job = importer.run(account_id=pop_account.pk)
    assert job.imported == 2
    rows = {m.subject: m for m in StoredMessage.objects.filter(account=pop_account)}
    assert rows["small"].blob == ""
    assert InlineRaw.objects.filter(message=rows["small"]).exists()
    assert rows["large"].blob
    assert not InlineRaw.objects.filter(message=rows["large"]).exists()
    assert len(_blob_files(settings)) == 1
    assert rows["small"].has_attachments
    assert rows["large"].has_attachments

    source = StoreSource(pop_account)
    for subject, sent, payload in (
        ("small", small, small_payload),
        ("large", large, large_payload),
    ):
        row = rows[subject]
        validity = row.folder_id
        raw = b"".join(source.raw("INBOX", row.pk, validity=validity))
        assert raw == _crlf(sent)
        assert row.size == len(raw)
        parsed = source.message("INBOX", row.pk, validity=validity).parsed
        assert parsed.subject == subject
        assert "See the attachment." in parsed.text
        [info] = [a for a in parsed.attachments if a.filename == "data.bin"]
        download = source.attachment("INBOX", row.pk, info.part_id, validity=validity)
        assert b"".join(download.chunks) == payload
    assert used_bytes(pop_account.user) == stored_bytes(pop_account)


@pytest.mark.parametrize(("extra", "inline"), [(-1, True), (0, True), (1, False)])
def test_the_inline_limit_is_inclusive(
    pop_account, dovecot, settings, tmp_path, extra, inline
):
    """A message of exactly WEBMAIL_STORE_INLINE_MAX_BYTES is kept in the
    database; one byte more is a file."""
    settings.MEDIA_ROOT = tmp_path / "media"
    size = settings.WEBMAIL_STORE_INLINE_MAX_BYTES + extra
    data = sized_message(size, f"boundary{extra + 1}")
    dovecot.deliver(pop_account.username, data)
    assert importer.run(account_id=pop_account.pk).imported == 1
    [row] = StoredMessage.objects.filter(account=pop_account)
    assert row.size == size
    assert (row.blob == "") is inline
    assert InlineRaw.objects.filter(message=row).exists() is inline
    assert len(_blob_files(settings)) == (0 if inline else 1)
    assert raw_read(row) == _crlf(data)


def test_a_message_announced_small_but_delivered_big_goes_to_a_file(
    pop_account, dovecot, monkeypatch, settings, tmp_path
):
    """LIST sizes that lie low: a message that grows past the limit while it
    arrives moves to a file and is stored intact; the usage is what was
    written. (Dovecot reports true sizes, so the LIST answer is replaced.)"""
    settings.MEDIA_ROOT = tmp_path / "media"
    keep_no_copy(pop_account)
    limit = settings.WEBMAIL_STORE_INLINE_MAX_BYTES
    big = sized_message(3 * limit, "liar")
    small = sized_message(1000, "honest")
    dovecot.deliver(pop_account.username, big, small)
    real_sizes = importer.pop.sizes
    monkeypatch.setattr(
        importer.pop,
        "sizes",
        lambda client: dict.fromkeys(real_sizes(client), 100),
    )
    job = importer.run(account_id=pop_account.pk)
    assert (job.imported, job.failed) == (2, 0)
    rows = {m.subject: m for m in StoredMessage.objects.filter(account=pop_account)}
    assert rows["liar"].blob
    assert rows["honest"].blob == ""
    assert raw_read(rows["liar"]) == _crlf(big)
    assert raw_read(rows["honest"]) == _crlf(small)
    assert [path.read_bytes() for path in _blob_files(settings)] == [_crlf(big)]
    assert used_bytes(pop_account.user) == stored_bytes(pop_account) == 3 * limit + 1000
    assert dovecot.count(pop_account.username) == 0
    # Nothing left in the download folder either.
    assert not any((Path(settings.MEDIA_ROOT) / "tmp").glob("*"))


def test_deleting_imported_small_messages_frees_the_quota_and_touches_no_file(
    pop_account, dovecot, settings, tmp_path
):
    """Small imported messages make no file; deleted for good, their rows and
    bytes go, the usage drops to zero and they are not imported again."""
    from mailbox.store import services

    settings.MEDIA_ROOT = tmp_path / "media"
    dovecot.generate(pop_account.username, 3, size=4000)
    assert importer.run(account_id=pop_account.pk).imported == 3
    assert _blob_files(settings) == []
    assert InlineRaw.objects.count() == 3
    assert used_bytes(pop_account.user) == stored_bytes(pop_account) > 0
    user = pop_account.user
    folders = services.folders_ensure(user=user)
    ids = list(StoredMessage.objects.filter(user=user).values_list("pk", flat=True))
    services.messages_delete(user=user, folder=folders["inbox"], ids=ids)
    services.messages_delete(user=user, folder=folders["trash"], ids=ids)
    assert not StoredMessage.objects.filter(user=user).exists()
    assert not InlineRaw.objects.exists()
    assert used_bytes(user) == 0
    assert _blob_files(settings) == []
    assert importer.run(account_id=pop_account.pk).imported == 0


def test_a_batch_of_small_messages_needs_no_sync(pop_account, dovecot, monkeypatch):
    """Only blob files are made durable before the commit: a batch of small
    messages asks the disk for nothing."""
    dovecot.generate(pop_account.username, 5, size=3000)
    synced = []
    real = importer.blobs.DurableBatch.add
    monkeypatch.setattr(
        importer.blobs.DurableBatch,
        "add",
        lambda self, *args: synced.append(args) or real(self, *args),
    )
    assert importer.run(account_id=pop_account.pk).imported == 5
    assert synced == []
