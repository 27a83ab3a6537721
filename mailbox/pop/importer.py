"""POP3 import: nothing lost, nothing twice (DESIGN.md, "POP path").

One run, under the account's lock (``lock.account_lock``):

1. Log in. A refused login ends the run: job and account LOGIN_FAILED, nothing
   raised (a retry cannot heal it). Any other connection problem is recorded on
   the job and raised as ``ServerProblem`` for the task to retry.
2. UIDL against the ledger (``UidlEntry``): the new messages, in server order.
3. In batches (up to 300 messages, 20 MB of LIST sizes or 2 s of downloading;
   see "the store: in batches" below): reserve their LIST sizes in the user's
   quota (no room for the next one: stop, job OVER_QUOTA, the rest stays on
   the server); RETR each (pipelined when the server offers PIPELINING): a
   small one (``store.raw.inline_max_bytes``) into memory, a larger one
   streamed straight into its blob file; make the batch's blobs durable
   together; then in ONE transaction their message rows, the small ones'
   bytes and ledger rows (the reservations are now usage) and the job's
   progress. A failure before the commit gives the reservations back and
   deletes the blobs. With an IMAP target account each message is read into
   memory (a large one streamed into a temporary file first) and APPENDed
   there instead, one at a time (no local quota), and its ledger row records
   the APPENDUID.
4. Only after that commit, if the account keeps no copy on the server, DELE.
   Messages already in the ledger that are still on the server are DELEd too
   when no copy is kept, or when ``remove_after_days`` is set and they were
   imported longer ago than that.
5. QUIT, which makes the DELEs take effect; ``removed_from_server_at`` is set
   only once the server confirmed the QUIT.

A crash anywhere leaves either nothing or a committed message (a blob without
a row is an orphan that holds no quota; a small message's bytes are only ever
in the transaction that adds its row); the next run skips what the ledger has,
so it finishes the job with no loss and no duplicate. The one window left is
the IMAP target: a crash between the APPEND and the ledger commit. The next
run sees the previous job unfinished and, before each APPEND, looks for the
message's Message-ID in the target folder, so that window costs no duplicate
either for messages that have a Message-ID.

A message the server refuses to send (``-ERR`` on RETR) counts as failed and the
run goes on; a lost connection stops the run and raises ``ServerProblem``.
Logs carry ids and counts only.
"""

from __future__ import annotations

import contextlib
import logging
import poplib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from imapclient.exceptions import IMAPClientError

from accounts.models import AccountStatus, MailAccount, UserQuota
from accounts.servers import ServerSettings
from mailbox import net, oauth, quota
from mailbox.errors import Problem, ServerProblem
from mailbox.pop import client as pop
from mailbox.pop.lock import ImportBusy, account_lock
from mailbox.store import blobs
from mailbox.store.models import ImportJob, LocalFolder, UidlEntry
from mailbox.store.raw import inline_max_bytes
from mailbox.store.services import (
    HEADER_PARSE_LIMIT,
    MessageColumns,
    describe,
    import_folder_for,
    ledger_add,
    message_add,
    messages_add,
)

logger = logging.getLogger(__name__)

__all__ = ["ImportBusy", "run"]

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.M)
_HEAD_SCAN = 256 * 1024


# -- hook points (no-ops; crash tests replace them) ---------------------------


def _after_retrieve(path: Path | None) -> None:
    """Called when a message is downloaded (to ``path``, or None: in memory),
    before it is stored."""


def _after_commit(uidl: str) -> None:
    """Called after a message's ledger row is committed, before its DELE."""


def _before_quit() -> None:
    """Called after the last DELE, before QUIT."""


# -- the run ------------------------------------------------------------------


@dataclass
class _Run:
    account: MailAccount
    job: ImportJob
    counts: dict[str, int] = field(
        default_factory=lambda: {"done": 0, "imported": 0, "failed": 0, "bytes": 0}
    )
    deleted: list[str] = field(default_factory=list)  # uidls DELEd this session
    folder: LocalFolder | None = None
    check_target: bool = False  # the previous run died: look before APPEND
    depth: int = 1  # RETRs in flight (pop.pipeline_depth)
    inline_max: int = 0  # messages up to this size are kept in memory

    def is_small(self, size: int) -> bool:
        """Whether a message of LIST size ``size`` is read into memory."""
        return self.inline_max > 0 and size <= self.inline_max

    def save_progress(self) -> None:
        ImportJob.objects.filter(pk=self.job.pk).update(**self.counts)


