"""Settings from the environment: safe defaults and mandatory production secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PRINT = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'debug': s.DEBUG, 'engine': s.DATABASES['default']['ENGINE'],"
    " 'secret': s.SECRET_KEY, 'keys': s.WEBMAIL_CREDENTIAL_KEYS,"
    " 'eager': s.CELERY_TASK_ALWAYS_EAGER, 'private': s.WEBMAIL_ALLOW_PRIVATE_HOSTS}))"
)


def load(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "WEBMAIL_", "DATABASE_URL", "REDIS_URL"))
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="webmail.settings")
    return subprocess.run(
        [sys.executable, "-c", PRINT],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_embedded_defaults(tmp_path):
    """With nothing set: DEBUG off, SQLite, inline tasks, secrets made on first run."""
    result = load({"WEBMAIL_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    first = json.loads(result.stdout)
    assert first["debug"] is False
    assert first["engine"] == "django.db.backends.sqlite3"
    assert first["eager"] is True
    secrets_file = tmp_path / "secrets.json"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    stored = json.loads(secrets_file.read_text())
    assert stored["secret_key"] == first["secret"]
    assert first["keys"] == [stored["credential_key"]]
    second = json.loads(load({"WEBMAIL_DATA_DIR": str(tmp_path)}).stdout)
    assert second["secret"] == first["secret"]


def test_debug_only_when_asked(tmp_path):
    """DJANGO_DEBUG=1 turns debug on in development."""
    result = load({"WEBMAIL_DATA_DIR": str(tmp_path), "DJANGO_DEBUG": "1"})
    assert json.loads(result.stdout)["debug"] is True


def test_production_requires_every_secret(tmp_path):
    """Production names each missing variable and generates nothing."""
    result = load({"WEBMAIL_ENV": "production", "WEBMAIL_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    for name in (
        "DJANGO_SECRET_KEY",
        "WEBMAIL_CREDENTIAL_KEYS",
        "DJANGO_ALLOWED_HOSTS",
    ):
        assert name in result.stderr
    assert not (tmp_path / "secrets.json").exists()


def test_production_refuses_debug_and_bad_keys(tmp_path):
    """DEBUG cannot be turned on in production, and a malformed key stops the start."""
    base = {
        "WEBMAIL_ENV": "production",
        "WEBMAIL_DATA_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "mail.example.org",
        "WEBMAIL_CREDENTIAL_KEYS": "A" * 43 + "=",
    }
    ok = load(base)
    assert ok.returncode == 0, ok.stderr
    loaded = json.loads(ok.stdout)
    assert loaded["private"] is False
    assert "DJANGO_DEBUG" in load({**base, "DJANGO_DEBUG": "1"}).stderr
    bad = load({**base, "WEBMAIL_CREDENTIAL_KEYS": "not-a-key"})
    assert "malformed key" in bad.stderr
