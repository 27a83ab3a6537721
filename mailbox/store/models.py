"""The server-side store: mail imported from POP3 accounts, kept for every device.

A stored message is a row with what a list needs plus its raw bytes: a small
message's in an ``InlineRaw`` row of the database, a larger one's as a blob in
Django's storage (files by default; see mailbox/store/raw.py). The UIDL ledger
remembers every message ever imported from an account — also those deleted here
since — so nothing comes back twice. Import jobs record each run for the user
and the admin.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import MailAccount


class LocalFolder(models.Model):
    """A folder of the store. Names use "/" between levels, as IMAP names do."""

    class Use(models.TextChoices):
        INBOX = "inbox", _("Inbox")
        SENT = "sent", _("Sent")
        DRAFTS = "drafts", _("Drafts")
        TRASH = "trash", _("Trash")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="local_folders"
    )
    name = models.CharField(_("name"), max_length=255)
    special_use = models.CharField(
        _("special use"), max_length=10, choices=Use.choices, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"], name="localfolder_name_once"
            ),
            models.UniqueConstraint(
                fields=["user", "special_use"],
                condition=~models.Q(special_use=""),
                name="localfolder_use_once",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StoredMessage(models.Model):
    """One imported message. Its id is its uid; its folder's id is the validity."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    folder = models.ForeignKey(
        LocalFolder, on_delete=models.CASCADE, related_name="messages"
    )
    # The account it came from; the mail stays when the account is removed.
    account = models.ForeignKey(
        MailAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    uidl = models.CharField(max_length=255, blank=True)
    message_id = models.CharField(max_length=998, blank=True)

    subject = models.TextField(blank=True)
    from_name = models.CharField(max_length=255, blank=True)
    from_email = models.CharField(max_length=320, blank=True)
    to_text = models.TextField(blank=True)  # "Name <a@b>, …" for lists and search
    date = models.DateTimeField(null=True, blank=True)  # the Date header
    received_at = models.DateTimeField()  # when it was imported here
    source = models.CharField(max_length=255, blank=True)  # "pop.example.net (Work)"
    size = models.BigIntegerField()
    has_attachments = models.BooleanField(default=False)

    seen = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    answered = models.BooleanField(default=False)

    # Name in default_storage; empty: the bytes are in the database (InlineRaw).
    blob = models.CharField(max_length=255, blank=True)
    # Bumped on every change, for delta sync (see ChangeCounter).
    modseq = models.BigIntegerField(default=0)
    # The modseq at which it came into its folder, for delta sync ("added" or
    # "changed"). NULL: at its insert; then ``modseq`` is that value until the
    # first later change, which copies it here (see mailbox/store/sync.py).
    arrived_modseq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["folder", "-received_at"], name="stored_folder_received"
            ),
            models.Index(fields=["folder", "-date"], name="stored_folder_date"),
            models.Index(fields=["user", "modseq"], name="stored_user_modseq"),
        ]

    def __str__(self) -> str:
        return self.subject or f"message {self.pk}"


class InlineRaw(models.Model):
    """The raw bytes of a small stored message (its ``blob`` is empty).

    A table of its own rather than a column of StoredMessage, so that lists,
    counts and scans of messages never read message bytes (mailbox/store/raw.py).
    """

    message = models.OneToOneField(
        StoredMessage,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="inline_raw",
    )
    data = models.BinaryField()

    def __str__(self) -> str:
        return f"raw of message {self.message_id}"


class UidlEntry(models.Model):
    """The ledger: every message ever taken from a POP3 account, by UIDL."""

    class State(models.TextChoices):
        IMPORTED = "imported", _("Imported")
        DELETED_HERE = "deleted_here", _("Imported, since deleted here")

    account = models.ForeignKey(
        MailAccount, on_delete=models.CASCADE, related_name="uidl_entries"
    )
    uidl = models.CharField(max_length=255)
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.IMPORTED
    )
    message = models.ForeignKey(
        StoredMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # When the message was imported into an IMAP folder instead of the store.
    imap_folder = models.CharField(max_length=1000, blank=True)
    imap_uidvalidity = models.BigIntegerField(null=True, blank=True)
    imap_uid = models.BigIntegerField(null=True, blank=True)
    size = models.BigIntegerField(default=0)
    imported_at = models.DateTimeField()
    removed_from_server_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "uidl"], name="uidl_once")
        ]

    def __str__(self) -> str:
        return f"{self.account_id}:{self.uidl}"


class ImportJob(models.Model):
    """One run of a POP3 import, with its progress, for the user and the admin."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        OVER_QUOTA = "over_quota", _("Stopped: storage full")
        LOGIN_FAILED = "login_failed", _("Stopped: login refused")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Schedule")
        MANUAL = "manual", _("Import now")
        ADMIN = "admin", _("Administrator")

    account = models.ForeignKey(
        MailAccount, on_delete=models.CASCADE, related_name="import_jobs"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    trigger = models.CharField(
        max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)  # new messages found
    done = models.PositiveIntegerField(default=0)  # of them handled so far
    imported = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    removed_from_server = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "-created_at"], name="job_account")]

    def __str__(self) -> str:
        return f"import {self.pk} of account {self.account_id}: {self.status}"

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class ChangeCounter(models.Model):
    """A per-user counter; each store change takes the next value as its modseq."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    value = models.BigIntegerField(default=0)
    # Tombstones up to this modseq were pruned: older sync states cannot be
    # diffed any more (a full resync).
    pruned_modseq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.value}"


class StoreTombstone(models.Model):
    """A message that left a folder (deleted for good or moved out), for delta
    sync: "removed since modseq N". Pruned after a while (mailbox/store/sync.py).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    # A deleted folder takes its tombstones along: a sync state of it is stale.
    folder = models.ForeignKey(
        LocalFolder, on_delete=models.CASCADE, related_name="tombstones"
    )
    message_id = models.BigIntegerField()  # the StoredMessage id (its uid)
    modseq = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["folder", "modseq"], name="tombstone_folder_modseq"),
            models.Index(fields=["created_at"], name="tombstone_created"),
        ]

    def __str__(self) -> str:
        return f"{self.folder_id}:{self.message_id}@{self.modseq}"
