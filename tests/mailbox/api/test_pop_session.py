"""A phone adds a POP3 account, imports it, polls the job and reads the mail."""

from __future__ import annotations

import time

import pytest

from mailbox.store.models import StoredMessage
from tests.data.loader import load_eml
from tests.mailbox.api.conftest import App, app_login
from tests.mailbox.test_tasks import live_celery  # noqa: F401  (fixture)

API = "/api/v1"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def add_pop_account(app: App, dovecot, mail_user) -> dict:
    response = app.post(
        f"{API}/accounts/",
        {
            "kind": "pop3",
            "email": mail_user.email,
            "host": dovecot.host,
            "port": dovecot.pop3_port,
            "security": "starttls",
            "username": mail_user.username,
            "password": mail_user.password,
            "leave_on_server": False,
        },
    )
    assert response.status_code == 201, response.content
    return response.json()


def poll(app: App, job_id: int, *, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = app.get(f"{API}/jobs/{job_id}/").json()
        if not job["is_active"] or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def read_inbox(app: App, account_id: int) -> tuple[dict, list[dict]]:
    page = app.get(f"{API}/accounts/{account_id}/messages/", folder="INBOX").json()
    return page, page["messages"]


def test_import_now_then_read_imported_mail(
    app, dovecot, mail_user, django_capture_on_commit_callbacks
):
    """Import now answers the job (201); polled, it is done; the mail reads back."""
    dovecot.deliver(mail_user.username, load_eml("attachments.eml"))
    dovecot.generate(mail_user.username, 5)
    account = add_pop_account(app, dovecot, mail_user)
    assert account["kind"] == "pop3"
    assert account["leave_on_server"] is False

    with django_capture_on_commit_callbacks(execute=True):
        response = app.post(f"{API}/accounts/{account['id']}/import/")
    assert response.status_code == 201, response.content
    job = poll(app, response.json()["id"])
    assert job["status"] == "done", job
    assert (job["imported"], job["total"], job["percent"]) == (6, 6, 100)
    assert dovecot.count(mail_user.username) == 0

    page, rows = read_inbox(app, account["id"])
    assert page["total"] == 6
    letter = next(r for r in rows if r["subject"] == "Your documents")
    ref = {"folder": "INBOX", "validity": page["validity"]}
    url = f"{API}/accounts/{account['id']}/messages/{letter['uid']}/"
    message = app.get(url, **ref).json()
    assert message["imported_from"]
    assert message["text"].startswith("Please find")
    notes = next(a for a in message["attachments"] if a["filename"] == "notes.txt")
    download = app.client.get(notes["url"], headers={"X-Session-Token": app.token})
    assert b"".join(download.streaming_content).startswith(b"Meeting notes")
    # Flags and deletion work on imported mail too.
    assert (
        app.patch(
            f"{url}?folder=INBOX&validity={page['validity']}", {"flagged": True}
        ).status_code
        == 204
    )
    assert app.get(url, **ref).json()["flagged"] is True
    assert (
        app.delete(f"{url}?folder=INBOX&validity={page['validity']}").status_code == 204
    )
    assert read_inbox(app, account["id"])[0]["total"] == 5

    store = app.get(f"{API}/quota/").json()
    assert store["used_bytes"] == sum(
        StoredMessage.objects.filter(user__email=app_user_email(app)).values_list(
            "size", flat=True
        )
    )
    assert app.get(f"{API}/accounts/{account['id']}/quota/").json() == store


def app_user_email(app: App) -> str:
    return app.get(f"{API}/me/").json()["email"]


def test_import_of_an_imap_account_is_refused(app, imap_account):
    """Only POP3 accounts import: 400 not_pop3."""
    response = app.post(f"{API}/accounts/{imap_account.pk}/import/")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_pop3"


@pytest.mark.django_db(transaction=True)
def test_import_through_the_real_worker(live_celery, user, dovecot, mail_user):  # noqa: F811
    """With Redis and a Celery worker, the polled job ends done with the mail in."""
    dovecot.generate(mail_user.username, 8)
    app, response = app_login(user.email)
    assert response.status_code == 200
    account = add_pop_account(app, dovecot, mail_user)
    response = app.post(f"{API}/accounts/{account['id']}/import/")
    assert response.status_code == 201
    assert response.json()["status"] in ("queued", "running", "done")
    job = poll(app, response.json()["id"], timeout=90)
    assert job["status"] == "done", job
    assert job["imported"] == 8
    assert read_inbox(app, account["id"])[0]["total"] == 8
