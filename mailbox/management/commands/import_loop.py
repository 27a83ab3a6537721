"""The embedded mode's scheduler: without Redis and Celery beat, start due imports.

`python3 -m webmail.dev run` starts this beside the web server. Tasks run inline
here (CELERY_TASK_ALWAYS_EAGER without REDIS_URL), so imports never block a page.
"""

from __future__ import annotations

import logging
import time

from django.core.management.base import BaseCommand

from mailbox.tasks import dispatch_due_imports

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Start due POP3 imports every minute (for setups without Celery beat)."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--interval", type=float, default=60.0)
        parser.add_argument("--once", action="store_true")

    def handle(self, *args: object, interval: float, once: bool, **options: object):
        while True:
            try:
                started = dispatch_due_imports()
                if started:
                    logger.info("import loop: %s import(s) run", started)
            except Exception:
                # Keep the loop alive; the next round tries again.
                logger.exception("import loop: a round failed")
            if once:
                return
            time.sleep(interval)
