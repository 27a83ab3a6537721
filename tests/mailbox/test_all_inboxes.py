"""All inboxes: the INBOX of every account merged, through the URLs, against the
real Dovecot (an IMAP account read live, a POP3 account imported into the store)."""

from __future__ import annotations

import email.policy
import email.utils
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html import unescape

import pytest
from django.urls import reverse

from accounts.models import AccountKind, AccountStatus, AuthMethod, Security
from accounts.servers import ServerSettings
from accounts.services import AccountOptions, mail_account_create
from mailbox import unified
from mailbox.imap import pool
from mailbox.pop import importer
from mailbox.store.models import StoredMessage
from tests.conftest import login
from tests.servers.ports import free_port

URL = reverse("mailbox:all_inboxes")
STATUS_URL = reverse("mailbox:all_inboxes_status")
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

ROW = re.compile(
    r'<tr class="message-row(?P<unread> unread)?"\s+data-account="(?P<account>\d+)"'
    r'\s+data-folder="(?P<folder>[^"]*)"\s+data-validity="(?P<validity>\d+)"'
    r'\s+data-uid="(?P<uid>\d+)"\s+data-href="(?P<href>[^"]*)">'
    r'.*?<td class="subject">\s*<a href="[^"]*">(?P<subject>[^<]*)</a>',
    re.DOTALL,
)


@pytest.fixture(autouse=True)
def _fresh_pool(trust_test_ca):
    """Each test starts without pooled logins (its accounts are new anyway)."""
    yield
    pool.close_all()


def add_account(user, dovecot, mail_user, *, kind=AccountKind.IMAP, label="Work"):
    port = dovecot.imap_port if kind == AccountKind.IMAP else dovecot.pop3_port
    return mail_account_create(
        user=user,
        kind=kind,
        options=AccountOptions(label=label, email=mail_user.email),
        server=ServerSettings(
            dovecot.host, port, Security.STARTTLS, mail_user.username
        ),
        password=mail_user.password,
    )


def make(subject: str, when: datetime) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.net>"
    message["To"] = "me@example.test"
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(when)
    message.set_content("Hello")
    return message.as_bytes(policy=email.policy.SMTP)


def deliver(dovecot, mail_user, subjects_and_times, **kwargs) -> None:
    """Deliver in the given order (oldest first): UIDs follow the dates."""
    for subject, when in subjects_and_times:
        dovecot.deliver(
            mail_user.username, make(subject, when), internaldate=when, **kwargs
        )


def rows(page: str) -> list[dict[str, str]]:
    return [
        {**m.groupdict(), "subject": unescape(m["subject"])} for m in ROW.finditer(page)
    ]


def get_page(client, **params) -> str:
    response = client.get(URL, params)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def pop_user(dovecot):
    return dovecot.new_user()


@pytest.fixture
def mixed(user, dovecot, mail_user, pop_user):
    """An IMAP account ("Work") and a POP3 account ("Home") of ``user``, 40
    messages each, their dates interleaved one minute apart: Work has the even
    minutes, Home the odd ones. Every Home message and Work's oldest 10 are read;
    expected is every subject newest first."""
    work = add_account(user, dovecot, mail_user, label="Work")
    home = add_account(user, dovecot, pop_user, kind=AccountKind.POP3, label="Home")
    work_mail = [(f"work {i:02d}", START + timedelta(minutes=2 * i)) for i in range(40)]
    home_mail = [
        (f"home {i:02d}", START + timedelta(minutes=2 * i + 1)) for i in range(40)
    ]
    deliver(dovecot, mail_user, work_mail[:10], flags="S")
    deliver(dovecot, mail_user, work_mail[10:])
    deliver(dovecot, pop_user, home_mail)
    job = importer.run(account_id=home.pk)
    assert job.imported == 40
    StoredMessage.objects.filter(account=home).update(seen=True)
    expected = [s for s, _ in sorted(work_mail + home_mail, key=lambda x: x[1])]
    return work, home, expected[::-1]