def run(
    *, account_id: int, job_id: int | None = None, trigger: str = "schedule"
) -> ImportJob:
    """Import new mail of one POP3 account; return its finished job.

    Safe to run again at any time (idempotent by the ledger). Raises
    ``ImportBusy`` without touching the server when another import of the
    account holds the lock (a given ``job_id`` is then closed as done, with a
    note), and ``ServerProblem`` after recording it on the job when the server
    cannot be reached or the connection is lost (retry later). A refused
    login or a full quota is a finished job with its status, not an exception.
    """
    try:
        with account_lock(account_id):
            return _run_locked(account_id, job_id, trigger)
    except ImportBusy:
        if job_id is not None:
            ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
                status=ImportJob.Status.DONE,
                finished_at=timezone.now(),
                error=_("Another import of this account was running."),
            )
        logger.info("pop import of account %s skipped: already running", account_id)
        raise


def _run_locked(account_id: int, job_id: int | None, trigger: str) -> ImportJob:
    account = MailAccount.objects.select_related("user").get(pk=account_id)
    check_target = _close_interrupted_jobs(account_id, job_id)
    if job_id is not None:
        job = ImportJob.objects.get(pk=job_id, account_id=account_id)
    else:
        job = ImportJob.objects.create(account=account, trigger=trigger)
    job.status = ImportJob.Status.RUNNING
    job.started_at = timezone.now()
    job.save(update_fields=["status", "started_at"])
    state = _Run(
        account=account,
        job=job,
        check_target=check_target,
        inline_max=inline_max_bytes(),
    )

    if not account.is_active or not account.is_pop:
        return _finish(state, ImportJob.Status.DONE)
    try:
        client = oauth.with_login_retry(
            account,
            lambda secret: pop.connect(
                ServerSettings.incoming_of(account),
                secret,
                timeout=net.timeout_seconds(),
            ),
        )
    except ServerProblem as exc:
        if exc.problem == Problem.RECONNECT:
            # oauth marked the account already; retrying cannot help.
            logger.info("pop import of account %s: needs reconnecting", account_id)
            return _finish(state, ImportJob.Status.LOGIN_FAILED, error=exc.message)
        if exc.problem == Problem.AUTH:
            _account_status(account, AccountStatus.LOGIN_FAILED, exc.message)
            logger.info("pop import of account %s: login refused", account_id)
            return _finish(state, ImportJob.Status.LOGIN_FAILED, error=exc.message)
        _account_status(account, AccountStatus.UNREACHABLE, exc.message)
        _finish(state, ImportJob.Status.FAILED, error=exc.message)
        logger.info("pop import of account %s: %s", account_id, exc.problem)
        raise

    status = ImportJob.Status.DONE
    try:
        status = _transfer(state, client)
        _before_quit()
        pop.quit(client)
    except ServerProblem as exc:
        pop.abandon(client)
        state.save_progress()
        _account_status(account, AccountStatus.UNREACHABLE, exc.message)
        _finish(state, ImportJob.Status.FAILED, error=exc.message)
        logger.info(
            "pop import of account %s lost the connection after %s messages",
            account_id,
            state.counts["done"],
        )
        raise
    except BaseException:
        pop.abandon(client)  # no QUIT: the server deletes nothing
        state.save_progress()
        raise

    removed = _mark_removed(account, state.deleted)
    MailAccount.objects.filter(pk=account.pk).update(last_import_at=timezone.now())
    if status == ImportJob.Status.DONE:
        _account_status(account, AccountStatus.OK, "")
    logger.info(
        "pop import of account %s: %s new, %s imported, %s failed, %s removed",
        account_id,
        state.job.total,
        state.counts["imported"],
        state.counts["failed"],
        removed,
    )
    return _finish(state, status, removed=removed)


