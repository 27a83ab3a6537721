"""Output serializers shared by the API endpoints, and the small input fields.

They only shape what the services and sources return (frozen dataclasses from
``mailbox.sources`` and ``mailbox.mime``, model rows); no logic lives here.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from accounts.models import MailAccount
from mailbox.sources import SpecialUse
from mailbox.store.models import ImportJob

MAX_UID = 2**32 - 1
_PART_RE = re.compile(r"^[1-9][0-9]{0,3}(\.[1-9][0-9]{0,3}){0,30}$")


class FolderNameField(serializers.CharField):
    """A folder's full server name: any text but control characters."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 1000)
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise serializers.ValidationError(_("This is not a valid folder name."))
        return value


def uid_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_UID, **kwargs)


def validity_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=0, max_value=MAX_UID, **kwargs)


class AddressSerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True)


def _with_from(fields: dict[str, serializers.Field]) -> dict[str, serializers.Field]:
    """Insert the ``from`` field (a Python keyword, hence ``from_`` in the
    dataclasses) in front of ``to``."""
    ordered: dict[str, serializers.Field] = {}
    for name, field in fields.items():
        if name == "to":
            ordered["from"] = AddressSerializer(
                many=True, read_only=True, source="from_"
            )
        ordered[name] = field
    return ordered


class MessageSummarySerializer(serializers.Serializer):
    """One row of a message list (``mailbox.sources.MessageSummary``): headers
    and flags, never body bytes."""

    uid = serializers.IntegerField(read_only=True)
    subject = serializers.CharField(read_only=True)
    to = AddressSerializer(many=True, read_only=True)
    date = serializers.DateTimeField(read_only=True, allow_null=True)
    size = serializers.IntegerField(read_only=True)
    seen = serializers.BooleanField(read_only=True)
    flagged = serializers.BooleanField(read_only=True)
    answered = serializers.BooleanField(read_only=True)
    has_attachments = serializers.BooleanField(read_only=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        return _with_from(super().get_fields())


class MessagePageSerializer(serializers.Serializer):
    folder = serializers.CharField(read_only=True)
    validity = serializers.IntegerField(read_only=True)
    total = serializers.IntegerField(
        read_only=True, help_text="Messages matching the query in the folder."
    )
    messages = MessageSummarySerializer(many=True, read_only=True)
    next_cursor = serializers.CharField(read_only=True, allow_null=True)
    next = serializers.CharField(
        read_only=True, allow_null=True, help_text="URL of the next page, or null."
    )
    sort_fallback = serializers.BooleanField(
        read_only=True,
        help_text="The folder is too large for the asked sort: arrival order.",
    )


class FolderSerializer(serializers.Serializer):
    """A folder (``mailbox.sources.Folder``); ``name`` is its identity."""

    name = serializers.CharField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    delimiter = serializers.CharField(read_only=True, allow_null=True)
    depth = serializers.IntegerField(read_only=True)
    special_use = serializers.ChoiceField(
        choices=[u.value for u in SpecialUse], read_only=True, allow_null=True
    )
    selectable = serializers.BooleanField(read_only=True)
    has_children = serializers.BooleanField(read_only=True)
    total = serializers.IntegerField(read_only=True, allow_null=True)
    unread = serializers.IntegerField(read_only=True, allow_null=True)


class MessageAttachmentSerializer(serializers.Serializer):
    part_id = serializers.CharField(read_only=True)
    filename = serializers.CharField(read_only=True)
    content_type = serializers.CharField(read_only=True)
    size = serializers.IntegerField(read_only=True)
    content_id = serializers.CharField(read_only=True, allow_null=True)
    is_inline = serializers.BooleanField(read_only=True)
    url = serializers.CharField(read_only=True, help_text="Download URL (streamed).")


class AttachedMessageSerializer(serializers.Serializer):
    """A message attached to another (message/rfc822): headers and text."""

    subject = serializers.CharField(read_only=True)
    to = AddressSerializer(many=True, read_only=True)
    date = serializers.DateTimeField(read_only=True, allow_null=True)
    text = serializers.CharField(read_only=True, allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        return _with_from(super().get_fields())


class MessageSerializer(serializers.Serializer):
    """One message, as the message view shows it."""

    folder = serializers.CharField(read_only=True)
    validity = serializers.IntegerField(read_only=True)
    uid = serializers.IntegerField(read_only=True)
    size = serializers.IntegerField(read_only=True)
    seen = serializers.BooleanField(read_only=True)
    flagged = serializers.BooleanField(read_only=True)
    answered = serializers.BooleanField(read_only=True)
    received = serializers.DateTimeField(read_only=True, allow_null=True)
    imported_from = serializers.CharField(read_only=True)
    subject = serializers.CharField(read_only=True)
    to = AddressSerializer(many=True, read_only=True)
    cc = AddressSerializer(many=True, read_only=True)
    reply_to = AddressSerializer(many=True, read_only=True)
    date = serializers.DateTimeField(read_only=True, allow_null=True)
    message_id = serializers.CharField(read_only=True, allow_null=True)
    in_reply_to = serializers.CharField(read_only=True, allow_null=True)
    references = serializers.ListField(child=serializers.CharField(), read_only=True)
    text = serializers.CharField(read_only=True, allow_null=True)
    html = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Sanitized HTML body; show it in a sandboxed web view.",
    )
    remote_content_blocked = serializers.BooleanField(read_only=True)
    remote_hosts = serializers.ListField(child=serializers.CharField(), read_only=True)
    attachments = MessageAttachmentSerializer(many=True, read_only=True)
    attached_messages = AttachedMessageSerializer(many=True, read_only=True)
    problems = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="What could not be shown of a malformed message.",
    )
    raw_url = serializers.CharField(read_only=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        return _with_from(super().get_fields())


class QuotaSerializer(serializers.Serializer):
    used_bytes = serializers.IntegerField(read_only=True)
    limit_bytes = serializers.IntegerField(read_only=True)
    percent = serializers.IntegerField(read_only=True)


class ImportJobSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "account",
            "status",
            "trigger",
            "created_at",
            "started_at",
            "finished_at",
            "total",
            "done",
            "percent",
            "imported",
            "skipped",
            "failed",
            "removed_from_server",
            "bytes",
            "error",
            "is_active",
        ]
        read_only_fields = fields


