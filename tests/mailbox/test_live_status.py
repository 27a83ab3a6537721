"""The live status endpoint a mail page polls: counts, quota, new mail.

Against the real Dovecot in its three profiles (full: LIST-STATUS, CONDSTORE,
QRESYNC and QUOTA; minimal: none of them; courier: QUOTA only, folders below
``INBOX.``); changes are made by another IMAP client of the same mailbox.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from django.urls import reverse
from django.utils.http import urlencode

from accounts.models import AccountKind, AccountStatus, AuthMethod, Security
from accounts.servers import ServerSettings
from accounts.services import AccountOptions, mail_account_create
from mailbox.imap import pool
from mailbox.imap import sync as imap_sync
from mailbox.pop import importer
from mailbox.store.source import StoreSource
from mailbox.sync import MAX_TOKEN_LENGTH
from tests.conftest import login, make_account
from tests.mailbox.store import offline_pop_account
from tests.servers.dovecot import Dovecot, MailUser
from tests.servers.ports import free_port

PROFILES = ["full", "minimal", "courier"]


@pytest.fixture(autouse=True)
def _fresh_pool() -> Iterator[None]:
    yield
    pool.close_all()


@pytest.fixture(params=PROFILES)
def server(request, dovecot_profiles, settings) -> Dovecot:
    """The test Dovecot in each profile, its certificates trusted."""
    dovecot = dovecot_profiles(request.param)
    settings.WEBMAIL_EXTRA_CA_FILE = str(dovecot.ca_file)
    return dovecot


@pytest.fixture
def server_user(server) -> MailUser:
    return server.new_user(quota_mb=10)


@pytest.fixture
def account(user, server, server_user):
    return make_account(user, server, server_user)


@pytest.fixture
def other(server, server_user) -> Iterator:
    """Another mail client of the same mailbox (a phone, say)."""
    client = server.login(server_user)
    yield client
    client.logout()


def make(subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.net>"
    message["To"] = "me@example.test"
    message["Subject"] = subject
    message.set_content("Hi")
    return message.as_bytes()


def status(client, account, folder: str | None = "INBOX", state: str | None = None):
    params = {}
    if folder is not None:
        params["folder"] = folder
    if state is not None:
        params["state"] = state
    url = reverse("mailbox:folder_status", args=[account.pk])
    return client.get(url + ("?" + urlencode(params) if params else ""))


def ok(response) -> dict:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    return response.json()


def by_name(data: dict) -> dict[str, dict]:
    return {f["name"]: f for f in data["folders"]}


# -- counts and quota ---------------------------------------------------------


def test_counts_quota_and_a_first_state(user_client, account, server, server_user):
    """Every folder's counts, the quota, and a state with nothing new yet."""
    work = server.folder_name("Work")
    server.deliver(server_user.username, make("one"), make("two"))
    server.deliver(server_user.username, make("read"), flags="S")
    server.deliver(server_user.username, make("w1"), make("w2"), folder=work)
    other = server.login(server_user)
    other.subscribe_folder(work)
    other.logout()

    data = ok(status(user_client, account))

    folders = by_name(data)
    assert folders["INBOX"] == {"name": "INBOX", "unread": 2, "total": 3}
    assert folders[work] == {"name": work, "unread": 2, "total": 2}
    assert data["title_unread"] == 2
    assert data["folder"]["name"] == "INBOX"
    assert data["folder"]["unread"] == 2
    assert data["folder"]["new"] == 0
    assert data["folder"]["changed"] is False
    assert data["folder"]["state"]
    if server.profile == "minimal":  # no QUOTA advertised
        assert data["quota"] is None
    else:
        quota = data["quota"]
        assert quota["limit_bytes"] == 10 * 1024 * 1024
        assert 0 < quota["used_bytes"] < 10_000
        assert quota["percent"] == 0
        assert quota["warning"] is False


def test_folder_defaults_to_inbox(user_client, account, server, server_user):
    """Without a folder the answer is about the Inbox."""
    server.deliver(server_user.username, make("one"))
    data = ok(status(user_client, account, folder=None))
    assert data["folder"]["name"] == "INBOX"
    assert data["folder"]["unread"] == 1