def test_inboxes_are_merged_newest_first_and_paged(user_client, mixed):
    """Page 1 and page 2 together list every message once, newest first."""
    work, home, expected = mixed
    first = get_page(user_client)
    second = get_page(user_client, page=2)
    listed = [r["subject"] for r in rows(first)] + [r["subject"] for r in rows(second)]
    assert len(rows(first)) == 50
    assert listed == expected
    assert "80 messages" in first
    assert "30 unread" in first  # Work's 30 newest
    assert "Page 1 of 2" in first
    assert 'rel="next" href="?page=2"' in first
    assert 'rel="prev" href="?page=1"' in second
    assert 'rel="next"' not in second
    assert re.search(r"<title>\s*\(30\)\s*All inboxes", first)


def test_each_row_knows_its_account_and_opens_there(user_client, mixed):
    """A row carries account, folder, validity and uid; its link opens the
    message in that account."""
    work, home, _ = mixed
    listed = rows(get_page(user_client))
    by_account = {r["account"]: r for r in listed}
    assert set(by_account) == {str(work.pk), str(home.pk)}
    for account in (work, home):
        row = by_account[str(account.pk)]
        assert row["folder"] == "INBOX"
        expected_href = (
            reverse("mailbox:message_view", args=[account.pk])
            + f"?folder=INBOX&amp;v={row['validity']}&amp;uid={row['uid']}"
        )
        assert row["href"] == expected_href
        opened = user_client.get(unescape(row["href"]))
        assert opened.status_code == 200
        assert row["subject"] in opened.content.decode()
    badges = re.findall(r'<span class="badge">([^<]*)</span>', get_page(user_client))
    assert {"Work", "Home"} <= set(badges)
    unread = [r for r in listed if r["unread"]]
    assert unread
    assert {r["account"] for r in unread} == {str(work.pk)}


def test_filters_unread_and_flagged(user_client, mixed, dovecot):
    """Unread only lists the unread messages of every inbox; flagged only the
    flagged ones."""
    work, home, expected = mixed
    unread = rows(get_page(user_client, unread="1"))
    assert [r["subject"] for r in unread] == [s for s in expected if "work" in s][:30]
    StoredMessage.objects.filter(account=home, subject="home 05").update(flagged=True)
    flagged = rows(get_page(user_client, flagged="1"))
    assert [r["subject"] for r in flagged] == ["home 05"]
    wide = get_page(user_client, q="o", field="subject", flagged="")
    assert 'rel="next" href="?q=o&amp;field=subject&amp;page=2"' in wide
    page = get_page(user_client, q="home 1", field="subject")
    assert [r["subject"] for r in rows(page)] == [
        f"home 1{i}" for i in range(9, -1, -1)
    ]


def test_unreachable_account_is_named_and_the_others_shown(
    user, user_client, mixed, dovecot
):
    """A server that refuses connections gives a notice naming its account and
    why; the other accounts' mail is listed, status 200."""
    work, home, expected = mixed
    broken = add_account(user, dovecot, dovecot.new_user(), label="Dead server")
    broken.port = free_port()
    broken.save()
    page = get_page(user_client)
    assert [r["subject"] for r in rows(page)] == expected[:50]
    notices = page[page.index("account-problems") : page.index('class="toolbar"')]
    assert "Dead server" in notices
    assert "refused the connection" in notices
    assert "80 messages" in page
    status = user_client.get(STATUS_URL).json()
    dead = next(a for a in status["accounts"] if a["id"] == broken.pk)
    assert dead["inbox_unread"] is None
    assert "refused the connection" in dead["error"]
    assert status["unread_total"] == 30


