"""The French catalog, and pages in the language of the browser or of the user.

The catalog tests read ``webmail/locale/fr/LC_MESSAGES/django.po`` with a small
parser of their own and the compiled ``django.mo`` with the standard library's
``gettext``, so a missing translation, a stale ``.mo`` or a broken placeholder
fails CI.
"""

from __future__ import annotations

import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from mailbox.imap import pool

ROOT = Path(__file__).resolve().parent.parent
LC_MESSAGES = ROOT / "webmail" / "locale" / "fr" / "LC_MESSAGES"
PO = LC_MESSAGES / "django.po"
MO = LC_MESSAGES / "django.mo"

# Python-format placeholders (%(name)s, %s, %d, %%) and HTML tags.
PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[sdif]|%%")
TAG = re.compile(r"<[^>]+>")


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0


def parse_po(path: Path) -> list[Entry]:
    """The entries of a PO file (obsolete ``#~`` ones left out), header included."""
    entries: list[Entry] = []
    entry: Entry | None = None
    target: tuple[str, int] | None = None

    def start(number: int) -> Entry:
        nonlocal entry
        if entry is None:
            entry = Entry(line=number)
        return entry

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            if entry is not None:
                entries.append(entry)
            entry, target = None, None
        elif line.startswith("#,"):
            start(number).flags |= {f.strip() for f in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            assert target is not None, f"{path}:{number}: a string without a keyword"
            _append(start(number), target, ast.literal_eval(line))
        else:
            keyword, _, value = line.partition(" ")
            match = re.fullmatch(r"msgstr\[(\d)\]", keyword)
            if match:
                target = ("msgstr", int(match.group(1)))
            elif keyword in {"msgid", "msgid_plural", "msgctxt", "msgstr"}:
                target = (keyword, 0)
            else:
                raise AssertionError(f"{path}:{number}: cannot read {line!r}")
            current = start(number)
            if keyword == "msgid_plural":
                current.msgid_plural = ""
            elif keyword == "msgctxt":
                current.msgctxt = ""
            _append(current, target, ast.literal_eval(value))
    if entry is not None:
        entries.append(entry)
    return entries


def _append(entry: Entry, target: tuple[str, int], text: str) -> None:
    name, index = target
    if name == "msgstr":
        entry.msgstr[index] = entry.msgstr.get(index, "") + text
    else:
        setattr(entry, name, (getattr(entry, name) or "") + text)


def messages(entries: list[Entry]) -> list[Entry]:
    return [e for e in entries if e.msgid]


def test_every_entry_is_translated_and_none_is_fuzzy():
    """Each msgid of the French catalog has a non-empty, non-fuzzy translation."""
    entries = parse_po(PO)
    header = [e for e in entries if not e.msgid]
    assert len(header) == 1
    assert "fuzzy" not in header[0].flags
    assert "Plural-Forms: nplurals=2; plural=(n > 1);" in header[0].msgstr[0]
    assert len(messages(entries)) > 300
    problems = []
    for e in messages(entries):
        forms = [0, 1] if e.msgid_plural is not None else [0]
        if "fuzzy" in e.flags:
            problems.append(f"line {e.line}: fuzzy {e.msgid!r}")
        if any(not e.msgstr.get(i, "").strip() for i in forms):
            problems.append(f"line {e.line}: untranslated {e.msgid!r}")
    assert not problems, "\n".join(problems)


def test_placeholders_and_tags_match():
    """A translation keeps exactly the placeholders and HTML tags of its msgid."""
    problems = []
    for e in messages(parse_po(PO)):
        pairs = [(e.msgid, e.msgstr.get(0, ""))]
        if e.msgid_plural is not None:
            pairs.append((e.msgid_plural, e.msgstr.get(1, "")))
        for source, translation in pairs:
            for pattern in (PLACEHOLDER, TAG):
                want = Counter(pattern.findall(source))
                got = Counter(pattern.findall(translation))
                if want != got:
                    problems.append(f"line {e.line}: {dict(want)} != {dict(got)}")
    assert not problems, "\n".join(problems)


def test_compiled_catalog_matches_the_po():
    """The committed .mo gives, for every entry, the .po's translation (not stale)."""
    with MO.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = []
    for e in messages(parse_po(PO)):
        if e.msgid_plural is None:
            key = e.msgid if e.msgctxt is None else f"{e.msgctxt}\x04{e.msgid}"
            got = [compiled._catalog.get(key)]
            want = [e.msgstr[0]]
        else:
            got = [compiled.ngettext(e.msgid, e.msgid_plural, n) for n in (1, 2)]
            want = [e.msgstr[0], e.msgstr[1]]
        if got != want:
            stale.append(f"line {e.line}: {e.msgid!r}: .mo has {got!r}")
    assert not stale, "compile the catalog (manage.py compilemessages):\n" + "\n".join(
        stale
    )


@pytest.mark.skipif(not shutil.which("xgettext"), reason="GNU gettext is missing")
def test_catalog_holds_every_string_of_the_sources(tmp_path):
    """makemessages over the sources finds no msgid that the catalog lacks."""
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("accounts", "mailbox", "webmail", "templates"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("*.mo"))
    shutil.copy(ROOT / "manage.py", copy / "manage.py")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DJANGO_SETTINGS_MODULE": "webmail.settings_test",
        "WEBMAIL_DATA_DIR": str(tmp_path / "var"),
    }
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "fr", "--no-obsolete"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    fresh = {
        (e.msgctxt, e.msgid) for e in messages(parse_po(copy / PO.relative_to(ROOT)))
    }
    known = {(e.msgctxt, e.msgid) for e in messages(parse_po(PO))}
    missing = sorted(m for _, m in fresh - known)
    assert not missing, (
        "run makemessages -l fr (see the README) and translate:\n" + "\n".join(missing)
    )


