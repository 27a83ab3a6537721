"""Writing mail: drafts, attachments, the outbox and sending.

A message lives in ``OutgoingMessage`` from its first save until it is sent
(see models.py), so nothing is lost when a server is away. Each draft save also
puts the latest version in the account's Drafts folder (IMAP APPEND with
\\Draft, the previous version deleted by its uid; for POP3 accounts the store's
Drafts), and a sent message is appended to Sent (\\Seen) with its Bcc header,
which the SMTP copy does not carry. Sending runs in a Celery task
(``mailbox.tasks.send_message``); this module does the work.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.servers import ServerSettings
from mailbox import net
from mailbox.access import source_of
from mailbox.compose import build, store
from mailbox.compose.models import (
    Correspondent,
    OutgoingAttachment,
    OutgoingMessage,
    SenderIdentity,
)
from mailbox.errors import ServerProblem
from mailbox.sources import SpecialUse
from mailbox.store.models import LocalFolder

if TYPE_CHECKING:
    from django.core.files.uploadedfile import UploadedFile

    from accounts.models import MailAccount, User
    from mailbox.mime import ParsedMessage

logger = logging.getLogger(__name__)

_MIME_TYPE = re.compile(
    r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}"
)

State = OutgoingMessage.State
Kind = OutgoingMessage.Kind


class ComposeError(ValueError):
    """A message that cannot be saved or sent as it is; ``errors`` per field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class AttachmentTooLarge(ComposeError):
    def __init__(self) -> None:
        super().__init__(
            {
                "attachments": _("Attachments may total at most %(mb)d MB per message.")
                % {"mb": settings.WEBMAIL_ATTACHMENT_MAX_MB}
            }
        )


def attachment_limit_bytes() -> int:
    return settings.WEBMAIL_ATTACHMENT_MAX_MB * 1024 * 1024


# -- identity ----------------------------------------------------------------


def identity_get(*, account: MailAccount) -> SenderIdentity:
    """The account's name and signature (empty ones when never set)."""
    identity = SenderIdentity.objects.filter(account=account).first()
    return identity or SenderIdentity(account=account)


def identity_update(
    *, account: MailAccount, display_name: str, signature: str
) -> SenderIdentity:
    build.check_header_text(display_name)
    identity, _created = SenderIdentity.objects.update_or_create(
        account=account,
        defaults={"display_name": display_name.strip(), "signature": signature},
    )
    return identity


def sender_of(account: MailAccount) -> build.Mailbox:
    identity = identity_get(account=account)
    address = build.parse_addresses(account.email)[0].email
    return build.Mailbox(identity.display_name, address)


# -- drafts ----------------------------------------------------------------------


@dataclass(frozen=True)
class Fields:
    """What the user typed. Address fields are checked when set (``check``)."""

    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""


def check(fields: Fields) -> dict[str, str]:
    """Field errors of ``fields`` (bad addresses, line breaks in the subject)."""
    errors: dict[str, str] = {}
    for name in ("to", "cc", "bcc"):
        try:
            build.parse_addresses(getattr(fields, name))
        except build.AddressError as exc:
            errors[name] = str(exc)
    try:
        build.check_header_text(fields.subject)
    except build.AddressError:
        errors["subject"] = _("The subject must be one line.")
    if len(fields.subject) > build.MAX_SUBJECT:
        errors["subject"] = _("The subject is too long.")
    return errors


def _check_or_raise(fields: Fields, *, lenient: bool = False) -> None:
    """ComposeError for bad fields; ``lenient`` lets unfinished addresses through
    (an autosave while typing), never a line break in the subject."""
    errors = check(fields)
    if lenient:
        errors = {k: v for k, v in errors.items() if k not in ("to", "cc", "bcc")}
    if errors:
        raise ComposeError(errors)


def _new_row(*, user: User, account: MailAccount, **values: object) -> OutgoingMessage:
    return OutgoingMessage(
        user=user,
        account=account,
        message_id=build.new_message_id(sender_of(account).email),
        **values,
    )