def test_wrong_password_and_reconnect_are_named(user, user_client, mixed, dovecot):
    """A refused login and an OAuth2 account to reconnect each get a notice; the
    reconnect one links to the accounts page."""
    wrong = add_account(user, dovecot, dovecot.new_user(), label="Wrong pass")
    wrong.set_password("not the password")
    wrong.save()
    oauth = add_account(user, dovecot, dovecot.new_user(), label="Old grant")
    oauth.auth_method = AuthMethod.OAUTH2
    oauth.status = AccountStatus.NEEDS_RECONNECT
    oauth.save()
    page = get_page(user_client)
    assert len(rows(page)) == 50
    problems = page[page.index("account-problems") : page.index('class="toolbar"')]
    assert "Wrong pass" in problems
    assert "refused the user name or password" in problems
    assert "Old grant" in problems
    assert "reconnect the account" in problems
    assert reverse("mailbox:account_list") in problems


def test_other_users_mail_never_appears(user_client, mixed, other_user, dovecot, user):
    """Another user's IMAP and POP3 mail is not in the list nor in the counts."""
    theirs_imap = dovecot.new_user()
    theirs_pop = dovecot.new_user()
    add_account(other_user, dovecot, theirs_imap, label="Bob IMAP")
    bob_pop = add_account(
        other_user, dovecot, theirs_pop, kind=AccountKind.POP3, label="Bob POP"
    )
    newest = START + timedelta(days=30)
    deliver(dovecot, theirs_imap, [("bob secret imap", newest)])
    deliver(dovecot, theirs_pop, [("bob secret pop", newest)])
    importer.run(account_id=bob_pop.pk)
    page = get_page(user_client)
    assert "bob secret" not in page
    assert "Bob " not in page
    assert "80 messages" in page
    status = user_client.get(STATUS_URL).json()
    assert {a["label"] for a in status["accounts"]} == {"Work", "Home"}
    bob_page = get_page(login(other_user))
    assert [r["subject"] for r in rows(bob_page)] == [
        "bob secret imap",
        "bob secret pop",
    ]


def test_two_pop_accounts_share_one_store_inbox_without_doubles(
    user, user_client, dovecot, pop_user
):
    """The store's Inbox is listed once; each message shows the POP3 account it
    came from."""
    second_user = dovecot.new_user()
    first = add_account(user, dovecot, pop_user, kind=AccountKind.POP3, label="Pop A")
    second = add_account(
        user, dovecot, second_user, kind=AccountKind.POP3, label="Pop B"
    )
    deliver(dovecot, pop_user, [("from a", START)])
    deliver(dovecot, second_user, [("from b", START + timedelta(hours=1))])
    importer.run(account_id=first.pk)
    importer.run(account_id=second.pk)
    listed = rows(get_page(user_client))
    assert [(r["subject"], r["account"]) for r in listed] == [
        ("from b", str(second.pk)),
        ("from a", str(first.pk)),
    ]
    status = user_client.get(STATUS_URL).json()
    assert status == {
        "unread_total": 2,
        "accounts": [
            {"id": first.pk, "label": "Pop A", "inbox_unread": 1, "error": None},
            {"id": second.pk, "label": "Pop B", "inbox_unread": 1, "error": None},
        ],
    }


def test_status_follows_a_message_marked_read(user_client, mixed):
    """The status numbers match the inboxes, also after a message is read."""
    work, home, _ = mixed
    status = user_client.get(STATUS_URL)
    assert status.status_code == 200
    assert "no-cache" in status["Cache-Control"]
    assert status.json() == {
        "unread_total": 30,
        "accounts": [
            {"id": home.pk, "label": "Home", "inbox_unread": 0, "error": None},
            {"id": work.pk, "label": "Work", "inbox_unread": 30, "error": None},
        ],
    }
    newest = next(r for r in rows(get_page(user_client)) if r["unread"])
    assert newest["account"] == str(work.pk)
    opened = user_client.get(unescape(newest["href"]))  # marks it read
    assert opened.status_code == 200
    StoredMessage.objects.filter(account=home, subject="home 00").update(seen=False)
    after = user_client.get(STATUS_URL).json()
    assert after["unread_total"] == 30
    assert [a["inbox_unread"] for a in after["accounts"]] == [1, 29]
    assert "30 unread" in get_page(user_client)