def _close_interrupted_jobs(account_id: int, job_id: int | None) -> bool:
    """Mark jobs left RUNNING by a dead worker as failed; True if there were any.

    Called under the lock, so no such job can still be running.
    """
    stale = ImportJob.objects.filter(
        account_id=account_id, status=ImportJob.Status.RUNNING
    )
    if job_id is not None:
        stale = stale.exclude(pk=job_id)
    return (
        stale.update(
            status=ImportJob.Status.FAILED,
            finished_at=timezone.now(),
            error=_("Interrupted; the next import continued it."),
        )
        > 0
    )


def _transfer(state: _Run, client: poplib.POP3) -> str:
    """Import the new messages and DELE what should go; return the job status."""
    account = state.account
    on_server = pop.uidl_map(client)
    ledger = dict(
        UidlEntry.objects.filter(account=account).values_list("uidl", "imported_at")
    )
    new = [(uidl, number) for uidl, number in on_server.items() if uidl not in ledger]
    new.sort(key=lambda item: item[1])
    state.job.total = len(new)
    ImportJob.objects.filter(pk=state.job.pk).update(total=len(new))

    status: str = ImportJob.Status.DONE
    if new:
        list_sizes = pop.sizes(client)
        if account.import_imap_account_id is None:
            state.folder = import_folder_for(account=account)
            state.depth = pop.pipeline_depth(client)
            status = _import_batches(state, client, new, list_sizes)
        else:
            for index, (uidl, number) in enumerate(new):
                size = list_sizes.get(number, 0)
                if not _import_one(state, client, uidl, number, size):
                    status = ImportJob.Status.OVER_QUOTA
                    _over_quota(state, left=len(new) - index)
                    break
                state.save_progress()

    # Messages imported by earlier runs that should now leave the server.
    cutoff = None
    if account.leave_on_server and account.remove_after_days:
        cutoff = timezone.now() - timedelta(days=account.remove_after_days)
    for uidl, imported_at in ledger.items():
        number = on_server.get(uidl)
        if number is None:
            continue
        if not account.leave_on_server or (cutoff and imported_at <= cutoff):
            pop.delete(client, number)
            state.deleted.append(uidl)
    return status


# -- the store: in batches ----------------------------------------------------
#
# A batch is up to _BATCH_COUNT messages (fewer when their LIST sizes pass
# _BATCH_BYTES, or when downloading takes longer than _BATCH_SECONDS): their
# quota is reserved; their RETRs go out up to ``pop.PIPELINE_DEPTH`` at a
# time (RFC 2449 PIPELINING; one at a time on a server without it). An answer
# whose LIST size is at most ``state.inline_max`` is read into memory
# (``_Spill``) and stored in the database with its row; a larger one, or a
# small one that grows past the limit as it arrives, is streamed straight
# into its blob file (``blobs.blob_reserve``; a temporary file and
# ``blob_save`` on a storage without local paths), with no fsync each. The
# batch's blobs are made durable together (``blobs.DurableBatch``; nothing to
# do for a batch of small messages), and then ONE transaction adds their
# message rows, the small ones' bytes and the ledger rows (one INSERT each,
# ``messages_add`` and ``ledger_add``), the usage correction and the job's
# progress. Only after that commit are they DELEd.
#
# A crash before the commit leaves orphan blobs (no row, no quota; the one
# being written may be partial), nothing of the small messages, and nothing
# in the ledger: the next run imports exactly those messages again. Their
# reservations are released in a ``finally``; a SIGKILL skips that, and the
# periodic ``reconcile_quotas`` task corrects the usage it leaks. A crash
# after the commit and before the DELEs (or QUIT) leaves committed messages
# that the next run skips, then DELEs. A connection given up with RETRs in
# flight is closed without QUIT.

# 300 rather than 100 since small messages need no file: a batch's fixed
# cost (quota UPDATE, id SELECT, job UPDATE, commit; ~4.5 ms) then weighed
# 0.045 ms a ~4 KB message, a fifth of its CPU time, against 0.015 ms now.
# The byte limit keeps a batch of small messages in memory under 20 MB.
_BATCH_COUNT = 300
_BATCH_BYTES = 20 * 1024 * 1024
_BATCH_SECONDS = 2.0


@dataclass
class _Fetched:
    uidl: str
    number: int
    reserved: int  # the LIST size taken from the quota
    path: Path | None = None  # where it was downloaded to (None: in memory)
    written: int = 0
    blob: str = ""
    columns: MessageColumns | None = None
    in_place: bool = False  # downloaded straight to its blob's path
    data: bytes | None = None  # a small message, kept in the database


