"""POP3 import: nothing lost, nothing twice (DESIGN.md, "POP path").

One run, under the account's lock (``lock.account_lock``):

1. Log in. A refused login ends the run: job and account LOGIN_FAILED, nothing
   raised (a retry cannot heal it). Any other connection problem is recorded on
   the job and raised as ``ServerProblem`` for the task to retry.
2. UIDL against the ledger (``UidlEntry``): the new messages, in server order.
3. For each: reserve its LIST size in the user's quota (no room: stop, job
   OVER_QUOTA, the rest stays on the server); RETR streamed into a temporary
   file; store it as a blob; then in ONE transaction the message row and the
   ledger row (the reservation is now usage). A failure before the commit gives
   the reservation back and deletes the blob. With an IMAP target account the
   file is APPENDed there instead (no local quota) and the ledger row records
   the APPENDUID.
4. Only after that commit, if the account keeps no copy on the server, DELE.
   Messages already in the ledger that are still on the server are DELEd too
   when no copy is kept, or when ``remove_after_days`` is set and they were
   imported longer ago than that.
5. QUIT, which makes the DELEs take effect; ``removed_from_server_at`` is set
   only once the server confirmed the QUIT.

A crash anywhere leaves either nothing or a committed message (a blob without
a row is an orphan that holds no quota); the next run skips what the ledger has,
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
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from imapclient.exceptions import IMAPClientError

from accounts.models import AccountStatus, MailAccount, UserQuota
from accounts.servers import ServerSettings
from mailbox import net, quota
from mailbox.errors import Problem, ServerProblem
from mailbox.pop import client as pop
from mailbox.pop.lock import ImportBusy, account_lock
from mailbox.store import blobs
from mailbox.store.models import ImportJob, LocalFolder, UidlEntry
from mailbox.store.services import import_folder_for, message_add

logger = logging.getLogger(__name__)

__all__ = ["ImportBusy", "run"]

_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.M)
_HEAD_SCAN = 256 * 1024


# -- hook points (no-ops; crash tests replace them) ---------------------------


def _after_retrieve(path: Path) -> None:
    """Called when a message is in its temporary file, before it is stored."""


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
    state = _Run(account=account, job=job, check_target=check_target)

    if not account.is_active or not account.is_pop:
        return _finish(state, ImportJob.Status.DONE)
    try:
        client = pop.connect(
            ServerSettings.incoming_of(account),
            account.get_password(),
            timeout=net.timeout_seconds(),
        )
    except ServerProblem as exc:
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
        for index, (uidl, number) in enumerate(new):
            if not _import_one(state, client, uidl, number, list_sizes.get(number, 0)):
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


def _import_one(
    state: _Run, client: poplib.POP3, uidl: str, number: int, size: int
) -> bool:
    """Import one message; False when it does not fit the quota (nothing done)."""
    account = state.account
    to_store = account.import_imap_account_id is None
    if to_store and not quota.quota_reserve(user=account.user, size=size):
        return False
    reserved = size if to_store else 0  # held until _store takes it over
    path = blobs.temp_dir() / f"pop-{account.pk}-{secrets.token_hex(8)}.part"
    try:
        try:
            written = pop.retrieve_to_file(client, number, path)
        except poplib.error_proto:
            # The server refused this one message: count it, go on.
            state.counts["failed"] += 1
            state.counts["done"] += 1
            logger.warning("pop import of account %s: RETR refused", account.pk)
            return True
        _after_retrieve(path)
        if to_store:
            reserved = 0
            stored = _store(state, path, uidl, reserved=size, written=written)
        else:
            stored = _append(state, path, uidl, written)
    finally:
        path.unlink(missing_ok=True)
        if reserved:
            quota.quota_release(user_id=account.user_id, size=reserved)
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


def _store(state: _Run, path: Path, uidl: str, *, reserved: int, written: int) -> bool:
    """Blob, message row and ledger row; True once committed."""
    account = state.account
    if state.folder is None:
        raise RuntimeError("no import folder")
    blob_name = ""
    try:
        blob_name = blobs.blob_save(path, user_id=account.user_id)
        with transaction.atomic():
            message = message_add(
                user=account.user,
                account=account,
                folder=state.folder,
                uidl=uidl,
                blob_name=blob_name,
                size=written,
            )
            _ledger_add(account, uidl, written, message_id=message.pk)
            if written != reserved:  # LIST sizes are estimates on some servers
                UserQuota.objects.filter(user_id=account.user_id).update(
                    used_bytes=F("used_bytes") + (written - reserved)
                )
    except Exception:
        logger.exception(
            "pop import of account %s: a message was not stored", account.pk
        )
        quota.quota_release(user_id=account.user_id, size=reserved)
        if blob_name:
            with contextlib.suppress(OSError):
                blobs.blob_delete(blob_name)
        return False
    except BaseException:
        quota.quota_release(user_id=account.user_id, size=reserved)
        if blob_name:
            with contextlib.suppress(OSError):
                blobs.blob_delete(blob_name)
        raise
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


# -- the IMAP target ----------------------------------------------------------


def _append(state: _Run, path: Path, uidl: str, written: int) -> bool:
    """APPEND the message to the target IMAP folder and commit its ledger row.

    The message is held in memory for the APPEND (imapclient sends a literal
    from bytes). Raises ServerProblem when the IMAP server cannot be used.
    """
    from mailbox.imap import pool

    account = state.account
    target = account.import_imap_account
    folder = account.import_folder or "INBOX"
    data = path.read_bytes()

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
        return _parse_appenduid(response)

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


def _parse_appenduid(response: object) -> tuple[int, int] | None:
    """(uidvalidity, uid) from an APPEND answer ``[APPENDUID v u] ...``."""
    if isinstance(response, str):
        response = response.encode()
    if not isinstance(response, bytes):
        return None
    match = _APPENDUID.search(response)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


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
