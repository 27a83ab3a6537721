"""Headless Chromium (Debian's package) driven by Playwright for Python."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from django.urls import NoReverseMatch, reverse

CHROMIUM = os.environ.get("WEBMAIL_CHROMIUM", "/usr/bin/chromium")
# Screenshots land here for a reviewer to look at.
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        pytest.fail(
            f"No Chromium at {CHROMIUM}: install Debian's package (apt-get install "
            "chromium) or set WEBMAIL_CHROMIUM."
        )
    # Playwright's own event loop must not meet Django's async-unsafe guard.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def signed_in_page(browser, live_server, user):
    """A browser page with the user's session cookie set on the live server."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context = browser.new_context()
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": cookie.value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    yield page
    context.close()


# -- the main screens, shared by the screenshot tour and the accessibility check --

DESKTOP = {"viewport": {"width": 1440, "height": 900}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
VARIANTS = {
    f"{device}-{scheme}": {**options, "color_scheme": scheme}
    for device, options in (("desktop", DESKTOP), ("phone", PHONE))
    for scheme in ("light", "dark")
}


@dataclass
class Screen:
    """A page of the tour: how to reach it, whether it needs a signed-in user,
    and the HTTP status its own URL answers with."""

    name: str
    url: Callable[[Tour], str]
    signed_in: bool = True
    status: int = 200
    # Wait for the sandboxed message frame before looking at the page.
    has_message_frame: bool = False
    # What the user does on the page first (a form sent, say); the screen is
    # the page that follows.
    then: Callable[[object], None] | None = None


@dataclass
class Tour:
    """A user with a realistic IMAP mailbox and an imported POP3 account, as the
    screens need them."""

    user: object
    imap: object
    pop: object
    job: object
    validity: int
    newsletter_uid: int
    _down: object = None
    _not_hers: object = None

    def down(self) -> object:
        """Alice's IMAP account on a closed port, added the first time a
        screen asks: the other screens show her working accounts only."""
        if self._down is None:
            self._down = make_account_of(self.user, label="Club")
        return self._down

    def not_hers(self) -> object:
        """Another user's mail account: Alice's links to it answer 404."""
        from accounts.models import User
        from tests.conftest import PASSWORD

        if self._not_hers is None:
            bob = User.objects.create_user("bob@example.org", PASSWORD)
            self._not_hers = make_account_of(bob, label="Bob's")
        return self._not_hers


def make_account_of(user, *, label: str) -> object:
    """An IMAP account of ``user`` on a closed port (never connected to)."""
    from accounts.models import AccountKind, Security
    from accounts.servers import ServerSettings
    from accounts.services import AccountOptions, mail_account_create
    from tests.servers.ports import HOST, free_port

    return mail_account_create(
        user=user,
        kind=AccountKind.IMAP,
        options=AccountOptions(label=label, email=f"{user.email}"),
        server=ServerSettings(HOST, free_port(), Security.STARTTLS, user.email),
        password="unused",
    )


def _mail(
    sender: str,
    subject: str,
    when: dt.datetime,
    text: str,
    *,
    html: str | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "Alice Martin <alice@example.org>"
    message["Subject"] = subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid(domain="tour.example")
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, mime, data in attachments:
        maintype, subtype = mime.split("/")
        message.add_attachment(
            data, maintype=maintype, subtype=subtype, filename=filename
        )
    return message


NEWSLETTER_HTML = """<!DOCTYPE html><html><body style="font-family:Georgia,serif">
<table width="600" style="margin:auto;border-collapse:collapse"><tr><td>
<img src="https://images.newsletter.example/banner.png" width="600" height="160"
 alt="Field Notes — spring issue">
<h1 style="color:#1f4e79">Spring issue: the garden wakes up</h1>
<p>Dear reader, the first tulips are out and so is our spring issue.
Inside: pruning roses, a seed swap in Lyon and ten tools that last a lifetime.</p>
<p><a href="https://newsletter.example/spring">Read it online</a> ·
<a href="https://newsletter.example/unsubscribe">Unsubscribe</a></p>
</td></tr></table></body></html>"""


def seed_inbox(dovecot, username: str) -> int:
    """Deliver a lived-in inbox; return the UID of the HTML newsletter."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
    )
    items = [
        (
            _mail(
                "Carol Jones <carol@example.net>",
                "Lunch on Thursday?",
                now - dt.timedelta(days=6),
                "Hi Alice,\n\nAre you free for lunch on Thursday? The new place "
                "on Rue Mercière.\n\nCarol",
            ),
            "S",
        ),
        (
            _mail(
                "Billing <billing@provider.example>",
                "Your invoice for March",
                now - dt.timedelta(days=5),
                "Hello,\n\nYour invoice is attached. Amount due: 12.90 EUR.",
                attachments=(("invoice-2026-03.pdf", "application/pdf", pdf),),
            ),
            "SF",
        ),
        (
            _mail(
                "Dad <jean.martin@example.fr>",
                "Photos from the weekend",
                now - dt.timedelta(days=3),
                "Here is the one of the lake.",
                attachments=(("lake.png", "image/png", png),),
            ),
            "",
        ),
        (
            _mail(
                "GitLab <noreply@gitlab.example>",
                "[webmail] Pipeline #4812 passed",
                now - dt.timedelta(days=2, hours=4),
                "Pipeline #4812 for main passed in 6 minutes.",
            ),
            "S",
        ),
        (
            _mail(
                "Élodie Martin <elodie.martin@example.fr>",
                "Réunion de l’équipe : ordre du jour (été)",
                now - dt.timedelta(days=1, hours=2),
                "Bonjour à tous,\n\nVoici l’ordre du jour de la réunion de "
                "vendredi : bilan du trimestre, congés d’été, questions diverses."
                "\n\nÀ vendredi,\nÉlodie",
            ),
            "",
        ),
        (
            _mail(
                "Field Notes <hello@newsletter.example>",
                "Spring issue: the garden wakes up",
                now - dt.timedelta(hours=5),
                "Spring issue: https://newsletter.example/spring",
                html=NEWSLETTER_HTML,
            ),
            "",
        ),
        (
            _mail(
                "Bob Smith <bob@example.com>",
                "Re: Lunch on Thursday?",
                now - dt.timedelta(hours=1),
                "Count me in!\n\n> Are you free for lunch on Thursday?",
            ),
            "F",
        ),
    ]
    dovecot.deliver(
        username,
        _mail(
            "Rail Europe <tickets@rail.example>",
            "Your tickets: Lyon → Marseille",
            now - dt.timedelta(days=20),
            "Seat 42, coach 7.",
        ),
        folder=dovecot.folder_name("Travel"),
        flags="S",
    )
    dovecot.deliver(
        username,
        _mail(
            "Billing <billing@provider.example>",
            "Your invoice for February",
            now - dt.timedelta(days=33),
            "Amount due: 12.90 EUR.",
        ),
        folder=dovecot.folder_name("Receipts", "2026"),
        flags="S",
    )
    newsletter_uid = 0
    for uid, (message, flags) in enumerate(items, start=1):
        date = parsedate_to_datetime(message["Date"])
        dovecot.deliver(username, message, flags=flags, internaldate=date)
        if "newsletter" in message["From"]:
            newsletter_uid = uid
    return newsletter_uid


def seed_pop(dovecot, username: str) -> None:
    """Old mail waiting on a POP3 server."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for days, sender, subject, text in (
        (
            40,
            "Mairie de Lyon <etat-civil@lyon.example>",
            "Votre demande d’acte",
            "Votre acte de naissance est disponible en mairie.",
        ),
        (
            12,
            "Old ISP <support@old-isp.example>",
            "Your mailbox is moving",
            "From next month your mailbox is read-only.",
        ),
        (
            9,
            "Grand-mère <mamie@old-isp.example>",
            "Recette du gâteau",
            "200 g de farine, 3 œufs, 100 g de sucre…",
        ),
    ):
        when = now - dt.timedelta(days=days)
        message = _mail(sender, subject, when, text)
        dovecot.deliver(username, message, internaldate=when)


@pytest.fixture
def tour(dovecot, trust_test_ca, transactional_db) -> Iterator[Tour]:
    """Alice's accounts: a realistic IMAP inbox (with an outgoing server, never
    contacted) and a POP3 account imported into the store, its import job done."""
    from accounts.models import AccountKind, Security, User
    from mailbox import tasks
    from mailbox.imap import pool
    from mailbox.store.models import ImportJob
    from tests.conftest import PASSWORD, make_account

    user = User.objects.create_user("alice@example.org", PASSWORD)
    imap_user, pop_user = dovecot.new_user(), dovecot.new_user()
    newsletter_uid = seed_inbox(dovecot, imap_user.username)
    imap = make_account(user, dovecot, imap_user, kind=AccountKind.IMAP)
    imap.label, imap.email = "Personal", "alice@example.org"
    imap.smtp_host, imap.smtp_port = "smtp.example.org", 587
    imap.smtp_security, imap.smtp_username = Security.STARTTLS, "alice"
    imap.save()

    seed_pop(dovecot, pop_user.username)
    pop = make_account(user, dovecot, pop_user, kind=AccountKind.POP3)
    pop.label, pop.email = "Old ISP", "alice.martin@old-isp.example"
    pop.save()
    # Eager Celery in the tests: the import runs when the job commits.
    job_id = tasks.import_start(account=pop, trigger=ImportJob.Trigger.MANUAL)
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == ImportJob.Status.DONE, job.error

    with dovecot.login(imap_user) as client:
        validity = client.select_folder("INBOX")[b"UIDVALIDITY"]
    yield Tour(user, imap, pop, job, validity, newsletter_uid)
    pool.close_all()


def _all_inboxes_url(tour: Tour) -> str:
    try:
        return reverse("mailbox:all_inboxes")
    except NoReverseMatch:
        pytest.skip("no mailbox:all_inboxes page in this version")


def _all_inboxes_one_down_url(tour: Tour) -> str:
    url = _all_inboxes_url(tour)
    tour.down()
    return url


def _save_preferences(page) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    page.get_by_text("Your preferences are saved.").wait_for()


SCREENS = [
    Screen("sign-in", lambda t: reverse("account_login"), signed_in=False),
    Screen("sign-up", lambda t: reverse("account_signup"), signed_in=False),
    Screen(
        "message-list",
        lambda t: reverse("mailbox:message_list", args=[t.imap.pk]) + "?folder=INBOX",
    ),
    # The same list, of the POP3 mail imported into the store.
    Screen(
        "pop-message-list",
        lambda t: reverse("mailbox:message_list", args=[t.pop.pk]) + "?folder=INBOX",
    ),
    Screen(
        "message-view",
        lambda t: (
            reverse("mailbox:message_view", args=[t.imap.pk])
            + "?"
            + urlencode({"folder": "INBOX", "v": t.validity, "uid": t.newsletter_uid})
        ),
        has_message_frame=True,
    ),
    Screen("all-inboxes", _all_inboxes_url),
    # One account's server is down: the others are still listed, with a notice.
    Screen("all-inboxes-one-down", _all_inboxes_one_down_url),
    Screen("compose", lambda t: reverse("mailbox:compose_new", args=[t.imap.pk])),
    Screen("accounts", lambda t: reverse("mailbox:account_list")),
    Screen("add-account", lambda t: reverse("mailbox:account_add")),
    Screen(
        "import-job",
        lambda t: reverse("mailbox:import_job", args=[t.pop.pk, t.job.pk]),
    ),
    Screen("preferences", lambda t: reverse("accounts:preferences")),
    # The confirmation that follows a form: the site-wide message list.
    Screen(
        "preferences-saved",
        lambda t: reverse("accounts:preferences"),
        then=_save_preferences,
    ),
    Screen("folders", lambda t: reverse("mailbox:folder_manage", args=[t.imap.pk])),
    Screen(
        "search",
        lambda t: (
            reverse("mailbox:message_list", args=[t.imap.pk])
            + "?"
            + urlencode({"folder": "INBOX", "q": "lunch"})
        ),
    ),
    Screen(
        "server-down",
        lambda t: reverse("mailbox:message_list", args=[t.down().pk]) + "?folder=INBOX",
        status=503,
    ),
    # Less visited pages of the same forms.
    Screen(
        "account-edit",
        lambda t: reverse("mailbox:account_edit", args=[t.imap.pk]),
    ),
    Screen(
        "account-remove",
        lambda t: reverse("mailbox:account_delete", args=[t.pop.pk]),
    ),
    Screen("identity", lambda t: reverse("mailbox:identity_edit", args=[t.imap.pk])),
    Screen("outbox", lambda t: reverse("mailbox:outbox")),
    Screen("password", lambda t: reverse("account_change_password")),
    Screen("two-factor", lambda t: reverse("mfa_index")),
    Screen(
        "not-found",
        lambda t: reverse("mailbox:account_edit", args=[t.not_hers().pk]),
        status=404,
    ),
]


def session_cookie(user, live_server) -> dict[str, str]:
    """The session cookie of ``user`` signed in, for a browser context."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": live_server.url,
    }


# A page has loaded everything it needs this long after its own answer; one
# that keeps asking (a script polling in a loop, say) is a fault.
IDLE_WITHIN_MS = 10_000


@dataclass
class Visit:
    """A screen opened in one variant, with what went wrong on the way."""

    page: object
    problems: list[str] = field(default_factory=list)


@contextmanager
def visit(
    browser,
    live_server,
    tour: Tour,
    screen: Screen,
    variant: str,
    *,
    bypass_csp: bool = False,
):
    """Open ``screen`` in a fresh browser context of ``variant``; requests off
    the webmail are refused and, with failed requests and console errors,
    recorded as problems. ``bypass_csp`` lets a test inject its own script."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(
        locale="en-US", bypass_csp=bypass_csp, **VARIANTS[variant]
    )
    if screen.signed_in:
        context.add_cookies([session_cookie(tour.user, live_server)])
    page = context.new_page()
    seen = Visit(page)
    local = urlsplit(live_server.url).netloc
    url = live_server.url + screen.url(tour)

    def route(route) -> None:
        if urlsplit(route.request.url).netloc != local:
            seen.problems.append(f"request off the webmail: {route.request.url}")
            route.abort()
        else:
            route.continue_()

    def response(answer) -> None:
        expected = answer.url == url and answer.status == screen.status
        if answer.status >= 400 and not expected:
            seen.problems.append(f"HTTP {answer.status}: {answer.url}")

    def console(message) -> None:
        if message.type != "error":
            return
        # Chromium logs every 4xx/5xx answer; the expected one is not a fault.
        if screen.status >= 400 and f"status of {screen.status}" in message.text:
            return
        seen.problems.append(f"console error: {message.text}")

    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    context.route("**/*", route)
    page.on("response", response)
    page.on("console", console)
    page.on("pageerror", lambda error: seen.problems.append(f"script error: {error}"))
    page.on(
        "requestfailed",
        lambda request: seen.problems.append(
            f"request failed: {request.url} ({request.failure})"
        ),
    )
    try:
        answer = page.goto(url)
        if answer is None or answer.status != screen.status:
            status = answer.status if answer else None
            seen.problems.append(f"{url} answered {status}, not {screen.status}")
        try:
            page.wait_for_load_state("networkidle", timeout=IDLE_WITHIN_MS)
        except PlaywrightTimeout:
            seen.problems.append(
                f"still loading {IDLE_WITHIN_MS} ms after the page: {requests[-5:]}"
            )
        if screen.then is not None:
            screen.then(page)
            try:
                page.wait_for_load_state("networkidle", timeout=IDLE_WITHIN_MS)
            except PlaywrightTimeout:
                seen.problems.append(f"still loading after the action: {requests[-5:]}")
        if screen.has_message_frame:
            # Painted, not just attached: a screenshot taken earlier shows it blank.
            frame = page.frame_locator("iframe.message-body")
            frame.locator("body > *").first.wait_for(state="visible")
        yield seen
    finally:
        context.close()