def draft_create(
    *,
    user: User,
    account: MailAccount,
    fields: Fields,
    signature: bool = True,
    lenient: bool = False,
) -> OutgoingMessage:
    """A new draft of ``account`` (one of ``user``'s); ComposeError on bad fields.

    ``lenient`` keeps address fields as typed even when they do not parse yet
    (autosave); such a draft cannot be sent or copied to Drafts until fixed.
    """
    if account.user_id != user.pk:
        raise ValueError("account of another user")
    _check_or_raise(fields, lenient=lenient)
    body = fields.body
    if signature:
        body = build.with_signature(body, identity_get(account=account).signature)
    message = _new_row(
        user=user,
        account=account,
        to=fields.to,
        cc=fields.cc,
        bcc=fields.bcc,
        subject=fields.subject,
        body=body,
    )
    message.save()
    return message


def draft_update(
    *,
    message: OutgoingMessage,
    account: MailAccount,
    fields: Fields,
    lenient: bool = False,
) -> OutgoingMessage:
    """Save what the user typed; a failed message becomes a draft again."""
    if account.user_id != message.user_id:
        raise ValueError("account of another user")
    _editable(message)
    _check_or_raise(fields, lenient=lenient)
    if account.pk != message.account_id:
        # Another identity: its Drafts copy goes to the other account.
        _remote_draft_remove(message)
        message.account = account
    message.to, message.cc, message.bcc = fields.to, fields.cc, fields.bcc
    message.subject, message.body = fields.subject, fields.body
    message.state = State.DRAFT
    _mime_forget(message)
    message.save()
    return message


def _editable(message: OutgoingMessage) -> None:
    if not message.is_editable:
        raise ComposeError(
            {"state": _("This message is being sent or was sent; it cannot change.")}
        )


def draft_store_remote(*, message: OutgoingMessage) -> str:
    """Put the message's current version in the Drafts folder, replacing the last.

    Returns "" or a warning for the user: the draft is safe here either way,
    only the copy on the mail server could not be written.
    """
    try:
        data = _build(message, with_bcc=True)
    except build.AddressError:
        return _(
            "The draft is saved here; correct the addresses to save it in the "
            "Drafts folder too."
        )
    except OSError as exc:
        logger.warning("draft %s: cannot be built: %r", message.pk, exc)
        return _("The draft is saved here, but an attachment could not be read.")
    account = message.account
    previous = (message.draft_folder, message.draft_validity, message.draft_uid)
    try:
        if account.is_pop:
            row = store.copy_add(
                user=message.user,
                account=account,
                use=LocalFolder.Use.DRAFTS,
                data=data,
            )
            location = (row.folder.name, row.folder_id, row.pk)
        else:
            location = _imap_append(account, SpecialUse.DRAFTS, data, draft=True)
    except (ServerProblem, store.StoreFull) as exc:
        logger.info("draft %s: copy on the server failed: %s", message.pk, exc)
        if isinstance(exc, store.StoreFull):
            return _("The draft is saved here, but your storage is full.")
        return _(
            "The draft is saved here, but not in the Drafts folder: %(reason)s"
        ) % {"reason": exc.message}
    OutgoingMessage.objects.filter(pk=message.pk).update(
        draft_folder=location[0], draft_validity=location[1], draft_uid=location[2]
    )
    message.draft_folder, message.draft_validity, message.draft_uid = location
    if previous[2] is not None and previous != location:
        _remote_remove(account, message.user, *previous)
    return ""


def _remote_draft_remove(message: OutgoingMessage) -> None:
    if message.draft_uid is None:
        return
    _remote_remove(
        message.account,
        message.user,
        message.draft_folder,
        message.draft_validity,
        message.draft_uid,
    )
    OutgoingMessage.objects.filter(pk=message.pk).update(
        draft_folder="", draft_validity=None, draft_uid=None
    )
    message.draft_folder, message.draft_validity, message.draft_uid = "", None, None


def _remote_remove(
    account: MailAccount,
    user: User,
    folder: str,
    validity: int | None,
    uid: int | None,
) -> None:
    if uid is None or validity is None:
        return
    try:
        if account.is_pop:
            store.copy_remove(user=user, message_id=uid)
        else:
            from mailbox.imap import append, pool

            pool.run(
                account,
                lambda c: append.delete_message(c, folder, uid, validity=validity),
                retry=False,
            )
    except Exception:  # noqa: BLE001 - an old draft left behind is harmless
        logger.warning("account %s: an old draft could not be removed", account.pk)