class _Spill:
    """Where one RETR answer goes: memory while it stays within ``limit``
    bytes; past that, the file ``open_file()`` opens (what came so far is
    written there first, and the rest follows). ``file`` is None while in
    memory; ``getvalue()`` returns the bytes then."""

    def __init__(self, limit: int, open_file: Callable[[], BinaryIO]) -> None:
        self._limit = limit
        self._open_file = open_file
        self._parts: list[bytes] = []
        self._size = 0
        self.file: BinaryIO | None = None

    def write(self, data: bytes) -> int:
        if self.file is None:
            if self._size + len(data) <= self._limit:
                self._parts.append(bytes(data))
                self._size += len(data)
                return len(data)
            self.file = self._open_file()
            self.file.writelines(self._parts)
            self._parts = []
        return self.file.write(data)

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


@dataclass
class _Held:
    """Quota reserved for a batch and not (yet) turned into usage."""

    bytes: int = 0


def _import_batches(
    state: _Run, client: poplib.POP3, new: list[tuple[str, int]], sizes: dict
) -> str:
    """Import ``new`` into the store, batch by batch; return the job status."""
    index = 0
    while index < len(new):
        batch: list[tuple[str, int, int]] = []
        total = 0
        for uidl, number in new[index : index + _BATCH_COUNT]:
            size = sizes.get(number, 0)
            if batch and total + size > _BATCH_BYTES:
                break
            batch.append((uidl, number, size))
            total += size
        taken = _reserve(state, [size for _uidl, _number, size in batch])
        if not taken:
            _over_quota(state, left=len(new) - index)
            return ImportJob.Status.OVER_QUOTA
        index += _import_batch(state, client, batch[:taken])
    return ImportJob.Status.DONE


def _reserve(state: _Run, sizes: list[int]) -> int:
    """Reserve quota for the first messages of a batch; return how many fit.

    One UPDATE for the whole batch when it fits; otherwise one per message
    until one does not fit (so a nearly full quota is used as before).
    """
    user = state.account.user
    if quota.quota_reserve(user=user, size=sum(sizes)):
        return len(sizes)
    taken = 0
    for size in sizes:
        if not quota.quota_reserve(user=user, size=size):
            break
        taken += 1
    return taken


def _import_batch(
    state: _Run, client: poplib.POP3, batch: list[tuple[str, int, int]]
) -> int:
    """Download, store and commit one reserved batch; return how many were handled.

    Up to ``state.depth`` RETRs are in flight at a time (pipelining, when the
    server offers it); their answers are read in order. No further RETR is
    sent once the downloads took longer than _BATCH_SECONDS, so fewer than
    ``len(batch)`` may be handled (the rest is reserved again with the next
    batch). Each message is downloaded straight into its blob; the batch's
    rows are committed only once all its blobs are durable
    (``blobs.DurableBatch``). A lost connection commits what was fully
    downloaded, then raises ServerProblem.
    """
    account = state.account
    held = _Held(sum(size for _uidl, _number, size in batch))
    fetched: list[_Fetched] = []
    stored: list[_Fetched] = []
    lost: ServerProblem | None = None
    handled = 0
    sent = 0  # RETRs sent so far; those of batch[handled:sent] are unanswered
    started = time.monotonic()
    folder = blobs.temp_dir()  # once per batch
    try:
        with blobs.DurableBatch() as durable:
            try:
                for uidl, number, size in batch:
                    # Top the pipe up when it is half empty (one write for
                    # several RETRs); send nothing new once the time is up.
                    low = sent < len(batch) and sent - handled <= state.depth // 2
                    if low and (
                        not sent or time.monotonic() - started <= _BATCH_SECONDS
                    ):
                        more = batch[sent : handled + state.depth]
                        pop.send_retrieve(client, [item[1] for item in more])
                        sent += len(more)
                    if handled == sent:
                        break
                    handled += 1
                    _fetch_one(
                        state, client, folder, durable, fetched, uidl, number, size
                    )
            except ServerProblem as exc:
                lost = exc
            except BaseException:
                _delete_blobs(fetched)  # none of them is committed
                raise
            stored = _store_batch(state, fetched, held, durable) if fetched else []
        if not fetched:
            state.save_progress()
    finally:
        for item in fetched:
            if item.path is not None and not item.in_place:
                item.path.unlink(missing_ok=True)
        # Reservations of messages that were not committed; see above for a
        # crash that skips this.
        quota.quota_release(user_id=account.user_id, size=held.bytes)
    if lost is not None:
        raise lost
    for item in stored:
        _after_commit(item.uidl)
        if not account.leave_on_server:
            pop.delete(client, item.number)
            state.deleted.append(item.uidl)
    return handled