class MailAccountSerializer(serializers.ModelSerializer):
    """An account as the owner sees it; passwords never come back."""

    import_target = serializers.IntegerField(
        source="import_imap_account_id", read_only=True, allow_null=True
    )
    has_smtp_password = serializers.SerializerMethodField()

    class Meta:
        model = MailAccount
        fields = [
            "id",
            "kind",
            "label",
            "email",
            "host",
            "port",
            "security",
            "username",
            "leave_on_server",
            "check_interval_minutes",
            "remove_after_days",
            "import_folder",
            "import_target",
            "special_folders",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
            "has_smtp_password",
            "is_active",
            "auth_method",
            "oauth_provider",
            "status",
            "status_detail",
            "last_import_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_has_smtp_password(self, account: MailAccount) -> bool:
        return bool(account.smtp_password_encrypted)


def is_part_id(value: str) -> bool:
    return bool(_PART_RE.match(value))


# --- query parameters -----------------------------------------------------------------


class FolderQuery(serializers.Serializer):
    folder = FolderNameField(
        required=False,
        default="INBOX",
        help_text="The folder's full name (it may contain / and .); default INBOX.",
    )


class MessageRefQuery(FolderQuery):
    validity = validity_field(
        help_text="The folder's validity (IMAP UIDVALIDITY) the uid was listed with."
    )


def query_of(shape: type[serializers.Serializer], request: Any) -> dict[str, Any]:
    """The request's query parameters, validated by ``shape`` (400 when invalid)."""
    params = shape(data=request.query_params)
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)
