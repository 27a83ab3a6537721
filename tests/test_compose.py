"""The production container setup (Dockerfile, docker-compose.yml) is right.

No container engine runs where the tests run, so these tests check the files against
what the image will hold: the project's own venv has the same locked packages as the
image's /app/.venv, and the settings are loaded with exactly the compose environment.
"""

from __future__ import annotations

import ast
import base64
import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
# Same locked packages as the image's /app/.venv/bin (PATH's first entry there).
VENV_BIN = Path(sys.executable).parent

APP_SERVICES = ("migrate", "web", "worker", "beat")
PRODUCTION_REQUIRED = (
    "DJANGO_SECRET_KEY",
    "WEBMAIL_CREDENTIAL_KEYS",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
)
ENV_READERS = {"env_str", "env_bool", "env_int", "env_list"}
SECRET_NAME = re.compile(r"SECRET|KEY|PASSWORD")
# A valid Fernet key: 32 bytes, url-safe base64.
DUMMY_FERNET_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, $$
_REFERENCE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)
SETTINGS_PROBE = (
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='webmail.settings'; "
    "django.setup(); from django.conf import settings; "
    "print(settings.DEBUG, settings.DATABASES['default']['ENGINE'], "
    "settings.CELERY_BROKER_URL)"
)


# --- helpers --------------------------------------------------------------------------
def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict]:
    return load_compose()["services"]


def environment(service: dict) -> dict[str, str | None]:
    """A service's environment; ``None`` for a variable passed through from .env.

    Compose takes such a variable (``NAME:`` without a value) from .env or the shell
    and leaves it unset in the container when neither has it.
    """
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {name: None if value is None else str(value) for name, value in env.items()}


def dummy_value(name: str) -> str:
    if name == "WEBMAIL_CREDENTIAL_KEYS":
        return DUMMY_FERNET_KEY
    return f"dummy{name.lower().replace('_', '')}"


