from django.apps import AppConfig


class MailboxConfig(AppConfig):
    name = "mailbox"
    # "mailbox" is also a standard-library module, which this package hides
    # inside the project; the label keeps Django's tables named mailbox_*.
    label = "mailbox"
    verbose_name = "Mail"
