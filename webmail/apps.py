from django.apps import AppConfig


class WebmailConfig(AppConfig):
    name = "webmail"
    verbose_name = "Webmail"

    def ready(self) -> None:
        # Every process that queues tasks must use this app's broker settings.
        from webmail import celery  # noqa: F401
