"""Benchmark: the IMAP message list and message view, next to raw imapclient.

    python bench/imap_list.py [--quick]

Starts a private Dovecot, seeds folders of 10,000 and 100,000 messages, then
measures in one run, for each size:

- view cold: the list page through the Django view with no pooled login and no
  cached order (login + EXAMINE + SORT + FETCH + render);
- view warm: the same page again, unchanged folder, pooled login, cached order;
- raw: imapclient on an already-open, logged-in connection doing SORT (REVERSE
  ARRIVAL) + FETCH of the same page's ENVELOPE, FLAGS, RFC822.SIZE,
  BODYSTRUCTURE, INTERNALDATE;
- for the first page and a middle page; and opening one message through the view.

Prints medians in milliseconds and ends with one line:
    imap_list: warm_ratio=<view/raw> size_ratio=<100k/10k> open_ms=<median>
warm_ratio is the median warm view over the median raw, on the 10,000 folder's
first page; size_ratio is the warm view on 100,000 over 10,000.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ITEMS = ["ENVELOPE", "FLAGS", "RFC822.SIZE", "BODYSTRUCTURE", "INTERNALDATE"]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    sizes = (1_000, 10_000) if args.quick else (10_000, 100_000)

    workdir = Path(tempfile.mkdtemp(prefix="bench-imap-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "webmail.settings_test"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.pop("REDIS_URL", None)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse
    from django.utils.http import urlencode
    from imapclient import IMAPClient

    from accounts.models import AccountKind, Security, User
    from accounts.servers import ServerSettings
    from accounts.services import AccountOptions, mail_account_create
    from mailbox.imap import pool
    from mailbox.imap import source as imap_source
    from tests.servers.dovecot import Dovecot

    settings.ALLOWED_HOSTS = ["testserver"]
    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench@example.org", "bench-password-1")
    client = Client()
    client.force_login(user)

    results: dict[int, dict[str, float]] = {}
    with Dovecot() as dovecot:
        for size in sizes:
            mail_user = dovecot.new_user(quota_mb=None)
            started = time.monotonic()
            dovecot.generate(mail_user.username, size)
            print(f"seeded {size} messages in {time.monotonic() - started:.1f} s")
            account = mail_account_create(
                user=user,
                kind=AccountKind.IMAP,
                options=AccountOptions(label=f"bench {size}", email=mail_user.email),
                server=ServerSettings(
                    dovecot.host, dovecot.imap_port, Security.NONE, mail_user.username
                ),
                password=mail_user.password,
            )
            raw = IMAPClient(dovecot.host, dovecot.imap_port, ssl=False)
            raw.login(mail_user.username, mail_user.password)
            raw.select_folder("INBOX", readonly=True)
            raw.sort(["REVERSE", "ARRIVAL"])  # Dovecot builds its indexes once

            base = reverse("mailbox:message_list", args=[account.pk])
            middle = size // 50 // 2
            row: dict[str, float] = {}
            for label, page in (("first", 1), ("middle", middle)):
                url = base + "?" + urlencode({"folder": "INBOX", "page": page})

                def view(url: str = url) -> float:
                    t0 = time.perf_counter()
                    response = client.get(url)
                    elapsed = time.perf_counter() - t0
                    assert response.status_code == 200, response.status_code
                    return elapsed

                def raw_page(page: int = page, raw: IMAPClient = raw) -> float:
                    t0 = time.perf_counter()
                    uids = raw.sort(["REVERSE", "ARRIVAL"])
                    chunk = uids[(page - 1) * 50 : page * 50]
                    raw.fetch(chunk, ITEMS)
                    return time.perf_counter() - t0

                cold = []
                for _ in range(max(3, args.repeat // 3)):
                    pool.close_all()
                    imap_source._order_cache.clear()
                    cold.append(view())
                view()
                warm = [view() for _ in range(args.repeat)]
                raws = [raw_page() for _ in range(args.repeat)]
                row[f"{label}_cold"] = median_ms(cold)
                row[f"{label}_warm"] = median_ms(warm)
                row[f"{label}_raw"] = median_ms(raws)

            uid = raw.search(["ALL"])[-1]
            validity = raw.folder_status("INBOX", ["UIDVALIDITY"])[b"UIDVALIDITY"]
            open_url = (
                reverse("mailbox:message_view", args=[account.pk])
                + "?"
                + (urlencode({"folder": "INBOX", "v": validity, "uid": uid}))
            )

            def open_view(url: str = open_url) -> float:
                t0 = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - t0
                assert response.status_code == 200, response.status_code
                return elapsed

            open_view()
            row["open"] = median_ms([open_view() for _ in range(args.repeat)])
            raw.logout()
            pool.close_all()
            results[size] = row

    small, large = sizes
    print()
    print(f"{'':22}" + "".join(f"{s:>12,}" for s in sizes))
    for key in (
        "first_cold",
        "first_warm",
        "first_raw",
        "middle_cold",
        "middle_warm",
        "middle_raw",
        "open",
    ):
        print(
            f"{key + ' (ms)':22}" + "".join(f"{results[s][key]:12.1f}" for s in sizes)
        )
    for size in sizes:
        r = results[size]
        print(
            f"{size:,}: warm/raw first {r['first_warm'] / r['first_raw']:.2f}, "
            f"middle {r['middle_warm'] / r['middle_raw']:.2f}"
        )
    warm_ratio = results[small]["first_warm"] / results[small]["first_raw"]
    size_ratio = results[large]["first_warm"] / results[small]["first_warm"]
    print(
        f"imap_list: warm_ratio={warm_ratio:.2f} size_ratio={size_ratio:.2f} "
        f"open_ms={results[small]['open']:.1f}"
    )


if __name__ == "__main__":
    main()