def test_the_status_of_another_folder(user_client, account, server, server_user):
    """The folder's own unread count; the title still counts the Inbox."""
    work = server.folder_name("Work")
    server.deliver(server_user.username, make("inbox"))
    server.deliver(server_user.username, make("w1"), make("w2"), folder=work)
    data = ok(status(user_client, account, folder=work))
    assert data["folder"]["name"] == work
    assert data["folder"]["unread"] == 2
    assert data["title_unread"] == 1


# -- what changed ---------------------------------------------------------------


def test_mail_appended_elsewhere_is_new_once(user_client, account, server, other):
    """A message another client appends is new on the next poll, then not."""
    first = ok(status(user_client, account))["folder"]
    other.append("INBOX", make("from the phone"))

    second = ok(status(user_client, account, state=first["state"]))
    assert second["folder"]["new"] == 1
    assert second["folder"]["changed"] is True
    assert second["folder"]["unread"] == 1
    assert second["title_unread"] == 1
    assert second["folder"]["state"] != first["state"]

    third = ok(status(user_client, account, state=second["folder"]["state"]))
    assert third["folder"]["new"] == 0
    assert third["folder"]["changed"] is False


def test_a_flag_changed_elsewhere_changes_nothing_new(
    user_client, account, server, server_user, other
):
    """Read on another client: changed, nothing new, one unread fewer."""
    server.deliver(server_user.username, make("one"), make("two"))
    first = ok(status(user_client, account))
    assert first["title_unread"] == 2
    other.select_folder("INBOX")
    uid = sorted(other.search(["ALL"]))[0]
    other.add_flags([uid], [b"\\Seen"])

    data = ok(status(user_client, account, state=first["folder"]["state"]))
    assert data["folder"]["changed"] is True
    assert data["folder"]["new"] == 0
    assert data["title_unread"] == 1

    again = ok(status(user_client, account, state=data["folder"]["state"]))
    assert again["folder"]["changed"] is False


def test_mail_expunged_elsewhere_is_a_change(
    user_client, account, server, server_user, other
):
    """A message deleted for good by another client: changed, nothing new."""
    server.deliver(server_user.username, make("one"), make("two"))
    first = ok(status(user_client, account))["folder"]
    other.select_folder("INBOX")
    uid = sorted(other.search(["ALL"]))[-1]
    other.add_flags([uid], [b"\\Deleted"])
    other.expunge()

    data = ok(status(user_client, account, state=first["state"]))
    assert data["folder"]["changed"] is True
    assert data["folder"]["new"] == 0
    assert by_name(data)["INBOX"]["total"] == 1


def test_a_folder_deleted_elsewhere_is_a_change(
    user_client, account, server, server_user, other
):
    """The open folder is gone: changed, with no state to continue from."""
    work = server.folder_name("Work")
    server.deliver(server_user.username, make("w1"), folder=work)
    first = ok(status(user_client, account, folder=work))["folder"]
    other.delete_folder(work)

    data = ok(status(user_client, account, folder=work, state=first["state"]))
    assert data["folder"] == {
        "name": work,
        "state": "",
        "new": 0,
        "changed": True,
        "unread": None,
    }
    assert work not in by_name(data)
    assert "INBOX" in by_name(data)
    # Polled again without a state, it still says so (the page reloads).
    again = ok(status(user_client, account, folder=work))
    assert again["folder"]["changed"] is True
    assert again["folder"]["state"] == ""


@pytest.mark.parametrize(
    "token",
    [
        "forged",
        "eyJ2IjoxfQ:1tXyZz:abcdefabcdefabcdefabcdefabcdefabcdefabcdefa",
        "x" * (MAX_TOKEN_LENGTH + 1),
        "x" * (3 * MAX_TOKEN_LENGTH),
    ],
)
def test_a_bad_token_starts_afresh(user_client, account, server, server_user, token):
    """A token not made here: a fresh state, changed (the list reloads), 200."""
    server.deliver(server_user.username, make("one"))
    data = ok(status(user_client, account, state=token))
    assert data["folder"]["changed"] is True
    assert data["folder"]["new"] == 0
    assert data["folder"]["state"]
    again = ok(status(user_client, account, state=data["folder"]["state"]))
    assert again["folder"]["changed"] is False