def test_anonymous_is_sent_to_sign_in(client):
    """Both URLs ask an anonymous visitor to sign in."""
    for url in (URL, STATUS_URL):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]


def test_home_is_all_inboxes_with_two_accounts(user, user_client, dovecot, mail_user):
    """Home: the add-account page with none, the inbox with one, All inboxes with
    two or more."""
    home = reverse("mailbox:home")
    assert user_client.get(home)["Location"] == reverse("mailbox:account_list")
    one = add_account(user, dovecot, mail_user)
    location = user_client.get(home)["Location"]
    assert location == reverse("mailbox:message_list", args=[one.pk]) + "?folder=INBOX"
    add_account(user, dovecot, dovecot.new_user(), label="Second")
    assert user_client.get(home)["Location"] == URL
    one.is_active = False
    one.save()
    assert user_client.get(home)["Location"] != URL


def test_without_accounts_the_page_sends_to_the_account_list(user_client):
    """No active account: the page to add one."""
    assert user_client.get(URL)["Location"] == reverse("mailbox:account_list")


@pytest.mark.parametrize(
    "params", [{"page": "x"}, {"page": "0"}, {"page": "-3"}, {"field": "nope"}]
)
def test_bad_parameters_are_a_404_not_a_500(user_client, mixed, params):
    """A page or search field that is not one is refused, as on a folder list."""
    assert user_client.get(URL, params).status_code == 404


def test_page_and_status_answer_get_only(user_client, mixed):
    """The page and the status answer GET only."""
    assert user_client.post(URL).status_code == 405
    assert user_client.post(STATUS_URL).status_code == 405


def test_past_the_depth_the_page_points_to_the_accounts(user_client, mixed):
    """Past MAX_PAGES pages nothing is listed and a note says where older mail is."""
    page = get_page(user_client, page=unified.MAX_PAGES + 1)
    assert rows(page) == []
    assert "For older mail, open an account's own inbox." in page
    past_end = get_page(user_client, page=3)
    assert rows(past_end) == []
    assert 'rel="prev" href="?page=2"' in past_end


def test_merge_pages_never_repeat_nor_skip_whatever_the_dates(
    user, user_client, dovecot, mail_user, pop_user
):
    """Dates that disagree with arrival (a Date header far in the past or the
    future) still give consecutive pages without repeats or gaps."""
    add_account(user, dovecot, mail_user, label="Work")
    add_account(user, dovecot, pop_user, label="Other")
    for i in range(70):
        # Arrival in delivery order, Date headers all over the place.
        dovecot.deliver(
            mail_user.username,
            make(f"w{i:03d}", START + timedelta(minutes=(i * 37) % 120)),
            internaldate=START + timedelta(seconds=i),
        )
    deliver(
        dovecot,
        pop_user,
        [(f"o{i:03d}", START + timedelta(minutes=i)) for i in range(45)],
    )
    listed = []
    for number in (1, 2, 3):
        listed += [r["subject"] for r in rows(get_page(user_client, page=number))]
    assert len(listed) == 115 == len(set(listed))
    assert {s[0] for s in listed} == {"w", "o"}
    # Each inbox's own order (newest arrival first) is kept.
    own_order = [f"w{i:03d}" for i in range(69, -1, -1)]
    assert [s for s in listed if s[0] == "w"] == own_order


