"""Celery tasks: thin, retryable doorways into the POP3 import and quota code."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AccountKind, MailAccount, User
from mailbox.errors import ServerProblem

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ServerProblem,),
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
)
def import_pop_account(self: Task, account_id: int, job_id: int | None = None) -> None:
    """Import new POP3 mail for one account; safe to run twice.

    Network trouble raises ServerProblem and is retried with backoff; a refused
    login or a full store ends the job with a status the user sees.
    """
    from mailbox.pop import importer
    from mailbox.pop.lock import ImportBusy

    try:
        importer.run(account_id=account_id, job_id=job_id)
    except ImportBusy:
        logger.info("import of account %s skipped: another one is running", account_id)
        if job_id is not None:
            from mailbox.store.models import ImportJob

            ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
                status=ImportJob.Status.DONE,
                finished_at=timezone.now(),
                error=_("Another import of this account was running."),
            )


def import_start(*, account: MailAccount, trigger: str) -> int:
    """Record a queued job and send it to a worker once the transaction commits."""
    from mailbox.store.models import ImportJob

    job = ImportJob.objects.create(account=account, trigger=trigger)
    transaction.on_commit(lambda: import_pop_account.delay(account.pk, job.pk))
    return job.pk


@shared_task(acks_late=True)
def dispatch_due_imports() -> int:
    """Start the imports whose check interval has passed (beat runs this)."""
    from mailbox.store.models import ImportJob

    now = timezone.now()
    started = 0
    accounts = MailAccount.objects.filter(kind=AccountKind.POP3, is_active=True)
    for account in accounts.iterator():
        due = account.last_import_at is None or (
            account.last_import_at
            <= now - timedelta(minutes=account.check_interval_minutes)
        )
        if not due:
            continue
        # A queued or running job younger than a day means one is on its way.
        pending = ImportJob.objects.filter(
            Q(status=ImportJob.Status.QUEUED) | Q(status=ImportJob.Status.RUNNING),
            account=account,
            created_at__gte=now - timedelta(days=1),
        ).exists()
        if pending:
            continue
        with transaction.atomic():
            import_start(account=account, trigger=ImportJob.Trigger.SCHEDULE)
        started += 1
    return started


@shared_task(acks_late=True)
def reconcile_quotas() -> int:
    """Recompute every user's store usage and correct drift; return the fixes."""
    from mailbox.quota import quota_reconcile

    fixed = 0
    for user in User.objects.filter(is_active=True).iterator():
        before, after = quota_reconcile(user=user)
        fixed += before != after
    return fixed


@shared_task(acks_late=True)
def prune_sync_tombstones() -> int:
    """Forget store deletions older than the sync window; return how many.

    A phone whose sync state is older than that gets a full resync.
    """
    from mailbox.store.sync import tombstones_prune

    return tombstones_prune()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=6)
def send_message(self: Task, outgoing_id: int) -> None:
    """Send one queued outgoing message over SMTP.

    Temporary failures (4xx replies, network trouble) are retried with backoff
    (30 s doubling, at most 10 min); when the retries are spent, or at once for
    a permanent (5xx) reply, the message is marked failed with the server's
    reply and stays editable.
    """
    from mailbox.compose import services
    from mailbox.smtp.client import SendFailed

    try:
        services.message_send(message_id=outgoing_id)
    except SendFailed as exc:
        # Without a worker (the embedded mode runs tasks inside the request)
        # a retry runs at once, with no countdown: one is worth trying, seven
        # against a dead server would hold the page for most of a minute.
        retries = (
            settings.WEBMAIL_EAGER_SEND_RETRIES
            if self.request.is_eager
            else self.max_retries
        )
        if self.request.retries >= retries:
            services.message_give_up(message_id=outgoing_id, reason=exc.message)
            return
        countdown = min(600, 30 * 2**self.request.retries)
        raise self.retry(exc=exc, countdown=countdown) from exc
