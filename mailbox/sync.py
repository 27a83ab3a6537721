"""Delta-sync state tokens, shared by the IMAP and the store implementations.

A state token is opaque to clients: a JSON payload signed with the project's
secret (``django.core.signing``, one salt per kind of source), bound to one
account and one folder. What it holds is up to each implementation
(``mailbox/imap/sync.py``, ``mailbox/store/sync.py``). A token that fails the
signature, or names another account or folder, raises BadSyncState (the API
answers 400); a token of an older format is "too old" (a full resync).

Limits (the same for both kinds of account):
- ``ADDED_LIMIT``: at most this many new messages in one answer; the answer
  then says ``more`` and its state continues where the list stopped.
- ``CHANGES_LIMIT``: more changed plus removed messages than this, and the
  answer is a full resync instead (re-listing is cheaper than such a diff).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from django.core import signing

from mailbox.sources import BadSyncState

ADDED_LIMIT = 500
CHANGES_LIMIT = 10_000
# Tokens are sent back in a query string: refuse absurd ones before decoding.
MAX_TOKEN_LENGTH = 2000
FORMAT = 1


def _salt(kind: str) -> str:
    return f"mailbox.sync.{kind}"


def _folder_key(folder: str) -> str:
    """A short fixed-size stand-in for a folder name (names may be long)."""
    return hashlib.sha256(folder.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def state_dump(
    kind: str, *, account_id: int, folder: str, data: Mapping[str, Any]
) -> str:
    """A signed token for ``data`` (JSON-able), bound to the account and folder."""
    payload = {"v": FORMAT, "a": account_id, "f": _folder_key(folder), **data}
    return signing.dumps(payload, salt=_salt(kind), compress=True)


def state_load(
    kind: str, token: str, *, account_id: int, folder: str
) -> dict[str, Any] | None:
    """The data of a token made by ``state_dump`` for this account and folder.

    Returns None for a genuine token of an older format (the caller answers
    with a full resync). Raises BadSyncState for anything else: not signed
    here, signed for another kind of source, another account or folder.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise BadSyncState("unreadable sync state")
    try:
        payload = signing.loads(token, salt=_salt(kind))
    except (signing.BadSignature, ValueError) as exc:
        raise BadSyncState("unreadable sync state") from exc
    if not isinstance(payload, dict):
        raise BadSyncState("unreadable sync state")
    if payload.get("a") != account_id or payload.get("f") != _folder_key(folder):
        raise BadSyncState("sync state of another account or folder")
    if payload.get("v") != FORMAT:
        return None
    return payload


def int_field(payload: Mapping[str, Any], key: str) -> int | None:
    """An integer field of a loaded payload (None when absent or not an int)."""
    value = payload.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None
