"""Another user's ids are 404 on every endpoint, and change nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailbox.store.models import ImportJob
from tests.data.loader import load_eml
from tests.mailbox.api.conftest import error_of

API = "/api/v1"


@pytest.fixture
def victim(app, imap_account, pop_account, dovecot, mail_user):
    """The first user's IMAP account with one message, and a POP3 import job."""
    dovecot.deliver(mail_user.username, load_eml("attachments.eml"))
    page = app.get(f"{API}/accounts/{imap_account.pk}/messages/").json()
    job = ImportJob.objects.create(account=pop_account)
    return {
        "a": imap_account.pk,
        "pop": pop_account.pk,
        "uid": page["messages"][0]["uid"],
        "v": page["validity"],
        "job": job.pk,
    }


def calls(ids: dict) -> list[tuple[str, str, dict | None]]:
    a, uid, v = ids["a"], ids["uid"], ids["v"]
    ref = f"?folder=INBOX&validity={v}"
    message = f"{API}/accounts/{a}/messages/{uid}/"
    result = [
        ("get", f"{API}/accounts/{a}/", None),
        ("patch", f"{API}/accounts/{a}/", {"label": "Mine now"}),
        ("delete", f"{API}/accounts/{a}/", None),
        ("get", f"{API}/accounts/{a}/quota/", None),
        ("post", f"{API}/accounts/{ids['pop']}/import/", None),
        ("get", f"{API}/jobs/{ids['job']}/", None),
        ("get", f"{API}/accounts/{a}/folders/", None),
        ("post", f"{API}/accounts/{a}/folders/", {"name": "Stolen"}),
        ("get", f"{API}/accounts/{a}/folder/?folder=INBOX", None),
        ("patch", f"{API}/accounts/{a}/folder/?folder=Trash", {"name": "Bin"}),
        ("delete", f"{API}/accounts/{a}/folder/?folder=Trash", None),
        ("get", f"{API}/accounts/{a}/messages/?folder=INBOX", None),
        ("get", message + ref, None),
        ("patch", message + ref, {"seen": True}),
        ("delete", message + ref, None),
        ("post", f"{message}move/{ref}", {"to_folder": "Trash"}),
        ("get", f"{message}raw/{ref}", None),
        ("get", f"{message}attachments/2/{ref}", None),
        (
            "post",
            f"{API}/accounts/{a}/messages/bulk/",
            {"folder": "INBOX", "validity": v, "uids": [uid], "action": "delete"},
        ),
    ]
    try:
        changes = reverse("api:message_changes", args=[a])
    except Exception:  # noqa: BLE001 - the sync endpoint is optional here
        changes = None
    if changes:
        result.append(("get", f"{changes}?folder=INBOX", None))
    return result


def test_every_id_of_another_user_is_404(victim, app, other_app, dovecot, mail_user):
    """The second user gets 404 (one shape) for accounts, folders, messages,
    parts and jobs of the first; the first user's mail is untouched."""
    for method, url, body in calls(victim):
        if method == "get":
            response = other_app.client.get(
                url, headers={"X-Session-Token": other_app.token}
            )
        else:
            response = getattr(other_app, method)(url, body)
        assert response.status_code == 404, (method, url, response.content)
        assert error_of(response)["code"] == "not_found", (method, url)

    # Nothing moved, nothing read, nothing renamed.
    assert dovecot.count(mail_user.username) == 1
    row = app.get(f"{API}/accounts/{victim['a']}/messages/").json()["messages"][0]
    assert row["seen"] is False
    assert app.get(f"{API}/accounts/{victim['a']}/").json()["label"] == "Work"
    names = {
        f["name"] for f in app.get(f"{API}/accounts/{victim['a']}/folders/").json()
    }
    assert {"INBOX", "Trash"} <= names
    assert "Stolen" not in names
    assert ImportJob.objects.filter(account_id=victim["pop"]).count() == 1


def test_account_lists_are_per_user(victim, app, other_app):
    """Each user lists only their own accounts."""
    assert {a["id"] for a in app.get(f"{API}/accounts/").json()} == {
        victim["a"],
        victim["pop"],
    }
    assert other_app.get(f"{API}/accounts/").json() == []
