"""The README's two commands, with the standard library only.

    python3 -m webmail.dev run    # venv, locked install, migrate, serve 127.0.0.1:8000
    python3 -m webmail.dev test   # venv, locked install, the whole test suite

Both create ``.venv`` with the locked dependencies (``uv.lock``) on first use.
``test`` also needs Dovecot, Redis, Chromium and Node's npm (for axe-core, the
accessibility checker, installed from ``package-lock.json``): as root it installs
the Debian packages when they are missing, otherwise it says which ones to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
DEBIAN_TEST_PACKAGES = ["dovecot-imapd", "dovecot-pop3d", "redis-server", "chromium"]
DEBIAN_NPM_PACKAGES = ["nodejs", "npm"]


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, env=env)


def ensure_venv(*, dev: bool) -> None:
    """Create .venv and install exactly the locked dependencies."""
    if not PYTHON.exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    uv = VENV / "bin" / "uv"
    if not uv.exists():
        _run(PYTHON, "-m", "pip", "install", "--quiet", "uv")
    env = dict(os.environ, UV_PROJECT_ENVIRONMENT=str(VENV))
    args = ["sync", "--frozen", "--quiet"]
    if not dev:
        args.append("--no-dev")
    _run(uv, *args, env=env)


def ensure_test_servers() -> None:
    """Install Dovecot, Redis and Chromium from Debian when they are missing."""
    programs = ("dovecot", "redis-server", "chromium")
    missing = [p for p in programs if shutil.which(p) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(
            "The tests need Dovecot, Redis and Chromium; install them with:\n"
            "  sudo apt-get install " + " ".join(DEBIAN_TEST_PACKAGES)
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run("apt-get", "update", "-qq", env=env)
    _run("apt-get", "install", "-y", "-qq", *DEBIAN_TEST_PACKAGES, env=env)


def ensure_node_tools() -> None:
    """Install the locked npm packages (axe-core) when missing or out of date."""
    lock = ROOT / "package-lock.json"
    # npm writes node_modules/.package-lock.json on every install.
    installed = ROOT / "node_modules" / ".package-lock.json"
    if (
        (ROOT / "node_modules" / "axe-core").is_dir()
        and installed.exists()
        and installed.stat().st_mtime >= lock.stat().st_mtime
    ):
        return
    if shutil.which("npm") is None:
        if os.geteuid() != 0:
            sys.exit(
                "The browser tests need Node's npm for axe-core; install it with:\n"
                "  sudo apt-get install " + " ".join(DEBIAN_NPM_PACKAGES)
            )
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        _run("apt-get", "update", "-qq", env=env)
        _run("apt-get", "install", "-y", "-qq", *DEBIAN_NPM_PACKAGES, env=env)
    _run("npm", "ci", "--quiet", "--no-audit", "--no-fund")


def run(args: list[str]) -> None:
    ensure_venv(dev=False)
    _run(PYTHON, "manage.py", "migrate", "--no-input")
    address = args[0] if args else "127.0.0.1:8000"
    if not os.environ.get("REDIS_URL"):
        # No Celery here: a second process starts due POP3 imports every minute.
        subprocess.Popen([str(PYTHON), "manage.py", "import_loop"], cwd=ROOT)
    os.execv(PYTHON, [str(PYTHON), "manage.py", "runserver", address])  # noqa: S606


def test(args: list[str]) -> None:
    ensure_venv(dev=True)
    ensure_test_servers()
    ensure_node_tools()
    os.execv(PYTHON, [str(PYTHON), "-m", "pytest", *args])  # noqa: S606


def main() -> None:
    commands = {"run": run, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    os.chdir(ROOT)
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