def _fetch_one(  # noqa: PLR0913
    state: _Run,
    client: poplib.POP3,
    folder: Path,
    durable: blobs.DurableBatch,
    fetched: list[_Fetched],
    uidl: str,
    number: int,
    size: int,
) -> bool:
    """Read one sent RETR's answer into memory or a blob; True if it was stored.

    In memory when its LIST size ``size`` is at most ``state.inline_max`` and
    it stays so while it arrives; otherwise into its blob file. A message the
    server refuses, or whose blob cannot be written, counts as failed. A lost
    connection raises ServerProblem (the message is dropped).
    """
    account = state.account
    item = _Fetched(uidl=uidl, number=number, reserved=size)

    def open_file() -> BinaryIO:
        target = blobs.blob_reserve(user_id=account.user_id)
        if target is None:
            item.path = folder / f"pop-{account.pk}-{secrets.token_hex(8)}.part"
        else:
            item.blob, item.path = target
            item.in_place = True
        return open(item.path, "wb")  # noqa: SIM115 - closed below

    head = bytearray()
    out: _Spill | BinaryIO | None = None
    try:
        if state.is_small(size):
            out = _Spill(state.inline_max, open_file)
        else:
            out = open_file()
        item.written = pop.retrieve_to(
            client,
            number,
            out,
            head=head,
            head_limit=HEADER_PARSE_LIMIT + 1,
            sent=True,
        )
        out.close()
    except poplib.error_proto:
        # The server refused this one message: count it, go on.
        _discard(out, item)
        state.counts["failed"] += 1
        state.counts["done"] += 1
        logger.warning("pop import of account %s: RETR refused", account.pk)
        return False
    except BaseException:
        _discard(out, item)
        raise
    if isinstance(out, _Spill) and out.file is None:
        item.data = out.getvalue()
    fetched.append(item)  # from here its files are cleaned up by the caller
    _after_retrieve(item.path)
    # The list columns now, while the bytes are at hand (one message's head at
    # a time in memory, not the batch's).
    whole = len(head) <= HEADER_PARSE_LIMIT
    item.columns = describe(bytes(head), whole=whole)
    del head
    if item.data is not None:
        return True
    assert item.path is not None  # noqa: S101 - not in memory: in a file
    try:
        if item.in_place:
            blobs.blob_written(item.path)
        else:
            item.blob = blobs.blob_save(item.path, user_id=account.user_id)
    except Exception:
        logger.exception(
            "pop import of account %s: a message was not stored", account.pk
        )
        fetched.pop()
        item.path.unlink(missing_ok=True)
        state.counts["failed"] += 1
        state.counts["done"] += 1
        return False
    durable.add(item.blob, item.path if item.in_place else None)
    return True


def _discard(out: _Spill | BinaryIO | None, item: _Fetched) -> None:
    """Close and remove what a failed download wrote."""
    if out is not None:
        with contextlib.suppress(OSError):
            out.close()
    if item.path is not None:
        item.path.unlink(missing_ok=True)