def test_a_token_of_another_folder_starts_afresh(
    user_client, account, server, server_user
):
    """A genuine token of another folder is not diffed against this one."""
    work = server.folder_name("Work")
    server.deliver(server_user.username, make("w1"), folder=work)
    token = ok(status(user_client, account, folder=work))["folder"]["state"]
    data = ok(status(user_client, account, folder="INBOX", state=token))
    assert data["folder"]["changed"] is True
    assert data["folder"]["new"] == 0


def test_a_folder_too_large_to_diff_is_judged_by_its_counts(
    user_client, account, server, server_user, other, monkeypatch
):
    """Without CONDSTORE past FALLBACK_LIMIT every sync is a full resync; the
    page is told of a change only when the folder's counts moved."""
    monkeypatch.setattr(imap_sync, "FALLBACK_LIMIT", 3)
    server.deliver(server_user.username, *(make(f"m{i}") for i in range(5)))
    first = ok(status(user_client, account))["folder"]
    quiet = ok(status(user_client, account, state=first["state"]))["folder"]
    assert (quiet["new"], quiet["changed"]) == (0, False)

    other.append("INBOX", make("from the phone"))
    appended = ok(status(user_client, account, state=quiet["state"]))["folder"]
    assert (appended["new"], appended["changed"]) == (1, True)
    quiet = ok(status(user_client, account, state=appended["state"]))["folder"]
    assert (quiet["new"], quiet["changed"]) == (0, False)

    other.select_folder("INBOX")
    other.add_flags([sorted(other.search(["ALL"]))[0]], [b"\\Seen"])
    read = ok(status(user_client, account, state=quiet["state"]))["folder"]
    assert (read["new"], read["changed"]) == (0, True)
    assert read["unread"] == 5


# -- the page's sidebar -----------------------------------------------------------


def test_the_page_shows_counts_only_when_they_are_cheap(
    user_client, account, server, server_user
):
    """Counts in the page with LIST-STATUS; otherwise only from the endpoint."""
    server.deliver(server_user.username, make("one"))
    list_url = reverse("mailbox:message_list", args=[account.pk]) + "?folder=INBOX"
    page = user_client.get(list_url).content.decode()
    has_count = bool(re.search(r'class="count"[^>]*>\s*1\s*</span>', page))
    assert has_count is (server.profile == "full")
    assert ok(status(user_client, account))["title_unread"] == 1


# -- the store (POP3 accounts) ----------------------------------------------------


def test_an_imported_message_is_new(
    settings, tmp_path, user, user_client, dovecot, mail_user, trust_test_ca
):
    """POP3: a message the importer stores after the first poll counts as new."""
    settings.MEDIA_ROOT = tmp_path / "media"
    account = make_account(user, dovecot, mail_user, kind=AccountKind.POP3)
    first = ok(status(user_client, account))
    assert first["title_unread"] == 0
    assert first["quota"]["used_bytes"] == 0
    assert by_name(first)["Inbox"] == {"name": "Inbox", "unread": 0, "total": 0}

    dovecot.deliver(mail_user.username, make("imported"))
    importer.run(account_id=account.pk)

    data = ok(status(user_client, account, state=first["folder"]["state"]))
    assert data["folder"]["new"] == 1
    assert data["folder"]["changed"] is True
    assert data["folder"]["unread"] == 1
    assert data["title_unread"] == 1
    assert data["quota"]["used_bytes"] > 0
    again = ok(status(user_client, account, state=data["folder"]["state"]))
    assert (again["folder"]["new"], again["folder"]["changed"]) == (0, False)


@pytest.mark.parametrize(("counts", "expected"), [(True, 0), (None, 0), (False, None)])
def test_store_folders_count_unless_told_not_to(user, counts, expected):
    """The store's counts come with its one query: only False leaves them out."""
    source = StoreSource(offline_pop_account(user))
    inbox = source.folders(counts=counts)[0]
    assert inbox.special_use == "inbox"
    assert (inbox.total, inbox.unread) == (expected, expected)


# -- the gate and the errors --------------------------------------------------------


