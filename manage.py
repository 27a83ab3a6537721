#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Django is not installed here: run `python3 -m webmail.dev run` once, "
            "then use .venv/bin/python manage.py"
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