def _store_batch(
    state: _Run,
    fetched: list[_Fetched],
    held: _Held,
    durable: blobs.DurableBatch,
) -> list[_Fetched]:
    """One transaction for the rows of the batch's blobs; return the committed.

    Waits until the blobs are durable first. When the batch transaction
    fails, its messages are tried one by one, so one bad message fails alone,
    as before batching.
    """
    account = state.account
    folder = state.folder
    if folder is None:
        raise RuntimeError("no import folder")
    saved = fetched
    try:
        # An error here (the disk refuses to sync) ends the run: nothing of the
        # batch is committed, its blobs are orphans.
        durable.wait()
    except BaseException:
        _delete_blobs(saved)
        raise
    try:
        counts = dict(state.counts)
        counts["done"] += len(saved)
        counts["imported"] += len(saved)
        counts["bytes"] += sum(item.written for item in saved)
        with transaction.atomic():
            message_ids = messages_add(
                user=account.user,
                account=account,
                folder=folder,
                items=[(item.uidl, item.blob, item.written) for item in saved],
                columns=[item.columns for item in saved],
                inline=[item.data for item in saved],
            )
            ledger_add(
                account=account,
                entries=[
                    (item.uidl, item.written, message_id)
                    for item, message_id in zip(saved, message_ids, strict=True)
                ],
            )
            _charge(account, saved)
            ImportJob.objects.filter(pk=state.job.pk).update(**counts)
        held.bytes -= sum(item.reserved for item in saved)
    except Exception:
        logger.exception(
            "pop import of account %s: a batch was not stored, storing one by one",
            account.pk,
        )
        stored = [item for item in saved if _store_one(state, item, held)]
        state.save_progress()
        return stored
    except BaseException:
        _delete_blobs(saved)
        raise
    state.counts = counts
    return saved


def _store_one(state: _Run, item: _Fetched, held: _Held) -> bool:
    """Message row (and bytes) and ledger row of one message; True once committed."""
    account = state.account
    assert state.folder is not None  # noqa: S101 - checked by _store_batch
    try:
        with transaction.atomic():
            message = message_add(
                user=account.user,
                account=account,
                folder=state.folder,
                uidl=item.uidl,
                blob_name=item.blob,
                size=item.written,
                data=item.data,
            )
            _ledger_add(account, item.uidl, item.written, message_id=message.pk)
            _charge(account, [item])
        held.bytes -= item.reserved
    except Exception:
        logger.exception(
            "pop import of account %s: a message was not stored", account.pk
        )
        _delete_blobs([item])
        state.counts["failed"] += 1
        state.counts["done"] += 1
        return False
    except BaseException:
        _delete_blobs([item])
        raise
    state.counts["done"] += 1
    state.counts["imported"] += 1
    state.counts["bytes"] += item.written
    return True


def _charge(account: MailAccount, items: list[_Fetched]) -> None:
    """Turn the reservations into usage of the written sizes (in the transaction).

    LIST sizes are estimates on some servers.
    """
    delta = sum(item.written - item.reserved for item in items)
    if delta:
        UserQuota.objects.filter(user_id=account.user_id).update(
            used_bytes=F("used_bytes") + delta
        )


def _delete_blobs(items: list[_Fetched]) -> None:
    for item in items:
        if item.blob:
            with contextlib.suppress(OSError):
                blobs.blob_delete(item.blob)


# -- the IMAP target: one message at a time -------------------------------------


def _import_one(
    state: _Run, client: poplib.POP3, uidl: str, number: int, size: int
) -> bool:
    """APPEND one message to the target IMAP account; always True (no quota).

    A small message (as for the store) is read straight into memory; a larger
    one streams into a temporary file, as before, and is read back for the
    APPEND.
    """
    account = state.account
    path = blobs.temp_dir() / f"pop-{account.pk}-{secrets.token_hex(8)}.part"
    out = _Spill(
        state.inline_max if state.is_small(size) else -1,
        lambda: open(path, "wb"),  # noqa: SIM115 - closed below
    )
    try:
        try:
            written = pop.retrieve_to(client, number, out)
        except poplib.error_proto:
            # The server refused this one message: count it, go on.
            state.counts["failed"] += 1
            state.counts["done"] += 1
            logger.warning("pop import of account %s: RETR refused", account.pk)
            return True
        finally:
            out.close()
        in_file = out.file is not None
        _after_retrieve(path if in_file else None)
        data = path.read_bytes() if in_file else out.getvalue()
        stored = _append(state, data, uidl, written)
    finally:
        path.unlink(missing_ok=True)
    state.counts["done"] += 1
    if not stored:
        state.counts["failed"] += 1
        return True
    state.counts["imported"] += 1
    state.counts["bytes"] += written
    _after_commit(uidl)
    if not account.leave_on_server:
        pop.delete(client, number)
        state.deleted.append(uidl)
    return True


