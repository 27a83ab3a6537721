"""Schemathesis against /api/schema/: no 500 on any input, answers match the schema.

Bounded: a few examples per operation, a real account on the test Dovecot and
real ids half of the time (random ids mostly meet the 404 gate otherwise).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
import zlib
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.data.loader import load_eml

# Examples per operation: valid requests, and requests the schema forbids.
MODES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 5}


@contextlib.contextmanager
def connections_kept() -> Iterator[None]:
    """Keep the test's database connection open across WSGI requests.

    Django closes connections around each request it serves; its test client
    turns that off for its own requests (and back on after each), and so must
    a test that calls the WSGI app directly.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_schema_builds_without_warnings(capsys):
    """Every component has one name (a clash would silently describe the wrong
    body or answer), and every view is understood by drf-spectacular."""
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)
    assert "Warning" not in capsys.readouterr().err


def test_schema_has_every_endpoint_with_its_errors(client, db):
    """Each operation documents 401 and 429, and the mail ones 404/503."""
    schema = client.get("/api/schema/?format=json").json()
    operations = [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
    ]
    assert len(operations) >= 23
    for path, method, op in operations:
        codes = set(op["responses"])
        assert {"401", "429"} <= codes, (method, path)
        if "{account_id}" in path:
            assert "404" in codes, (method, path)
    docs = client.get("/api/docs/").content.decode()
    assert "/api/v1/accounts/{account_id}/messages/" in docs


@pytest.mark.django_db(transaction=False)
def test_fuzz_every_operation(app, settings, imap_account, dovecot, mail_user):
    """Generated requests to every operation: never a 500, always as documented."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "100000/min"},
    }
    dovecot.deliver(mail_user.username, load_eml("attachments.eml"))
    dovecot.deliver(mail_user.username, load_eml("plain_utf8.eml"), folder="Work")
    page = app.get(f"/api/v1/accounts/{imap_account.pk}/messages/").json()
    real = {
        "account_id": imap_account.pk,
        "uid": page["messages"][0]["uid"],
        "part_id": "2",
    }
    doc = app.get("/api/schema/?format=json").json()
    # Nothing to get wrong in a request to these (no parameters, no body).
    inputless = {
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if not op.get("parameters") and "requestBody" not in op
    }
    with connections_kept():
        failures, statuses, elapsed = fuzz(app.token, real, page["validity"], inputless)
    assert not failures, "\n\n".join(failures)
    print("fuzz:", sorted(statuses.items()), f"{elapsed:.1f} s")  # noqa: T201
    assert statuses.total() > 500
    # Not only 400s and 404s: the real ids reach the mail server.
    assert sum(n for code, n in statuses.items() if code < 300) > 30


def fuzz(
    token: str, real: dict, validity: int, inputless: set[str]
) -> tuple[list[str], Counter, float]:
    """Run every operation's examples; return the failures, calls and seconds."""
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application()
    )
    headers = {"X-Session-Token": token}
    failures: list[str] = []
    started = time.monotonic()
    statuses: Counter[int] = Counter()

    operations = [result.ok() for result in schema.get_all_operations()]
    for operation, mode in itertools.product(operations, MODES):
        if mode == GenerationMode.NEGATIVE and operation.label in inputless:
            continue

        @hypothesis_settings(
            max_examples=MODES[mode],
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:
            if (
                case.path_parameters
                and zlib.crc32(repr(case.path_parameters).encode()) % 2
            ):
                for name in case.path_parameters:
                    case.path_parameters[name] = real.get(
                        name, case.path_parameters[name]
                    )
            if case.query and "validity" in case.query and statuses.total() % 2:
                case.query["validity"] = validity
                case.query["folder"] = "INBOX"
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)

        try:
            run()
        except Unsatisfiable:
            # Negative mode: parameters that cannot be wrong (a plain string).
            assert mode == GenerationMode.NEGATIVE
        except Exception as exc:  # noqa: BLE001 - every operation's failure is listed
            failures.append(f"{operation.label} ({mode.value}): {exc}"[:3000])
    return failures, statuses, time.monotonic() - started