def test_time_of_two_inboxes_of_500(user, user_client, dovecot, mail_user, pop_user):
    """Pages 1, 5 and 20 of 2 x 500 messages (one IMAP, one POP3 in the store)
    stay well under a few seconds each on a warm pool (printed with -s)."""
    add_account(user, dovecot, mail_user, label="Work")
    home = add_account(user, dovecot, pop_user, kind=AccountKind.POP3, label="Home")
    dovecot.generate(mail_user.username, 500)
    dovecot.generate(pop_user.username, 500)
    assert importer.run(account_id=home.pk).imported == 500
    get_page(user_client)  # a first login, as any page after sign-in
    timings = {}
    for number in (1, 5, 20, 1, 5, 20):
        began = time.perf_counter()
        page = get_page(user_client, page=number)
        timings.setdefault(number, []).append(time.perf_counter() - began)
        assert len(rows(page)) == 50
    print(
        "all inboxes, 2 x 500:",
        {n: [f"{t * 1000:.0f} ms" for t in ts] for n, ts in timings.items()},
    )
    assert max(max(ts) for ts in timings.values()) < 3


def test_a_long_inbox_stops_at_the_depth_with_a_note(
    user, user_client, dovecot, mail_user, pop_user
):
    """Past MAX_PAGES pages of mail, the last page says where the older mail is."""
    add_account(user, dovecot, mail_user, label="Big")
    add_account(user, dovecot, pop_user, label="Small")
    dovecot.generate(mail_user.username, unified.MAX_PAGES * unified.PAGE_SIZE + 5)
    first = get_page(user_client)
    assert f"{unified.MAX_PAGES * unified.PAGE_SIZE + 5} messages" in first
    assert f"Page 1 of {unified.MAX_PAGES}" in first
    assert "own inbox" not in first
    last = get_page(user_client, page=unified.MAX_PAGES)
    assert len(rows(last)) == 50
    assert 'rel="next"' not in last
    assert "For older mail, open an account's own inbox." in last
    assert rows(last)[-1]["subject"].startswith("Generated message 6 of 1005")


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield listener.getsockname()[1]
    listener.close()


def test_silent_servers_are_waited_for_at_the_same_time(
    user, user_client, mixed, dovecot, silent_server, settings
):
    """Two servers that never answer cost the page one timeout, not two; both are
    named and the others' mail is listed."""
    settings.WEBMAIL_NETWORK_TIMEOUT = 1
    for label in ("Silent one", "Silent two"):
        account = add_account(user, dovecot, dovecot.new_user(), label=label)
        account.port = silent_server
        account.save()
    began = time.perf_counter()
    page = get_page(user_client)
    elapsed = time.perf_counter() - began
    print(f"two silent servers: {elapsed:.2f} s")
    assert elapsed < 1.9  # one after the other: 2 s at least
    assert len(rows(page)) == 50
    problems = page[page.index("account-problems") : page.index('class="toolbar"')]
    assert problems.count("did not answer in time") == 2
    assert "Silent one" in problems
    assert "Silent two" in problems


def test_a_busy_mailbox_is_named_and_the_others_shown(user_client, mixed, settings):
    """Every connection slot of an account taken: its notice says so, the store's
    mail is still listed."""
    work, home, expected = mixed
    settings.WEBMAIL_IMAP_MAX_CONNECTIONS = 1
    settings.WEBMAIL_IMAP_SLOT_WAIT_SECONDS = 0.3
    with pool.connection(work):
        page = get_page(user_client)
        status = user_client.get(STATUS_URL).json()
    assert [r["subject"] for r in rows(page)] == [s for s in expected if "home" in s]
    problems = page[page.index("account-problems") : page.index('class="toolbar"')]
    assert "Work" in problems
    assert "Too many connections" in problems
    assert "40 messages" in page
    busy = next(a for a in status["accounts"] if a["id"] == work.pk)
    assert "Too many connections" in busy["error"]


def test_notices_are_in_the_readers_language(user, user_client, mixed, dovecot):
    """Inboxes read in other threads still explain problems in the user's
    language."""
    for label in ("Dead one", "Dead two"):
        account = add_account(user, dovecot, dovecot.new_user(), label=label)
        account.port = free_port()
        account.save()
    response = user_client.get(URL, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count("Le serveur a refusé la connexion") == 2