def interpolate(value: str) -> str:
    """Resolve compose ``${...}`` references as compose does with a minimal .env.

    Required references (``:?``) and bare ones get dummy values; ``:-`` and ``-``
    references get their default.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op = match.group("name"), match.group("op")
        if op is None or "?" in op:
            return dummy_value(name)
        return match.group("arg")

    return _REFERENCE.sub(replace, value)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, arguments = current.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    return instructions


def dockerfile_runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage: the image that runs."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in dockerfile_runtime_stage():
        if keyword == "ENV":
            for token in shlex.split(arguments):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def dockerfile_exec_form(keyword: str) -> list[str] | None:
    found = [args for kw, args in dockerfile_runtime_stage() if kw == keyword]
    if not found:
        return None
    command = json.loads(found[-1])
    assert isinstance(command, list), f"{keyword} must use the exec (JSON) form"
    return command


def command_words(command: str | list[str]) -> list[str]:
    return (
        shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    )


def healthcheck_words(test: str | list[str]) -> list[str]:
    if isinstance(test, str):
        return shlex.split(test)
    if test[0] == "CMD":
        return [str(w) for w in test[1:]]
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    raise AssertionError(f"unexpected healthcheck form {test!r}")


def app_command_lines() -> list[tuple[str, list[str]]]:
    """(label, argv) of every command an app container runs, interpolated."""
    lines = [("Dockerfile CMD", dockerfile_exec_form("CMD") or [])]
    entrypoint = dockerfile_exec_form("ENTRYPOINT")
    if entrypoint:
        lines.append(("Dockerfile ENTRYPOINT", entrypoint))
    for name in APP_SERVICES:
        service = services()[name]
        if "command" in service:
            words = command_words(service["command"])
            lines.append((f"{name} command", [interpolate(w) for w in words]))
        if "healthcheck" in service:
            words = healthcheck_words(service["healthcheck"]["test"])
            lines.append((f"{name} healthcheck", [interpolate(w) for w in words]))
    return lines


def container_env(**overrides: str | None) -> dict[str, str]:
    """The environment of an app container: the image's ENV plus compose's.

    Pass-through variables are unset (nothing in .env); PATH is the test venv's
    (the image's is /app/.venv/bin, with the same packages).
    """
    env = {k: v for k, v in dockerfile_env().items() if k != "PATH"}
    for name, value in environment(services()["web"]).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = interpolate(value)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}/usr/bin:/bin"
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def names_read_from_environment(path: Path) -> set[str]:
    """Environment variable names a module reads, found in its source with ``ast``."""
    names: set[str] = set()

    def constant(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return None

    def is_os_environ(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "environ"
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        )

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            func_name = func.id if isinstance(func, ast.Name) else None
            if isinstance(func, ast.Attribute):
                func_name = func.attr
            reads = func_name in ENV_READERS
            reads |= isinstance(func, ast.Attribute) and (
                (
                    func.attr in {"get", "setdefault", "pop"}
                    and is_os_environ(func.value)
                )
                or (
                    func.attr == "getenv"
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "os"
                )
            )
            if reads and (name := constant(node.args[0])):
                names.add(name)
        elif (
            isinstance(node, ast.Subscript)
            and is_os_environ(node.value)
            and (name := constant(node.slice))
        ):
            names.add(name)
    return names


# --- docker-compose.yml ---------------------------------------------------------------
def test_every_long_running_service_has_a_healthcheck():
    """Every service but the one-shot migrate declares a healthcheck."""
    for name, service in services().items():
        if name == "migrate":
            assert "healthcheck" not in service
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert not service["healthcheck"].get("disable"), name


def test_migrate_is_a_one_shot_that_is_not_restarted():
    """migrate runs the migrations once after PostgreSQL is healthy, and stays down."""
    migrate = services()["migrate"]
    assert command_words(migrate["command"]) == [
        "python",
        "manage.py",
        "migrate",
        "--no-input",
    ]
    assert str(migrate.get("restart", "no")) == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"


def test_app_services_run_the_image_built_from_the_dockerfile():
    """web, worker, beat and migrate all run the image built from ./Dockerfile."""
    images = set()
    for name in APP_SERVICES:
        build = services()[name].get("build")
        if isinstance(build, dict):
            assert build.get("context") in {".", "./"}, name
            assert build.get("dockerfile", "Dockerfile") == "Dockerfile", name
        else:
            assert build in {".", "./"}, f"{name} is not built from the Dockerfile"
        images.add(services()[name].get("image"))
    assert len(images) == 1, f"app services name different images: {images}"


def test_web_waits_for_migrations_and_healthy_backends():
    """web starts after migrate succeeded and PostgreSQL and Redis are healthy."""
    depends = services()["web"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["db"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert services()["web"]["ports"] == ["127.0.0.1:8000:8000"]


def test_media_volume_is_mounted_at_data_in_web_worker_and_beat():
    """The media volume is /data in every process that reads or writes the store."""
    compose = load_compose()
    assert {"pgdata", "redisdata", "mediadata"} <= set(compose["volumes"])
    for name in ("web", "worker", "beat"):
        assert "mediadata:/data" in services()[name]["volumes"], name
        assert environment(services()[name])["WEBMAIL_DATA_DIR"] == "/data"
    assert "pgdata:/var/lib/postgresql/data" in services()["db"]["volumes"]
    assert "redisdata:/data" in services()["redis"]["volumes"]


def test_app_executables_are_provided_by_the_locked_install():
    """Each app command and healthcheck starts with python or a locked venv script."""
    for label, words in app_command_lines():
        assert words, f"{label} is empty"
        executable = words[0]
        assert "/" not in executable, f"{label}: use a PATH name, not {executable!r}"
        assert executable == "python" or (VENV_BIN / executable).is_file(), (
            f"{label}: {executable!r} is not installed by the locked dependencies"
        )


def test_entry_points_named_by_the_commands_are_importable():
    """celery -A webmail.celery and gunicorn's webmail.wsgi:application import."""
    import webmail.celery
    import webmail.wsgi

    assert webmail.celery.app.main == "webmail"
    assert callable(webmail.wsgi.application)
    for label, words in app_command_lines():
        if words[0] == "celery":
            assert words[1:3] == ["-A", "webmail.celery"], label
        if words[0] == "gunicorn":
            assert words[1] == "webmail.wsgi:application", label


def test_gunicorn_command_lines_are_valid():
    """The image's CMD and the web command parse as gunicorn options on 0.0.0.0:8000."""
    from gunicorn.config import Config

    gunicorn_lines = [(lbl, w) for lbl, w in app_command_lines() if w[0] == "gunicorn"]
    assert {lbl for lbl, _ in gunicorn_lines} >= {"Dockerfile CMD", "web command"}
    for label, words in gunicorn_lines:
        parsed = Config().parser().parse_args(words[1:])
        assert parsed.args == ["webmail.wsgi:application"], label
        assert parsed.bind == ["0.0.0.0:8000"], label
        assert int(parsed.workers) >= 2, label
        assert int(parsed.timeout) >= 30, label


@pytest.mark.parametrize(
    ("service", "part"),
    [
        ("worker", "command"),
        ("worker", "healthcheck"),
        ("beat", "command"),
        ("beat", "healthcheck"),
    ],
)
def test_celery_command_lines_are_valid(service, part):
    """Every celery command line is accepted by the locked celery (options exist)."""
    words = dict(app_command_lines())[f"{service} {part}"]
    words = [w.replace("$HOSTNAME", "testhost") for w in words]
    assert words[0] == "celery"
    # click rejects an unknown option while parsing, before it handles --help.
    result = subprocess.run(
        [str(VENV_BIN / "celery"), *words[1:], "--help"],
        cwd=ROOT,
        env=container_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_healthchecks_ping_their_own_celery_node():
    """The worker and beat healthchecks ping their own node (beat answers pings)."""
    worker = dict(app_command_lines())["worker healthcheck"]
    beat = dict(app_command_lines())["beat healthcheck"]
    assert worker[3:] == [
        "inspect",
        "ping",
        "-d",
        "celery@$HOSTNAME",
        "--timeout",
        "10",
    ]
    assert beat[3:] == [
        "inspect",
        "ping",
        "-d",
        "celerybeat@$HOSTNAME",
        "--timeout",
        "10",
    ]
    assert services()["worker"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert services()["beat"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "--enable-remote-control" in command_words(services()["beat"]["command"])


def test_migrate_command_is_a_valid_management_command():
    """python manage.py migrate --no-input is accepted by Django's migrate."""
    from django.core.management import load_command_class

    words = command_words(services()["migrate"]["command"])
    command = load_command_class("django.core", words[2])
    options = command.create_parser("manage.py", words[2]).parse_args(words[3:])
    assert options.interactive is False


def test_python_snippets_in_healthchecks_compile():
    """Every python -c healthcheck is valid Python."""
    for label, words in app_command_lines():
        if words[:2] == ["python", "-c"]:
            compile(words[2], label, "exec")


def test_web_healthcheck_url_is_routed_by_the_app():
    """The web healthcheck's URL exists in the app's URLconf."""
    from django.urls import resolve

    code = dict(app_command_lines())["web healthcheck"][2]
    path = re.search(r"http://127\.0\.0\.1:8000(/[^\"']*)", code).group(1)
    assert resolve(path).url_name == "account_login"


class _StubHandler(http.server.BaseHTTPRequestHandler):
    status = 200
    seen_hosts: list[str] = []

    def do_GET(self):
        type(self).seen_hosts.append(self.headers["Host"])
        self.send_response(self.status)
        if self.status in (301, 302):
            self.send_header("Location", "https://example.com/accounts/login/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("status", "allowed_hosts", "expected_host", "healthy"),
    [
        (200, ".example.com,localhost", "example.com", True),
        (200, "*", "localhost", True),
        (301, "mail.example.org", "mail.example.org", True),
        (400, "localhost", "localhost", False),
        (500, "localhost", "localhost", False),
    ],
)
def test_web_healthcheck_sends_an_allowed_host(
    status, allowed_hosts, expected_host, healthy
):
    """The web healthcheck sends a Host from DJANGO_ALLOWED_HOSTS, fails on errors."""
    code = dict(app_command_lines())["web healthcheck"][2]
    handler = type("Handler", (_StubHandler,), {"status": status, "seen_hosts": []})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        result = run_python(code, container_env(DJANGO_ALLOWED_HOSTS=allowed_hosts))
    finally:
        server.shutdown()
        server.server_close()
    assert handler.seen_hosts == [expected_host]
    assert (result.returncode == 0) is healthy, result.stderr


def test_environment_names_are_read_by_the_settings():
    """Every variable set for the app is read by the settings; production's are set."""
    read = names_read_from_environment(ROOT / "webmail" / "settings.py")
    read |= names_read_from_environment(ROOT / "webmail" / "env.py")
    assert read, "no environment reads found in settings.py"
    for name in APP_SERVICES:
        env = environment(services()[name])
        unknown = set(env) - read
        assert not unknown, f"{name} sets variables the settings never read: {unknown}"
        missing = set(PRODUCTION_REQUIRED) - set(env)
        assert not missing, f"{name} lacks production variables: {missing}"
        assert env["WEBMAIL_ENV"] == "production"
    for name in dockerfile_env():
        assert name in read | {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}


def test_app_services_share_one_environment():
    """web, worker, beat and migrate get the same environment (the x-app-env anchor)."""
    envs = [environment(services()[name]) for name in APP_SERVICES]
    assert all(env == envs[0] for env in envs)
    assert environment({"environment": load_compose()["x-app-env"]}) == envs[0]


def test_only_one_beat_runs():
    """Exactly one service runs celery beat, with one replica; no worker embeds it."""
    beats = []
    for name, service in services().items():
        words = command_words(service.get("command") or [])
        if words[:1] == ["celery"]:
            if "beat" in words:
                beats.append(name)
            assert "-B" not in words
            assert "--beat" not in words
    assert beats == ["beat"]
    replicas = services()["beat"].get("deploy", {}).get("replicas", 1)
    assert replicas == 1
    command = command_words(services()["beat"]["command"])
    assert command[command.index("--schedule") + 1] == "/data/celerybeat-schedule"


def test_redis_never_evicts_and_persists():
    """Redis, the broker, runs with noeviction and an append-only file."""
    words = command_words(services()["redis"]["command"])
    assert words[0] == "redis-server"
    assert words[words.index("--maxmemory-policy") + 1] == "noeviction"
    assert words[words.index("--appendonly") + 1] == "yes"
    assert str(services()["redis"]["image"]).startswith("redis:7")
    assert "redis-cli ping" in " ".join(services()["redis"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services()["db"]["healthcheck"]["test"])


def test_no_literal_secrets():
    """Secret variables are ${...} references, and URLs carry no literal password."""
    reference = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*|:-)?\}")
    for name, service in services().items():
        for var, value in environment(service).items():
            if value is None:
                continue  # passed through from .env
            if SECRET_NAME.search(var):
                assert reference.fullmatch(value), f"{name}: {var} holds a literal"
            if "://" in value:
                password = re.match(r"[^:]+://[^:/@]*:([^@]*)@", value)
                if password:
                    assert reference.fullmatch(password.group(1)), f"{name}: {var}"
    for keyword, arguments in dockerfile_instructions():
        if keyword in {"ENV", "ARG"}:
            assert not SECRET_NAME.search(arguments), f"{keyword} {arguments}"


# --- Dockerfile -----------------------------------------------------------------------
def test_dockerfile_builds_the_locked_install_and_runs_unprivileged():
    """The image installs uv.lock with uv from PyPI and runs as a non-root user."""
    instructions = dockerfile_instructions()
    froms = [args for kw, args in instructions if kw == "FROM"]
    assert all(
        "${PYTHON_IMAGE}" in f or "python:3.11-slim-bookworm" in f for f in froms
    )
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in DOCKERFILE.read_text()
    runs = " ".join(args for kw, args in instructions if kw == "RUN")
    assert "pip install" in runs
    assert "uv==" in runs
    assert "uv sync --frozen --no-dev" in runs
    assert "curl" not in runs
    assert "wget" not in runs
    copies = [args for kw, args in instructions if kw == "COPY"]
    assert copies[0] == "pyproject.toml uv.lock ./"
    users = [args for kw, args in dockerfile_runtime_stage() if kw == "USER"]
    assert users
    assert users[-1] not in {"root", "0"}
    env = dockerfile_env()
    assert env["WEBMAIL_ENV"] == "production"
    assert env["PATH"].startswith("/app/.venv/bin:")
    assert env["PYTHONUNBUFFERED"] == "1"
    assert ("EXPOSE", "8000") in instructions


def test_dockerfile_collectstatic_succeeds_with_only_its_throwaway_env(tmp_path):
    """The build's collectstatic step works with just the env given to that RUN."""
    run = next(
        args for kw, args in dockerfile_runtime_stage() if "collectstatic" in args
    )
    words = shlex.split(run)
    assignments = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    assert assignments["WEBMAIL_ENV"] == "production"
    command = [w for w in words if not re.match(r"^[A-Z_]+=", w)]
    assert command == ["python", "manage.py", "collectstatic", "--no-input"]
    env = {k: v for k, v in dockerfile_env().items() if k != "PATH"}
    env.update(assignments)
    # Outside the image: write to temporary directories instead of /app and /data.
    env |= {
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "WEBMAIL_DATA_DIR": str(tmp_path / "data"),
        "WEBMAIL_MEDIA_ROOT": str(tmp_path / "data" / "media"),
    }
    result = subprocess.run(
        [sys.executable, *command[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").is_file()


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    """The build context excludes the venv, local data, .env and VCS files."""
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var", ".git", ".env", "**/__pycache__", "staticfiles"} <= patterns
    assert not {"pyproject.toml", "uv.lock", "manage.py", "webmail"} & patterns


# --- the settings, under exactly the compose environment ------------------------------
def test_settings_load_for_production_with_the_compose_environment():
    """The compose environment gives production: no DEBUG, PostgreSQL, Redis."""
    result = run_python(SETTINGS_PROBE, container_env())
    assert result.returncode == 0, result.stderr
    debug, engine, broker = result.stdout.split()
    assert debug == "False"
    assert engine == "django.db.backends.postgresql"
    assert broker.startswith("redis://redis:6379/")


def test_compose_environment_passes_the_system_checks():
    """The whole app loads and passes Django's system checks under the compose env."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
        cwd=ROOT,
        env=container_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_optional_variables_leave_the_defaults_to_the_settings():
    """Optional variables carry no compose default of their own, so none can drift.

    Each app variable is a literal fixed by the stack, a required ``${NAME:?...}``
    reference, or a value-less pass-through from .env; DJANGO_ALLOWED_HOSTS alone
    has a compose default (the settings' production default allows no host at all).
    """
    required = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}")
    for name, value in environment(services()["web"]).items():
        if value is None:
            continue
        if name == "DJANGO_ALLOWED_HOSTS":
            assert value == "${DJANGO_ALLOWED_HOSTS:-localhost}"
            continue
        for match in _REFERENCE.finditer(value):
            assert required.fullmatch(match.group(0)), (
                f"{name}: give optional variables no default, pass them through"
            )


def test_production_without_secret_key_fails_naming_it():
    """Production refuses to start without DJANGO_SECRET_KEY, and says so."""
    result = run_python(SETTINGS_PROBE, container_env(DJANGO_SECRET_KEY=None))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_database_url_points_at_the_compose_postgres():
    """DATABASE_URL reaches the db service with the credentials PostgreSQL is given."""
    env = environment(services()["web"])
    url = urlsplit(interpolate(env["DATABASE_URL"]))
    db_env = environment(services()["db"])
    assert url.scheme in {"postgres", "postgresql"}
    assert (url.hostname, url.port) == ("db", 5432)
    assert url.username == db_env["POSTGRES_USER"]
    assert url.path.lstrip("/") == db_env["POSTGRES_DB"]
    assert url.password == interpolate(db_env["POSTGRES_PASSWORD"])
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"
