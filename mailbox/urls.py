from django.urls import path

from mailbox.views import accounts, compose, live, mail, unified

app_name = "mailbox"

urlpatterns = [
    path("", mail.mail_home, name="home"),
    path("mail-accounts/", accounts.account_list, name="account_list"),
    path("mail-accounts/add/", accounts.account_add, name="account_add"),
    path(
        "mail-accounts/connect/<slug:provider>/",
        accounts.account_connect,
        name="account_connect",
    ),
    path(
        "mail-accounts/<int:account_id>/edit/",
        accounts.account_edit,
        name="account_edit",
    ),
    path(
        "mail-accounts/<int:account_id>/delete/",
        accounts.account_delete,
        name="account_delete",
    ),
    path(
        "mail-accounts/<int:account_id>/import/",
        accounts.account_import_now,
        name="account_import_now",
    ),
    path(
        "mail-accounts/<int:account_id>/import/<int:job_id>/",
        accounts.import_job,
        name="import_job",
    ),
    path("mail/<int:account_id>/", mail.message_list, name="message_list"),
    path("mail/<int:account_id>/message/", mail.message_view, name="message_view"),
    path("mail/<int:account_id>/message/body/", mail.message_body, name="message_body"),
    path("mail/<int:account_id>/message/raw/", mail.message_raw, name="message_raw"),
    path("mail/<int:account_id>/message/part/", mail.attachment, name="attachment"),
    path("mail/<int:account_id>/actions/", mail.bulk_action, name="bulk_action"),
    path("mail/<int:account_id>/folders/", mail.folder_manage, name="folder_manage"),
    path("mail/<int:account_id>/status/", live.folder_status, name="folder_status"),
    path("mail/<int:account_id>/trust-sender/", mail.trust_sender, name="trust_sender"),
    path("mail/all/", unified.all_inboxes, name="all_inboxes"),
    path("mail/all/status/", unified.all_inboxes_status, name="all_inboxes_status"),
    path("mail/inline/", mail.inline_part, name="inline_part"),
    path("mail/image/", mail.image_proxy, name="image_proxy"),
    # Writing mail (mailbox/views/compose.py).
    path("mail/<int:account_id>/compose/", compose.compose_new, name="compose_new"),
    path(
        "mail/<int:account_id>/respond/",
        compose.compose_respond,
        name="compose_respond",
    ),
    path("mail/<int:account_id>/edit-draft/", compose.draft_edit, name="draft_edit"),
    path(
        "mail-accounts/<int:account_id>/identity/",
        compose.identity_edit,
        name="identity_edit",
    ),
    path("compose/<int:message_id>/", compose.compose_edit, name="compose_edit"),
    path(
        "compose/<int:message_id>/status/",
        compose.compose_status,
        name="compose_status",
    ),
    path("compose/autosave/", compose.compose_autosave, name="compose_autosave"),
    path("compose/addresses/", compose.correspondents, name="compose_correspondents"),
    path("compose/outbox/", compose.outbox, name="outbox"),
]