@pytest.mark.parametrize("kind", [AccountKind.IMAP, AccountKind.POP3])
def test_another_users_account_is_not_found(other_user, dovecot, mail_user, user, kind):
    """Someone else's account id answers 404, whatever its kind."""
    theirs = make_account(other_user, dovecot, mail_user, kind=kind)
    response = status(login(user), theirs)
    assert response.status_code == 404


def test_a_signed_out_request_goes_to_the_sign_in_page(client, user, dovecot):
    """login_required's redirect (302 to the sign-in page), no data."""
    account = make_account(user, dovecot, dovecot.new_user())
    response = status(client, account)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert b"folders" not in response.content


def test_post_is_not_allowed(user_client, imap_account):
    """A read-only GET endpoint: no CSRF token is needed, POST is refused."""
    url = reverse("mailbox:folder_status", args=[imap_account.pk])
    assert user_client.post(url).status_code == 405


@pytest.mark.parametrize("name", ["bad\x01name", "a" * 1001])
def test_a_bad_folder_name_is_a_json_400(user_client, imap_account, name):
    """A name no folder can have: 400 with the error shape."""
    response = status(user_client, imap_account, folder=name)
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid", "detail": "This is not a valid folder name."}
    }


def _account_on(user, host: str, port: int, username: str, password: str):
    return mail_account_create(
        user=user,
        kind=AccountKind.IMAP,
        options=AccountOptions(label="Down", email="down@example.test"),
        server=ServerSettings(host, port, Security.STARTTLS, username),
        password=password,
    )


def test_a_server_that_is_down_is_a_json_503(user, user_client, dovecot):
    """No server on the port: 503 JSON with the error shape, never a page."""
    account = _account_on(user, dovecot.host, free_port(), "nobody", "secret")
    response = status(user_client, account)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "server_unavailable"
    assert error["detail"].startswith("The server refused the connection")
    assert response["Retry-After"] == "60"


def test_a_server_that_is_down_answers_in_french(user, dovecot):
    """The detail is in the user's language."""
    account = _account_on(user, dovecot.host, free_port(), "nobody", "secret")
    response = status(login(user), account, folder="INBOX")
    english = response.json()["error"]["detail"]
    client = login(user)
    url = reverse("mailbox:folder_status", args=[account.pk])
    french = client.get(url, HTTP_ACCEPT_LANGUAGE="fr").json()["error"]["detail"]
    assert french
    assert french != english


def test_a_refused_password_is_a_json_503(user, user_client, trust_test_ca, dovecot):
    """A password the server refuses: its own code, no Retry-After."""
    mail = dovecot.new_user()
    account = _account_on(user, dovecot.host, dovecot.imap_port, mail.username, "no")
    response = status(user_client, account)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "server_login_refused"
    assert not response.has_header("Retry-After")


@pytest.mark.parametrize(
    "name", ['No "such" folder', "*", "%", "a" * 1000, "Ünïcödé/ß", "INBOX/../x"]
)
def test_a_folder_that_does_not_exist_is_a_change(user_client, account, name):
    """An odd or unknown folder name: changed, no state, never an error page."""
    data = ok(status(user_client, account, folder=name))
    assert data["folder"]["state"] == ""
    assert data["folder"]["changed"] is True
    assert data["folder"]["unread"] is None


def test_every_connection_taken_is_a_json_503(
    settings, user_client, imap_account, trust_test_ca
):
    """No free connection to the mailbox within the wait: 503 JSON, not a page."""
    settings.WEBMAIL_IMAP_MAX_CONNECTIONS = 1
    settings.WEBMAIL_IMAP_SLOT_WAIT_SECONDS = 0.3
    with pool.connection(imap_account):
        response = status(user_client, imap_account)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "server_busy"
    assert "Too many connections" in error["detail"]
    assert response["Retry-After"] == "60"
    assert ok(status(user_client, imap_account))["folder"]["state"]


def test_an_account_to_reconnect_is_a_json_503(user_client, imap_account):
    """An OAuth2 grant the provider withdrew: its own code, no Retry-After."""
    imap_account.auth_method = AuthMethod.OAUTH2
    imap_account.status = AccountStatus.NEEDS_RECONNECT
    imap_account.save()
    response = status(user_client, imap_account)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "needs_reconnect"
    assert "reconnect the account" in error["detail"]
    assert not response.has_header("Retry-After")
