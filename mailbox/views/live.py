"""Live status of an open mail page: folder counts, quota, and new mail.

``GET /mail/<account_id>/status/?folder=<name>&state=<token>`` answers JSON that
a page polls (about once a minute) to refresh its unread counts, its quota bar
and its title, and to learn whether the open folder changed::

    {"folders": [{"name": "INBOX", "unread": 3, "total": 10}, ...],
     "quota": {"used_bytes": 1, "limit_bytes": 2, "percent": 50,
               "warning": false} | null,
     "folder": {"name": "INBOX", "state": "<token>", "new": 2,
                "changed": true, "unread": 3},
     "title_unread": 3}

``state`` is opaque to the page: the delta-sync token of
``MailSource.changes`` (mailbox/sync.py) with the folder's validity and counts,
signed. Without one the answer only starts a state (``new`` 0, ``changed``
false). With one, ``new`` counts the messages added to the folder since, and
``changed`` says whether anything was added, removed or re-flagged, or the state
could not be diffed (a full resync): the page then reloads its list. A token
that is not valid here (forged, of another account or folder, too long) is
answered like a full resync, with a fresh state. A folder that is gone answers
``changed`` with an empty ``state``. A full resync that happens on every poll
(see ``_explain_resync``) is judged by the folder's counts instead.

Counts are those of ``folders()``: on an IMAP server without LIST-STATUS they
cost one STATUS per folder, which the pages skip (see ``_sidebar`` in
mailbox/views/mail.py) and this endpoint pays in the background instead.

Cost of one call, measured with the test client (Dovecot 2.3, Maildir,
loopback, a busy 2-core machine; INBOX plus 5 or 35 other folders): with
CONDSTORE/QRESYNC 5-13 ms at 1,000 messages in the folder and 17-40 ms at
10,000; without them (and without LIST-STATUS) 29-41 ms at 1,000 and 210-370 ms
at 10,000, where the diff reads the flags of the whole folder (about 70 ms on
the wire and 120 ms parsing in imapclient). Past 10,000 messages such a folder
is no longer diffed (about 20-35 ms). A poll every 60 seconds is cheap enough.

Errors are JSON too, never a page: a bad folder name is 400, mail-server
trouble 503, both as ``{"error": {"code": "...", "detail": "..."}}``, the detail
in the user's language. Signed-out requests get ``login_required``'s redirect
to the sign-in page (302), which ``fetch()`` follows to an HTML answer: a
script tells it by ``response.redirected`` or the content type.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from mailbox.access import account_for_user, source_of
from mailbox.errors import Problem, ServerProblem
from mailbox.forms import FolderNameField
from mailbox.imap.pool import PoolBusy
from mailbox.sources import (
    BadSyncState,
    Changes,
    Folder,
    FolderChanged,
    MailSource,
    Quota,
    SpecialUse,
)
from mailbox.sync import MAX_TOKEN_LENGTH

logger = logging.getLogger(__name__)

# Seconds a page should wait before polling again after mail-server trouble.
RETRY_AFTER_SECONDS = 60
# New messages come from ``changes()`` in chunks (mailbox/sync.py ADDED_LIMIT).
# Past this many chunks in one poll, the count stops there (a lower bound) and
# the state starts afresh: the page reloads its list anyway.
MAX_CHUNKS = 10
# The page's token wraps a sync token (at most mailbox.sync.MAX_TOKEN_LENGTH).
MAX_PAGE_TOKEN_LENGTH = 2 * MAX_TOKEN_LENGTH
_SALT = "mailbox.live-status"


class StatusParams(forms.Form):
    folder = FolderNameField(required=False)
    state = forms.CharField(required=False, strip=False)

    def clean_folder(self) -> str:
        return self.cleaned_data["folder"] or "INBOX"


def _error(code: str, detail: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "detail": detail}}, status=status)


def _server_error(account_id: int, problem: ServerProblem | PoolBusy) -> JsonResponse:
    logger.info("status: account %s: mail server problem: %s", account_id, problem)
    if isinstance(problem, ServerProblem) and problem.problem == Problem.AUTH:
        # The stored password no longer works: polling again will not help.
        return _error("server_login_refused", problem.message, 503)
    if isinstance(problem, ServerProblem) and problem.problem == Problem.RECONNECT:
        return _error("needs_reconnect", problem.message, 503)
    code = "server_busy" if isinstance(problem, PoolBusy) else "server_unavailable"
    response = _error(code, problem.message, 503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _is(folder: Folder, name: str) -> bool:
    if folder.special_use == SpecialUse.INBOX and name.upper() == "INBOX":
        return True
    return folder.name == name


def _unread(folders: Sequence[Folder], name: str) -> int | None:
    return next((f.unread for f in folders if _is(f, name)), None)


def _quota(quota: Quota | None) -> dict[str, Any] | None:
    if quota is None:
        return None
    return {
        "used_bytes": quota.used_bytes,
        "limit_bytes": quota.limit_bytes,
        "percent": quota.percent,
        "warning": quota.is_warning,
    }


def _seal(changes: Changes, counts: tuple[int | None, int | None]) -> str:
    """The page's token: the sync state, with the folder's validity and counts."""
    if changes.state is None:
        return ""  # the folder is gone
    payload = {"s": changes.state, "v": changes.validity, "n": list(counts)}
    return signing.dumps(payload, salt=_SALT, compress=True)


def _unseal(token: str) -> dict[str, Any] | None:
    """The payload of a token made by ``_seal``; None for anything else."""
    if len(token) > MAX_PAGE_TOKEN_LENGTH:
        return None
    try:
        payload = signing.loads(token, salt=_SALT)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), str):
        return None
    return payload


@dataclass
class _News:
    changes: Changes | None  # None: the folder is gone
    new: int = 0
    changed: bool = False
    resync: bool = False  # a full resync the counts may explain away


def _news(source: MailSource, folder: str, since: str | None) -> _News:
    """What changed in ``folder`` since the sync state ``since`` (None: nothing)."""
    if since is None:
        try:
            return _News(source.changes(folder, None))
        except FolderChanged:
            return _News(None, changed=True)
    try:
        result = source.changes(folder, since)
    except BadSyncState:
        logger.info("status: a sync state not made here, starting afresh")
        return replace(_news(source, folder, None), changed=True)
    if result.state is None:
        return _News(None, changed=True)
    news = _News(
        result,
        new=len(result.added),
        changed=bool(result.added or result.changed or result.removed),
        resync=result.full_resync,
    )
    chunks = 1
    while news.changes is not None and news.changes.more:
        if chunks >= MAX_CHUNKS:
            return replace(_news(source, folder, None), new=news.new, changed=True)
        news.changes = source.changes(folder, news.changes.state)
        news.new += len(news.changes.added)
        chunks += 1
    return news


def _explain_resync(
    news: _News, previous: dict[str, Any], counts: tuple[int | None, int | None]
) -> None:
    """Decide ``changed`` and ``new`` after a full resync.

    Some states can never be diffed: an IMAP folder of more than 10,000
    messages on a server without CONDSTORE (mailbox/imap/sync.py
    FALLBACK_LIMIT) answers every sync with a full resync. Reloading the list
    on every poll would be wrong there, so a full resync of a folder that kept
    its validity is judged by its counts: the same total and unread, no change;
    a higher total, that many new messages. (Flag changes other than read or
    unread, and as many messages removed as added, go unseen until the list is
    opened again.) A different validity is always a change.
    """
    if news.changes is None or not news.resync:
        return
    before = previous.get("n")
    if news.changes.validity != previous.get("v") or not (
        isinstance(before, list) and len(before) == 2
    ):
        news.changed = True
        return
    total_before = before[0]
    if list(counts) != before:
        news.changed = True
        if isinstance(total_before, int) and isinstance(counts[0], int):
            news.new = max(news.new, counts[0] - total_before)


@login_required
@require_GET
@never_cache
def folder_status(request: HttpRequest, account_id: int) -> JsonResponse:
    """Counts of every folder, the quota, and news of one folder (see above)."""
    account = account_for_user(request.user, account_id)
    params = StatusParams(request.GET)
    if not params.is_valid():
        return _error("invalid", _("This is not a valid folder name."), 400)
    folder = params.cleaned_data["folder"]
    token = params.cleaned_data["state"]
    previous = _unseal(token) if token else None
    source = source_of(account)
    try:
        # The state first: counts read after it are never older than it.
        news = _news(source, folder, previous["s"] if previous else None)
        folders = source.folders(counts=True)
        quota = source.quota()
    except (ServerProblem, PoolBusy) as problem:
        return _server_error(account.pk, problem)
    mine = next((f for f in folders if _is(f, folder)), None)
    counts = (mine.total, mine.unread) if mine else (None, None)
    if previous is not None:
        _explain_resync(news, previous, counts)
    elif token:
        news.changed = True  # a token not made here: the page starts afresh
    return JsonResponse(
        {
            "folders": [
                {"name": f.name, "unread": f.unread, "total": f.total}
                for f in folders
                if f.selectable
            ],
            "quota": _quota(quota),
            "folder": {
                "name": folder,
                "state": _seal(news.changes, counts) if news.changes else "",
                "new": news.new,
                "changed": news.changed,
                "unread": counts[1],
            },
            "title_unread": _unread(folders, "INBOX"),
        }
    )
