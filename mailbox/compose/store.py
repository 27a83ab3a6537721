"""Sent and Drafts copies of POP3 accounts in the server-side store.

The store's own services import mail; these add our own messages to its Sent
and Drafts folders and remove a replaced draft for good. The bytes count
towards the user's storage quota like imported mail.
"""

from __future__ import annotations

import logging
import tempfile
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models.functions import Coalesce

from mailbox.quota import quota_release, quota_reserve
from mailbox.store import blobs
from mailbox.store.models import LocalFolder, StoredMessage
from mailbox.store.raw import is_inline_size
from mailbox.store.services import message_add, next_modseq, special_folder
from mailbox.store.sync import tombstones_add

if TYPE_CHECKING:
    from accounts.models import MailAccount, User

logger = logging.getLogger(__name__)


class StoreFull(Exception):
    """The user's storage quota has no room for the copy."""


def copy_add(
    *,
    user: User,
    account: MailAccount,
    use: str,
    data: bytes,
    seen: bool = True,
) -> StoredMessage:
    """Store ``data`` in the user's special folder ``use`` (Sent or Drafts).

    Raises StoreFull when the quota has no room (nothing is stored then). A
    small message is kept in the database with its row, a larger one as a
    blob (``store.raw``).
    """
    inline = is_inline_size(len(data))
    blob_name = ""
    if not inline:
        with tempfile.NamedTemporaryFile(dir=blobs.temp_dir(), delete=False) as handle:
            handle.write(data)
            path = handle.name
        blob_name = blobs.blob_save(path, user_id=user.pk)
    try:
        with transaction.atomic():
            if not quota_reserve(user=user, size=len(data)):
                raise StoreFull
            folder = special_folder(user=user, use=use)
            row = message_add(
                user=user,
                account=account,
                folder=folder,
                uidl="",
                blob_name=blob_name,
                size=len(data),
                data=data if inline else None,
            )
            if seen:
                StoredMessage.objects.filter(pk=row.pk).update(seen=True)
    except BaseException:
        # Rolled back: no row names the blob. (An on_commit callback would
        # be dropped with the rollback.)
        if blob_name:
            _blob_delete(blob_name)
        raise
    return row


def copy_remove(*, user: User, message_id: int) -> bool:
    """Delete one of the user's Drafts messages for good; False if it is gone."""
    with transaction.atomic():
        row = (
            StoredMessage.objects.select_for_update()
            .filter(
                user=user,
                pk=message_id,
                folder__special_use=LocalFolder.Use.DRAFTS,
            )
            .values("pk", "blob", "size", "folder_id")
            .first()
        )
        if row is None:
            return False
        StoredMessage.objects.filter(pk=row["pk"]).delete()
        quota_release(user_id=user.pk, size=row["size"])
        # A phone syncing Drafts must learn that the old version went away.
        tombstones_add(
            user=user,
            folder_id=row["folder_id"],
            ids=[row["pk"]],
            modseq=next_modseq(user=user),
        )
        # Inline bytes went with the row; a blob goes once this commits.
        name = row["blob"]
        if name:
            transaction.on_commit(lambda: _blob_delete(name))
    return True


def answered_set(*, user: User, message_id: int) -> None:
    """Mark one of the user's stored messages answered (the store has no $Forwarded)."""
    with transaction.atomic():
        StoredMessage.objects.filter(user=user, pk=message_id, answered=False).update(
            answered=True,
            # A flag change, not an arrival, for delta sync (mailbox.store.sync).
            arrived_modseq=Coalesce("arrived_modseq", "modseq"),
            modseq=next_modseq(user=user),
        )


def _blob_delete(name: str) -> None:
    try:
        blobs.blob_delete(name)
    except OSError:
        logger.warning("blob %s could not be deleted", name)
