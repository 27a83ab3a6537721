from django.core.management.base import BaseCommand

from accounts.services import credentials_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored mail credential with the first key of "
        "WEBMAIL_CREDENTIAL_KEYS. Run it after putting a new key first; then the "
        "old keys can be removed."
    )

    def handle(self, *args: object, **options: object) -> None:
        count = credentials_rotate()
        self.stdout.write(f"Re-encrypted the credentials of {count} mail accounts.")