def _ledger_add(account: MailAccount, uidl: str, size: int, **fields: object) -> None:
    UidlEntry.objects.update_or_create(
        account=account,
        uidl=uidl,
        defaults={
            "state": UidlEntry.State.IMPORTED,
            "size": size,
            "imported_at": timezone.now(),
            **fields,
        },
    )


def _append(state: _Run, data: bytes, uidl: str, written: int) -> bool:
    """APPEND the message ``data`` to the target IMAP folder and commit its
    ledger row.

    The message is held in memory for the APPEND (imapclient sends a literal
    from bytes). Raises ServerProblem when the IMAP server cannot be used.
    """
    from mailbox.imap import append as imap_append
    from mailbox.imap import pool

    account = state.account
    target = account.import_imap_account
    folder = account.import_folder or "INBOX"

    def append(imap):  # noqa: ANN001, ANN202
        if state.check_target:
            found = _already_appended(imap, folder, data, written)
            if found is not None:
                return found
        try:
            response = imap.append(folder, data, flags=(), msg_time=None)
        except IMAPClientError as exc:
            if "TRYCREATE" not in str(exc):
                raise
            imap.create_folder(folder)
            response = imap.append(folder, data, flags=(), msg_time=None)
        return imap_append.appenduid(response)

    try:
        appended = pool.run(target, append, retry=False)
    except IMAPClientError:
        logger.warning("pop import of account %s: APPEND refused", account.pk)
        return False
    except pool.PoolBusy as exc:
        raise ServerProblem(Problem.NETWORK, exc.message) from exc
    uidvalidity, uid = appended if appended else (None, None)
    with transaction.atomic():
        _ledger_add(
            account,
            uidl,
            written,
            imap_folder=folder,
            imap_uidvalidity=uidvalidity,
            imap_uid=uid,
        )
    return True


def _already_appended(imap, folder: str, data: bytes, size: int):  # noqa: ANN001, ANN202
    """(uidvalidity, uid) of a copy an interrupted run appended already, or None."""
    match = _MESSAGE_ID.search(data[:_HEAD_SCAN].split(b"\r\n\r\n", 1)[0])
    if match is None:
        return None
    try:
        info = imap.select_folder(folder, readonly=True)
    except IMAPClientError:
        return None
    uids = imap.search(["HEADER", "Message-ID", match.group(1).decode("latin-1")])
    if not uids:
        return None
    sizes = imap.fetch(uids, ["RFC822.SIZE"])
    for uid, item in sizes.items():
        if item.get(b"RFC822.SIZE") == size:
            return int(info[b"UIDVALIDITY"]), int(uid)
    return None


# -- endings ------------------------------------------------------------------


def _over_quota(state: _Run, *, left: int) -> None:
    account = state.account
    logger.warning(
        "pop import of account %s stopped: user %s is over quota, %s messages "
        "left on the server",
        account.pk,
        account.user_id,
        left,
    )
    _account_status(
        account,
        account.status,
        _(
            "Your storage is full: %(count)s messages were left on the server. "
            "Delete mail or ask for more space; the import continues then."
        )
        % {"count": left},
    )


def _mark_removed(account: MailAccount, uidls: list[str]) -> int:
    """After a confirmed QUIT: these ledger rows are gone from the server."""
    if not uidls:
        return 0
    now = timezone.now()
    for start in range(0, len(uidls), 500):
        UidlEntry.objects.filter(
            account=account, uidl__in=uidls[start : start + 500]
        ).update(removed_from_server_at=now)
    return len(uidls)


def _account_status(account: MailAccount, status: str, detail: str) -> None:
    MailAccount.objects.filter(pk=account.pk).update(
        status=status, status_detail=detail[:255]
    )
    account.status, account.status_detail = status, detail[:255]


def _finish(
    state: _Run, status: str, *, error: str = "", removed: int = 0
) -> ImportJob:
    job = state.job
    job.status = status
    job.finished_at = timezone.now()
    job.error = error
    job.removed_from_server = removed
    for name, value in state.counts.items():
        setattr(job, name, value)
    job.save(
        update_fields=[
            "status",
            "finished_at",
            "error",
            "removed_from_server",
            "total",
            *state.counts,
        ]
    )
    return job
