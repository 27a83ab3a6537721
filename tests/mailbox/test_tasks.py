"""POP3 imports through a real Celery worker on the real Redis, killed at will."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.db import connection
from django.urls import reverse

from mailbox.store.models import ImportJob, StoredMessage
from tests.servers.celery_worker import Worker, database_url, running_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_celery(settings, redis_url, dovecot) -> Iterator[Worker]:
    """Tasks go through Redis to a worker process that shares the test database."""
    from webmail.celery import app

    settings.REDIS_URL = redis_url
    saved = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.task_always_eager = False
    app.conf.broker_url = redis_url
    _reset_broker_pool(app)
    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()  # no tasks left from other runs
    extra = {
        "WEBMAIL_EXTRA_CA_FILE": str(dovecot.ca_file),
        "WEBMAIL_IMPORT_LOCK_LEASE_SECONDS": "2",
    }
    with running_worker(
        redis_url=redis_url,
        db_url=database_url(connection.settings_dict),
        extra_env=extra,
    ) as worker:
        yield worker
    app.conf.task_always_eager, app.conf.broker_url = saved
    _reset_broker_pool(app)


def _reset_broker_pool(app) -> None:
    """Drop pooled broker connections so the next send uses the current URL."""
    # Not closed: kombu keeps producer pools per broker URL, process-wide.
    app._pool = None
    app.amqp._producer_pool = None


def wait_job(job_id: int, *, until: tuple[str, ...], timeout: float = 60) -> ImportJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ImportJob.objects.get(pk=job_id)
        if job.status in until:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout} s")


def test_import_now_runs_on_the_worker(
    live_celery, user_client, pop_account, dovecot, mail_user
):
    """“Import now” queues a job that a worker finishes; its page shows progress."""
    dovecot.generate(mail_user.username, 12)
    response = user_client.post(
        reverse("mailbox:account_import_now", args=[pop_account.pk])
    )
    assert response.status_code == 302
    job_id = ImportJob.objects.get(account=pop_account).pk
    job = wait_job(job_id, until=("done", "failed"))
    assert job.status == "done", job.error
    assert job.imported == 12
    assert StoredMessage.objects.filter(account=pop_account).count() == 12
    page = user_client.get(response["Location"]).content.decode()
    assert "12 of 12" in page


@pytest.mark.parametrize(
    ("count", "size"), [(2000, 4_000), (400, 80_000)], ids=["inline", "files"]
)
def test_worker_killed_mid_import_loses_nothing_and_duplicates_nothing(
    live_celery, settings, pop_account, dovecot, mail_user, count, size
):
    """SIGKILL in the middle of an import, restart, import again: exactly once,
    small messages (kept in the database) and large ones (files) alike."""
    from mailbox import tasks
    from mailbox.store.models import InlineRaw
    from mailbox.store.raw import raw_read

    pop_account.leave_on_server = False
    pop_account.save()
    dovecot.generate(mail_user.username, count, size=size)
    from django.db import transaction

    with transaction.atomic():
        tasks.import_start(account=pop_account, trigger="manual")
    # Kill as soon as the first batch is committed, with the rest to come.
    stored = StoredMessage.objects.filter(account=pop_account)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not stored.exists():
        time.sleep(0.02)
    live_celery.kill()
    stored_at_kill = stored.count()
    assert 0 < stored_at_kill < count
    # The killed worker's import lock lapses after its short lease (2 s here).
    time.sleep(3)
    live_celery.start()
    with transaction.atomic():
        again = tasks.import_start(account=pop_account, trigger="manual")
    job = wait_job(again, until=("done", "failed"), timeout=120)
    assert job.status == "done", job.error
    assert stored.count() == count
    assert stored.values("uidl").distinct().count() == count
    assert stored.values("message_id").distinct().count() == count
    assert dovecot.count(mail_user.username) == 0
    inline = stored.filter(blob="")
    assert inline.count() == (
        count if size <= settings.WEBMAIL_STORE_INLINE_MAX_BYTES else 0
    )
    assert InlineRaw.objects.count() == inline.count()
    for message in stored.order_by("?")[:20]:
        assert len(raw_read(message)) == message.size
