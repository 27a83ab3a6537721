"""/api/v1/ (namespace "api"). Folder names travel in ``?folder=``, never in paths."""

from __future__ import annotations

from django.urls import include, path, re_path, register_converter

from mailbox.api import accounts, folders, messages, setup, unified, views
from mailbox.api import schema as _schema  # noqa: F401  (registers the auth scheme)
from mailbox.api.sync import MessageChangesApi


class PartConverter:
    """An IMAP part number: 1, 2.1, 1.2.3 (1-4 digits each, no leading zero)."""

    regex = r"[1-9][0-9]{0,3}(?:\.[1-9][0-9]{0,3}){0,30}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(PartConverter, "part")

app_name = "api"

_message = "accounts/<int:account_id>/messages/<int:uid>/"

urlpatterns = [
    path("me/", accounts.MeApi.as_view(), name="me"),
    path("autoconfig/", setup.AutoconfigApi.as_view(), name="autoconfig"),
    path("quota/", accounts.StoreQuotaApi.as_view(), name="quota"),
    path("all-inboxes/", unified.AllInboxesApi.as_view(), name="all_inboxes"),
    path("accounts/", accounts.AccountListApi.as_view(), name="accounts"),
    path(
        "accounts/<int:account_id>/",
        accounts.AccountDetailApi.as_view(),
        name="account",
    ),
    path(
        "accounts/<int:account_id>/quota/",
        accounts.AccountQuotaApi.as_view(),
        name="account_quota",
    ),
    path(
        "accounts/<int:account_id>/import/",
        accounts.ImportStartApi.as_view(),
        name="import_start",
    ),
    path("jobs/<int:job_id>/", accounts.ImportJobApi.as_view(), name="job"),
    path(
        "accounts/<int:account_id>/folders/",
        folders.FolderListApi.as_view(),
        name="folders",
    ),
    path(
        "accounts/<int:account_id>/folder/",
        folders.FolderDetailApi.as_view(),
        name="folder",
    ),
    path(
        "accounts/<int:account_id>/messages/",
        messages.MessageListApi.as_view(),
        name="messages",
    ),
    path(
        "accounts/<int:account_id>/messages/bulk/",
        messages.MessageBulkApi.as_view(),
        name="messages_bulk",
    ),
    # Before the <int:uid> routes (which "changes" could never match anyway).
    path(
        "accounts/<int:account_id>/messages/changes/",
        MessageChangesApi.as_view(),
        name="message_changes",
    ),
    path(_message, messages.MessageDetailApi.as_view(), name="message"),
    path(_message + "move/", messages.MessageMoveApi.as_view(), name="message_move"),
    path(_message + "raw/", messages.RawApi.as_view(), name="message_raw"),
    path(
        _message + "attachments/<part:part_id>/",
        messages.AttachmentApi.as_view(),
        name="message_attachment",
    ),
    # Compose, drafts and sending.
    path("", include("mailbox.api.compose")),
    # Anything else under /api/v1/ (a negative id, a typo) is a JSON 404 too.
    re_path(r"", views.not_found, name="not_found"),
]