# --- pages in the browser's language ------------------------------------------------


def test_sign_in_page_follows_the_browser(client, db):
    """Accept-Language: fr gives the French sign-in page; en the English one."""
    url = reverse("account_login")
    french = client.get(url, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5")
    page = french.content.decode()
    assert french["Content-Language"] == "fr"
    assert '<html lang="fr">' in page
    assert "S’inscrire" in page  # our navigation
    assert "Mot de passe" in page  # allauth's form, in its own French
    assert "Sign up" not in page

    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert english["Content-Language"] == "en"
    assert "Sign up" in english.content.decode()


def test_unknown_browser_language_falls_back_to_english(client, db):
    """A browser asking only for German gets English, the site's default."""
    response = client.get(reverse("account_login"), HTTP_ACCEPT_LANGUAGE="de")
    assert response["Content-Language"] == "en"


def test_error_pages_are_translated(client, db):
    """The 404 page speaks French to a French browser."""
    response = client.get("/no/such/page/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 404
    assert "Introuvable" in response.content.decode()


def test_server_error_page_is_translated():
    """The 500 page (rendered without a request context) is French when French is on."""
    from django.template.loader import render_to_string
    from django.utils import translation

    with translation.override("fr"):
        page = render_to_string("500.html")
    assert '<html lang="fr">' in page
    assert "Un problème est survenu de notre côté" in page


def test_file_sizes_in_french_units(settings):
    """Sizes read "Ko", "Mo", "Go" in French, with a decimal comma; "KB" in English."""
    from django.template.defaultfilters import filesizeformat
    from django.utils import translation

    with translation.override("fr"):
        assert filesizeformat(1536) == "1,5\xa0Ko"
        assert filesizeformat(3 * 1024 * 1024) == "3,0\xa0Mo"
        assert filesizeformat(2 * 1024**3) == "2,0\xa0Go"
        assert filesizeformat(10) == "10\xa0octets"
    with translation.override("en"):
        assert filesizeformat(1536) == "1.5\xa0KB"


# --- a mail page, against the real Dovecot ------------------------------------------


@pytest.fixture
def _fresh_pool(trust_test_ca):
    yield
    pool.close_all()


def _mail(subject: str, date: datetime, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.net>"
    message["To"] = "me@example.test"
    message["Subject"] = subject
    message["Date"] = date.strftime("%a, %d %b %Y %H:%M:%S +0000")
    message.set_content(body)
    return bytes(message)


def _this_year_not_today() -> datetime:
    """A date of this year that is not today: the list shows it as day and month."""
    today = timezone.localdate()
    day = 2 if today.month == 1 and today.day == 1 else 1
    return datetime(today.year, 1, day, 12, 0, tzinfo=UTC)


@pytest.mark.usefixtures("_fresh_pool")
def test_message_list_in_french_has_french_dates_and_sizes(
    user_client, imap_account, dovecot, mail_user
):
    """A French list shows French folder names, month names and "Ko"/"Mo" sizes."""
    date = _this_year_not_today()
    dovecot.deliver(mail_user.username, _mail("Small", date, "Bonjour\n" * 400))
    dovecot.deliver(mail_user.username, _mail("Big", date, ("y" * 76 + "\n") * 20_000))
    url = reverse("mailbox:message_list", args=[imap_account.pk])
    url += "?" + urlencode({"folder": "INBOX"})

    page = user_client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert '<html lang="fr">' in page
    assert "Boîte de réception" in page
    assert f"{date.day} janvier" in page
    assert "\xa0Ko" in page
    assert "\xa0Mo" in page
    assert "\xa0KB" not in page
    assert "\xa0MB" not in page

    page = user_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Inbox" in page
    assert f"January {date.day}" in page
    assert "\xa0KB" in page
    assert "\xa0MB" in page


@pytest.mark.usefixtures("_fresh_pool")
def test_message_page_in_french(user_client, imap_account, dovecot, mail_user):
    """The message page names the month and the actions in French."""
    date = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    dovecot.deliver(mail_user.username, _mail("Mars", date, "Bonjour"))
    listing = reverse("mailbox:message_list", args=[imap_account.pk])
    page = user_client.get(
        listing + "?" + urlencode({"folder": "INBOX"}), HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert "14/03/2025" in page  # an older year: the short French date
    link = re.search(r'href="(/mail/\d+/message/\?[^"]+)"', page).group(1)
    message = user_client.get(
        link.replace("&amp;", "&"), HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert "14 mars 2025" in message
    assert "Répondre" in message
    assert "Transférer" in message