def _imap_append(
    account: MailAccount, use: SpecialUse, data: bytes, *, draft: bool
) -> tuple[str, int, int | None]:
    from imapclient.exceptions import IMAPClientError

    from mailbox.imap import append, pool

    flags = [append.SEEN, append.DRAFT] if draft else [append.SEEN]

    def run(client):  # noqa: ANN001, ANN202
        folder = append.special_folder(client, use, chosen=account.special_folders)
        validity, uid = append.append(client, folder, data, flags)
        return folder, validity, uid

    try:
        return pool.run(account, run, retry=False)
    except IMAPClientError as exc:
        from mailbox.errors import Problem

        raise ServerProblem(Problem.PROTOCOL, str(exc)[:160]) from exc
    except pool.PoolBusy as exc:
        from mailbox.errors import Problem

        raise ServerProblem(Problem.NETWORK, exc.message) from exc


def outgoing_delete(*, message: OutgoingMessage) -> None:
    """Discard a draft: its Drafts copy, its files and its row."""
    _editable(message)
    _remote_draft_remove(message)
    names = [a.file for a in message.attachments.all()]
    if message.mime_blob:
        names.append(message.mime_blob)
    message.delete()
    transaction.on_commit(lambda: _files_delete(names))


def _files_delete(names: Sequence[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("file %s could not be deleted", name)


# -- attachments -------------------------------------------------------------------


def _file_name(user_id: int) -> str:
    return f"compose/{user_id}/{secrets.token_hex(16)}"


def attachments_total(message: OutgoingMessage) -> int:
    return sum(a.size for a in message.attachments.all())


def attachment_add(
    *, message: OutgoingMessage, upload: UploadedFile
) -> OutgoingAttachment:
    """Keep an uploaded file with the message; AttachmentTooLarge above the limit.

    Uploads arrive on disk already (Django's temporary-file upload handler) and
    are moved, not copied, into the default storage.
    """
    _editable(message)
    size = upload.size or 0
    if attachments_total(message) + size > attachment_limit_bytes():
        raise AttachmentTooLarge
    filename = _clean_filename(upload.name or "attachment")
    content_type = (upload.content_type or "").strip().lower()
    if not _MIME_TYPE.fullmatch(content_type):
        # The browser's word, unchecked: only a plain type/subtype is kept.
        content_type = build.guess_type(filename)
    name = default_storage.save(_file_name(message.user_id), upload)
    attachment = OutgoingAttachment.objects.create(
        message=message,
        filename=filename,
        content_type=content_type.lower(),
        size=size,
        file=name,
    )
    _mime_forget(message)
    return attachment


def _attachment_from_bytes(
    message: OutgoingMessage, filename: str, content_type: str, data: bytes
) -> OutgoingAttachment:
    name = default_storage.save(_file_name(message.user_id), ContentFile(data))
    return OutgoingAttachment.objects.create(
        message=message,
        filename=_clean_filename(filename),
        content_type=content_type,
        size=len(data),
        file=name,
    )


def _clean_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c >= " " and c != "\x7f").strip()
    return name[:200] or "attachment"


def attachment_remove(*, message: OutgoingMessage, attachment_id: int) -> bool:
    """Remove one attachment of the message; False when it has no such one."""
    _editable(message)
    attachment = message.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        return False
    name = attachment.file
    attachment.delete()
    _mime_forget(message)
    transaction.on_commit(lambda: _files_delete([name]))
    return True


def _mime_forget(message: OutgoingMessage) -> None:
    if message.mime_blob:
        name = message.mime_blob
        OutgoingMessage.objects.filter(pk=message.pk).update(mime_blob="")
        message.mime_blob = ""
        transaction.on_commit(lambda: _files_delete([name]))


# -- building ----------------------------------------------------------------------


def _draft(message: OutgoingMessage) -> build.Draft:
    def reader(name: str):  # noqa: ANN202
        def read() -> bytes:
            with default_storage.open(name, "rb") as handle:
                return handle.read()

        return read

    return build.Draft(
        sender=sender_of(message.account),
        to=build.parse_addresses(message.to),
        cc=build.parse_addresses(message.cc),
        bcc=build.parse_addresses(message.bcc),
        subject=message.subject,
        text=message.body,
        message_id=message.message_id,
        in_reply_to=message.in_reply_to,
        references=message.references.split(),
        files=[
            build.FilePart(a.filename, a.content_type, reader(a.file))
            for a in message.attachments.all()
        ],
        date=timezone.now(),
    )


def _build(message: OutgoingMessage, *, with_bcc: bool) -> bytes:
    data = build.build(_draft(message))
    return data if with_bcc else build.without_bcc(data)


def _mime_for_sending(message: OutgoingMessage) -> bytes:
    """The message's MIME, built once and kept (a retry sends the same bytes)."""
    if message.mime_blob:
        try:
            with default_storage.open(message.mime_blob, "rb") as handle:
                return handle.read()
        except OSError:
            logger.warning("outgoing %s: stored MIME unreadable, rebuilt", message.pk)
    data = _build(message, with_bcc=True)
    name = default_storage.save(_file_name(message.user_id) + ".eml", ContentFile(data))
    OutgoingMessage.objects.filter(pk=message.pk).update(mime_blob=name)
    message.mime_blob = name
    return data


def recipients_of(message: OutgoingMessage) -> list[build.Mailbox]:
    everyone: list[build.Mailbox] = []
    seen: set[str] = set()
    for text in (message.to, message.cc, message.bcc):
        for mailbox in build.parse_addresses(text):
            if mailbox.email.lower() not in seen:
                seen.add(mailbox.email.lower())
                everyone.append(mailbox)
    return everyone


# -- sending -------------------------------------------------------------------------


def smtp_missing(account: MailAccount) -> bool:
    return ServerSettings.outgoing_of(account) is None


def message_queue(*, message: OutgoingMessage) -> None:
    """Hand the message to the worker (after commit); ComposeError if it cannot go.

    It needs a recipient and an outgoing server on its account.
    """
    from mailbox import tasks

    _editable(message)
    errors = check(
        Fields(message.to, message.cc, message.bcc, message.subject, message.body)
    )
    if not errors and not recipients_of(message):
        errors["to"] = _("Give at least one recipient.")
    if smtp_missing(message.account):
        errors["account"] = _(
            "This account has no outgoing (SMTP) server: add one in its settings."
        )
    if errors:
        raise ComposeError(errors)
    size = attachments_total(message)
    if size > attachment_limit_bytes():
        raise AttachmentTooLarge
    updated = OutgoingMessage.objects.filter(
        pk=message.pk, state__in=[State.DRAFT, State.FAILED]
    ).update(state=State.QUEUED, queued_at=timezone.now(), last_error="", attempts=0)
    if not updated:
        raise ComposeError({"state": _("This message is already being sent.")})
    message.refresh_from_db()
    pk = message.pk
    transaction.on_commit(lambda: _enqueue(tasks.send_message, pk))


def _enqueue(task: object, pk: int) -> None:
    """Hand the message to the broker; if it is unreachable, say so on the message.

    The message then ends "Not sent" (editable, sent again with one click)
    instead of waiting forever for a task that never came.
    """
    try:
        task.delay(pk)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - kombu raises many kinds
        logger.exception("outgoing %s: could not be queued", pk)
        OutgoingMessage.objects.filter(pk=pk, state=State.QUEUED).update(
            state=State.FAILED,
            last_error=_("The sending service is not reachable; try again later."),
        )


def message_send(*, message_id: int) -> None:
    """Send one queued message; then the Sent copy, the flags, the draft removed.

    Raises SendFailed for a temporary failure (the message stays queued, with
    the reason, for the task to retry). A permanent one marks it failed with
    the server's reply: the user edits it and sends again. Only the queued
    state is sent, so a task run twice never sends twice in a row.
    """
    from mailbox.smtp import client as smtp

    claimed = OutgoingMessage.objects.filter(
        pk=message_id, state__in=[State.QUEUED, State.SENDING]
    ).update(state=State.SENDING, attempts=F("attempts") + 1)
    if not claimed:
        logger.info("outgoing %s: not queued, nothing to send", message_id)
        return
    message = OutgoingMessage.objects.select_related("account", "user").get(
        pk=message_id
    )
    account = message.account
    server = ServerSettings.outgoing_of(account)
    try:
        if server is None:
            raise smtp.SendFailed(
                _("This account has no outgoing (SMTP) server."), temporary=False
            )
        try:
            data = _mime_for_sending(message)
            sender = sender_of(account).email
        except (OSError, build.AddressError) as exc:
            # An attachment file gone, an address that no longer parses:
            # trying again cannot help; the user can fix the draft.
            logger.warning("outgoing %s: cannot be built: %r", message_id, exc)
            raise smtp.SendFailed(
                _("The message could not be put together: %(reason)s")
                % {"reason": exc},
                temporary=False,
            ) from exc

        def attempt(secret: str) -> None:
            smtp.send(
                server,
                secret,
                sender=sender,
                recipients=[m.email for m in recipients_of(message)],
                data=build.without_bcc(data),
                helo=sender.rpartition("@")[2] or "localhost",
                timeout=net.timeout_seconds(),
            )

        secret = _smtp_secret(account)
        try:
            attempt(secret)
        except smtp.SendFailed as exc:
            # An OAuth2 token refused (revoked or expired early): refresh once.
            if not account.uses_oauth or exc.code not in (530, 535):
                raise
            attempt(_smtp_secret(account, failed=secret))
    except smtp.SendFailed as exc:
        state = State.QUEUED if exc.temporary else State.FAILED
        OutgoingMessage.objects.filter(pk=message_id).update(
            state=state, last_error=exc.message
        )
        logger.info(
            "outgoing %s: %s failure (code %s)",
            message_id,
            "temporary" if exc.temporary else "permanent",
            exc.code,
        )
        if exc.temporary:
            raise
        return
    OutgoingMessage.objects.filter(pk=message_id).update(
        state=State.SENT, sent_at=timezone.now(), last_error=""
    )
    logger.info("outgoing %s: sent", message_id)
    correspondents_record(user=message.user, mailboxes=recipients_of(message))
    _after_sending(message, data)


def _smtp_secret(account: MailAccount, *, failed: str | None = None) -> str:
    """The SMTP password, or for an OAuth2 account a valid access token."""
    from mailbox.smtp.client import SendFailed, problem_failure

    if not account.uses_oauth:
        return account.get_smtp_password()
    from mailbox import oauth

    try:
        return oauth.secret_for(account, failed=failed)
    except ServerProblem as exc:
        failure = problem_failure(exc)
        raise SendFailed(failure.message, temporary=failure.temporary) from exc


def message_give_up(*, message_id: int, reason: str) -> None:
    """The retries are spent: the message becomes failed (editable) with ``reason``."""
    OutgoingMessage.objects.filter(
        pk=message_id, state__in=[State.QUEUED, State.SENDING]
    ).update(state=State.FAILED, last_error=reason)


def _after_sending(message: OutgoingMessage, data: bytes) -> None:
    """The Sent copy, the original's flags, the draft removed: each may fail alone."""
    account = message.account
    try:
        if account.is_pop:
            store.copy_add(
                user=message.user, account=account, use=LocalFolder.Use.SENT, data=data
            )
        else:
            _imap_append(account, SpecialUse.SENT, data, draft=False)
        OutgoingMessage.objects.filter(pk=message.pk).update(sent_copy_saved=True)
    except (ServerProblem, store.StoreFull) as exc:
        logger.warning("outgoing %s: no Sent copy: %s", message.pk, exc)
        OutgoingMessage.objects.filter(pk=message.pk).update(
            last_error=_("Sent, but the copy in Sent could not be saved.")
        )
    try:
        _original_flag(message)
    except Exception as exc:  # noqa: BLE001 - sent already; a flag is a nicety
        logger.info("outgoing %s: original not flagged: %r", message.pk, exc)
    _remote_draft_remove(message)
    _files_release(message)


def _files_release(message: OutgoingMessage) -> None:
    """After sending: the uploaded files go (the MIME holds them); the MIME too
    once the Sent copy has it. The row stays, for the outbox page."""
    saved = OutgoingMessage.objects.filter(pk=message.pk, sent_copy_saved=True)
    names = list(message.attachments.values_list("file", flat=True))
    message.attachments.all().delete()
    if saved.exists() and message.mime_blob:
        names.append(message.mime_blob)
        saved.update(mime_blob="")
    transaction.on_commit(lambda: _files_delete(names))


def _original_flag(message: OutgoingMessage) -> None:
    if message.original_uid is None or message.original_validity is None:
        return
    if message.kind not in (
        Kind.REPLY,
        Kind.REPLY_ALL,
        Kind.FORWARD,
        Kind.FORWARD_ATTACHED,
    ):
        return
    answered = message.kind in (Kind.REPLY, Kind.REPLY_ALL)
    account = message.account
    if account.is_pop:
        if answered:
            store.answered_set(user=message.user, message_id=message.original_uid)
        return
    from mailbox.imap import append, pool

    flag = append.ANSWERED if answered else append.FORWARDED
    folder, uid = message.original_folder, message.original_uid
    validity = message.original_validity
    pool.run(
        account,
        lambda c: append.add_flags(c, folder, uid, [flag], validity=validity),
        retry=False,
    )


# -- correspondents --------------------------------------------------------------


def correspondents_record(*, user: User, mailboxes: Sequence[build.Mailbox]) -> None:
    """Remember the addresses written to, for autocomplete."""
    now = timezone.now()
    for mailbox in mailboxes:
        email = mailbox.email.lower()[:320]
        updated = Correspondent.objects.filter(user=user, email=email).update(
            times_used=F("times_used") + 1, last_used_at=now
        )
        if mailbox.name:
            Correspondent.objects.filter(user=user, email=email).update(
                name=mailbox.name[:255]
            )
        if not updated:
            Correspondent.objects.get_or_create(
                user=user,
                email=email,
                defaults={
                    "name": mailbox.name[:255],
                    "times_used": 1,
                    "last_used_at": now,
                },
            )


def correspondent_list(*, user: User, query: str = "", limit: int = 10):  # noqa: ANN201
    """The user's correspondents matching ``query`` (address or name), recent first."""
    from django.db.models import Q

    rows = Correspondent.objects.filter(user=user)
    query = query.strip()
    if query:
        rows = rows.filter(Q(email__icontains=query) | Q(name__icontains=query))
    return rows.order_by("-last_used_at", "-times_used")[:limit]


# -- replies, forwards, drafts from a folder -------------------------------------


def _own_addresses(user: User) -> set[str]:
    from accounts.models import MailAccount

    emails = set(MailAccount.objects.filter(user=user).values_list("email", flat=True))
    return {e.lower() for e in emails} | {user.email.lower()}


def _as_text(addresses: Sequence[object], exclude: set[str]) -> str:
    kept: list[build.Mailbox] = []
    seen = set(exclude)
    for a in addresses:
        email = getattr(a, "email", "")
        if not email or email.lower() in seen:
            continue
        seen.add(email.lower())
        try:
            checked = build.parse_addresses(email)[0].email
        except build.AddressError:
            continue
        kept.append(build.Mailbox(getattr(a, "name", ""), checked))
    return build.format_addresses(kept)


def respond_start(
    *,
    user: User,
    account: MailAccount,
    folder: str,
    validity: int,
    uid: int,
    kind: str,
) -> OutgoingMessage:
    """A new draft replying to or forwarding a message of ``account``.

    Reply: to the Reply-To (or From) of the original; reply all: also its To
    and Cc, without the user's own addresses. Forward inline: quoted headers
    and text, the original's attachments carried; forward as attachment: the
    whole original as message/rfc822. Threading headers and Re:/Fwd: set.
    Raises ServerProblem, FolderChanged, MessageGone from the source.
    """
    if account.user_id != user.pk:
        raise ValueError("account of another user")
    if kind not in (Kind.REPLY, Kind.REPLY_ALL, Kind.FORWARD, Kind.FORWARD_ATTACHED):
        raise ValueError("unknown kind")
    source = source_of(account)
    original = source.message(folder, uid, validity=validity, mark_seen=False)
    parsed = original.parsed
    own = _own_addresses(user)
    values: dict[str, object] = {
        "kind": kind,
        "original_folder": folder,
        "original_validity": validity,
        "original_uid": uid,
    }
    signature = identity_get(account=account).signature
    if kind in (Kind.REPLY, Kind.REPLY_ALL):
        targets = parsed.reply_to or parsed.from_
        to = _as_text(targets, set())
        if kind == Kind.REPLY_ALL:
            to = _as_text(targets, own) or to
            already = {m.email.lower() for m in build.parse_addresses(to)}
            values["cc"] = _as_text((*parsed.to, *parsed.cc), own | already)
        values["to"] = to
        values["subject"] = build.reply_subject(parsed.subject)
        values["body"] = build.with_signature("", signature) + build.quoted_reply(
            parsed
        )
        if parsed.message_id:
            values["in_reply_to"] = parsed.message_id
        values["references"] = " ".join(
            build.references_for(
                message_id=parsed.message_id,
                references=parsed.references,
                in_reply_to=parsed.in_reply_to,
            )
        )
    else:
        values["subject"] = build.forward_subject(parsed.subject)
        if kind == Kind.FORWARD:
            values["body"] = build.with_signature("", signature) + build.forward_block(
                parsed
            )
        else:
            values["body"] = build.with_signature("", signature)
    values["subject"] = " ".join(str(values["subject"]).split())[: build.MAX_SUBJECT]
    # Fetched before the transaction: no database lock held over the network.
    files: list[tuple[str, str, bytes]] = []
    if kind == Kind.FORWARD:
        files = _original_files(source, parsed, folder, uid, validity)
    elif kind == Kind.FORWARD_ATTACHED:
        raw = b"".join(source.raw(folder, uid, validity=validity))
        name = (parsed.subject or "message").strip()[:80] + ".eml"
        files = [(name, "message/rfc822", raw)]
    with transaction.atomic():
        message = _new_row(user=user, account=account, **values)
        message.save()
        for filename, content_type, data in files:
            _attachment_from_bytes(message, filename, content_type, data)
    return message


def _original_files(
    source: object,
    parsed: ParsedMessage,
    folder: str,
    uid: int,
    validity: int,
) -> list[tuple[str, str, bytes]]:
    """(filename, content type, bytes) of the original's attachments."""
    files: list[tuple[str, str, bytes]] = []
    total = 0
    for info in parsed.attachments:
        if info.is_inline:
            continue
        download = source.attachment(folder, uid, info.part_id, validity=validity)  # type: ignore[attr-defined]
        data = b"".join(download.chunks)
        total += len(data)
        if total > attachment_limit_bytes():
            raise AttachmentTooLarge
        files.append((info.filename, info.content_type, data))
    return files


def draft_open(
    *, user: User, account: MailAccount, folder: str, validity: int, uid: int
) -> OutgoingMessage:
    """The draft for a message of a Drafts folder: ours if we saved it, else a copy.

    A message of the Drafts folder written elsewhere (another client) becomes a
    new draft here whose next save replaces it there.
    """
    if account.user_id != user.pk:
        raise ValueError("account of another user")
    ours = OutgoingMessage.objects.filter(
        user=user,
        account=account,
        draft_folder=folder,
        draft_validity=validity,
        draft_uid=uid,
        state__in=[State.DRAFT, State.FAILED],
    ).first()
    if ours is not None:
        return ours
    source = source_of(account)
    original = source.message(folder, uid, validity=validity, mark_seen=False)
    parsed = original.parsed
    files = _original_files(source, parsed, folder, uid, validity)
    bcc = _bcc_of(source, folder, uid, validity)
    with transaction.atomic():
        message = OutgoingMessage(
            user=user,
            account=account,
            to=_as_text(parsed.to, set()),
            cc=_as_text(parsed.cc, set()),
            bcc=bcc,
            subject=" ".join(parsed.subject.split())[: build.MAX_SUBJECT],
            body=build._original_text(parsed),
            message_id=parsed.message_id
            or build.new_message_id(sender_of(account).email),
            in_reply_to=parsed.in_reply_to or "",
            references=" ".join(parsed.references),
            draft_folder=folder,
            draft_validity=validity,
            draft_uid=uid,
        )
        message.save()
        for filename, content_type, data in files:
            _attachment_from_bytes(message, filename, content_type, data)
    return message


def _bcc_of(source: object, folder: str, uid: int, validity: int) -> str:
    """The Bcc header of a stored draft (the parsed message does not keep it)."""
    import email.policy
    from email.parser import BytesHeaderParser

    raw = b"".join(source.raw(folder, uid, validity=validity))  # type: ignore[attr-defined]
    head = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    value = head.get("Bcc")
    if not value:
        return ""
    try:
        return _as_text(
            [build.Mailbox(a.display_name, a.addr_spec) for a in value.addresses],
            set(),
        )
    except Exception:  # noqa: BLE001 - a malformed Bcc of a foreign draft
        return ""
