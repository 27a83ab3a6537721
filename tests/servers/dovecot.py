"""A private Dovecot (IMAP, IMAPS, POP3, POP3S) on free loopback ports.

Everything lives in one temporary directory (in /dev/shm when it has room, else
$TMPDIR; $TEST_DOVECOT_TMPDIR overrides): the configuration, the runtime
sockets (``base_dir``), the state directory, the log, the users (passwd-file
format, one file per user) and their Maildirs. Nothing in ``/etc/dovecot`` is
read, and no system-wide Dovecot is needed or touched.

Mail is seeded by writing Maildir files directly (``deliver``, ``generate``), which
is fast enough for 100,000 messages. Users are added while the server runs
(``new_user``): Dovecot re-reads a passwd-file at most once per second, so a single
shared file would hide a user created within a second of the last login; with
one file per user (``passwd.d/%u``) every new user's file is read at first use.

Ownership: run as a normal user, every process and file belongs to that user.
Run as root, Dovecot refuses mail processes with UID 0, so the mail processes run
as the unprivileged ``dovecot`` system user (from the Debian package), which owns
the home directories, the Maildir files and the passwd files; ``first_valid_uid`` /
``last_valid_uid`` admit exactly that UID.

    with Dovecot() as d:
        user = d.new_user(quota_mb=10)
        d.deliver(user.username, b"Subject: hi\\n\\nhello\\n", flags="S")
        d.generate(user.username, 10_000, folder="Archive/2024")
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime as dt
import email.message
import grp
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient

from . import die_with_parent
from .certs import make_certs
from .ports import free_port

APT_PACKAGES = "dovecot-imapd dovecot-pop3d"
SPECIAL_USE = {
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}
# IMAP system flags and their Maildir info letters.
_FLAG_LETTERS = {
    "\\draft": "D",
    "\\flagged": "F",
    "\\answered": "R",
    "\\seen": "S",
    "\\deleted": "T",
}
_MAILDIR_LETTERS = frozenset(_FLAG_LETTERS.values())
_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 5.0
_LOGIN_GRACE = 0.3
_MARKER = ".created-by-pid"
_WRITERS = 4
_CHUNK = 500
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
]
_Item = tuple[str, bytes, str, float | None]  # file name, data, flags, mtime
_SHM_MIN_FREE = 2 * 1024**3  # 100,000 seeded messages with indexes take ~0.5 GB

# What each profile advertises after login (None: Dovecot's own full list).
# "minimal" keeps what RFC 3501 servers of old had (IDLE, NAMESPACE, UNSELECT and
# CHILDREN are common on those too): no UIDPLUS, so expunging is plain EXPUNGE.
# "courier" advertises what Courier-IMAP 5 does: SORT, QUOTA and UIDPLUS, but
# no MOVE, CONDSTORE, SPECIAL-USE, LIST-STATUS or ENABLE.
PROFILES: dict[str, str | None] = {
    "full": None,
    "minimal": "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
    "NAMESPACE UNSELECT CHILDREN",
    "courier": "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT "
    "THREAD=REFERENCES SORT QUOTA IDLE",
}


class DovecotMissing(RuntimeError):
    """The dovecot binary is not installed."""


@dataclass(frozen=True)
class MailUser:
    """A mailbox on the test Dovecot: log in with ``username`` and ``password``."""

    username: str
    password: str
    email: str


def find_dovecot() -> str:
    """Return the path of the ``dovecot`` binary, or raise ``DovecotMissing``."""
    path = shutil.which("dovecot") or shutil.which(
        "dovecot", path="/usr/sbin:/usr/local/sbin:/sbin"
    )
    if path is None:
        raise DovecotMissing(
            "The dovecot binary was not found. The mail tests run against a real "
            f"Dovecot 2.3: install it with `apt-get install {APT_PACKAGES}` "
            "(the system service does not need to run)."
        )
    return path


def _imap_utf7(name: str) -> str:
    """Encode one mailbox name component in IMAP modified UTF-7 (RFC 3501 5.1.3)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            b64 = base64.b64encode(raw).decode("ascii").rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _maildir_flags(flags: str | Iterable[str]) -> str:
    """Return the sorted Maildir info letters for ``flags``.

    Accepts Maildir letters (``"S"``, ``"FS"``) or IMAP flag names
    (``"\\\\Seen \\\\Flagged"`` or a list of them).
    """
    if isinstance(flags, str):
        items = flags.split() if "\\" in flags else list(flags)
    else:
        items = list(flags)
    letters = set()
    for item in items:
        if item.startswith("\\"):
            try:
                letters.add(_FLAG_LETTERS[item.lower()])
            except KeyError:
                raise ValueError(f"unsupported flag {item!r}") from None
        elif item in _MAILDIR_LETTERS:
            letters.add(item)
        else:
            raise ValueError(
                f"unsupported flag {item!r}: use Maildir letters D F R S T "
                "or IMAP system flags like \\Seen"
            )
    return "".join(sorted(letters))


def _as_bytes(message: bytes | str | email.message.Message) -> bytes:
    if isinstance(message, bytes):
        return message
    if isinstance(message, str):
        return message.encode("utf-8")
    if isinstance(message, email.message.EmailMessage):
        return message.as_bytes(policy=message.policy.clone(linesep="\n"))
    if isinstance(message, email.message.Message):
        return message.as_bytes()
    raise TypeError(f"cannot deliver a {type(message).__name__}")


def _timestamp(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:  # naive: read as UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _rfc5322_date(timestamp: float) -> str:
    """``Tue, 05 Mar 2024 10:00:00 +0000``, cheaper than email.utils."""
    t = time.gmtime(timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def _scratch() -> str | None:
    """Where a new root directory goes: $TEST_DOVECOT_TMPDIR, else a roomy
    /dev/shm, else the usual temporary directory ($TMPDIR or /tmp).

    Seeding creates one file per message, and creating files in RAM costs
    ~10 us against 0.1-1 ms on some disks: 100,000 messages in seconds.
    """
    if env := os.environ.get("TEST_DOVECOT_TMPDIR"):
        return env
    try:
        shm = os.statvfs("/dev/shm")
    except OSError:
        return None
    roomy = shm.f_bavail * shm.f_frsize >= _SHM_MIN_FREE
    return "/dev/shm" if roomy and os.access("/dev/shm", os.W_OK | os.X_OK) else None


def _check_reachable(path: Path) -> None:
    """Refuse a root directory below a directory other users cannot enter."""
    for parent in path.resolve().parents:
        if not parent.stat().st_mode & 0o001:
            raise ValueError(
                f"{path}: {parent} is closed to other users, so Dovecot's "
                "unprivileged processes could not reach their files. Use a "
                "directory below /tmp (the default)."
            )


def _group_members(pgid: int) -> list[str] | None:
    """Names of the running (not zombie) processes of group ``pgid``.

    ``None`` when that cannot be known (no /proc).
    """
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    members = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        comm = stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode(errors="replace")
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            members.append(comm)
    return members


def _only_idle_left(members: list[str]) -> bool:
    """Only the master and login processes are left: nothing that holds mail state.

    A login process that got SIGTERM while it was still connecting to the auth
    process can wait 5 s for it; there is nothing to lose by killing it.
    """
    return all(name == "dovecot" or name.endswith("-login") for name in members)


_instances: set[Dovecot] = set()  # strong references: atexit must find them all


@atexit.register
def _close_all() -> None:
    for server in list(_instances):
        with contextlib.suppress(Exception):
            server.close()


def _sweep(parent: str | None) -> None:
    """Remove the directories of earlier runs that died without cleaning up.

    Only directories carrying our marker, whose creating process is gone.
    """
    for marker in Path(parent or tempfile.gettempdir()).glob(f"dovecot-*/{_MARKER}"):
        try:
            pid = int(marker.read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(marker.parent, ignore_errors=True)
        except (OSError, ValueError):
            continue


class Dovecot:
    """A private Dovecot 2.3 on free ports of 127.0.0.1.

    ``root`` is the directory for all its files (a new temporary directory by
    default, removed by ``close()`` / the context manager unless ``keep``).
    ``separator`` is the IMAP hierarchy separator of the INBOX namespace; the
    Maildir++ layout on disk always uses ``.``.

    ``profile`` picks what the server looks like to a client, with Dovecot's own
    settings (see PROFILES): ``"full"`` (every capability Dovecot 2.3 has, special-use
    attributes on Drafts/Sent/Trash/Junk/Archive), ``"minimal"`` (an
    ``imap_capability`` of IMAP4rev1 basics only: no CONDSTORE, QRESYNC, MOVE,
    SPECIAL-USE, SORT, QUOTA, LIST-STATUS, LIST-EXTENDED, UIDPLUS, ESEARCH; no
    special-use attributes) or ``"courier"`` (Courier-IMAP's namespace: every folder
    below ``INBOX.`` with ``.`` as separator, no special-use attributes). Dovecot
    still accepts the commands it no longer advertises: a client must choose from
    the advertised list.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        separator: str = "/",
        keep: bool = False,
        profile: str = "full",
    ) -> None:
        if separator not in ("/", "."):
            raise ValueError("separator must be '/' or '.'")
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        if profile == "courier":
            separator = "."
        self.profile = profile
        self.prefix = "INBOX." if profile == "courier" else ""
        self.binary = find_dovecot()
        self._own_root = root is None
        if root is None:
            parent = _scratch()
            _sweep(parent)
            root = tempfile.mkdtemp(prefix="dovecot-", dir=parent)
            Path(root, _MARKER).write_text(str(os.getpid()))
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # Dovecot's users must reach their files below
        if os.geteuid() == 0:
            _check_reachable(self.root)
        self.separator = separator
        self.keep = keep
        self.conf_file = self.root / "dovecot.conf"
        self.log_file = self.root / "dovecot.log"
        self.passwd_dir = self.root / "passwd.d"
        self.ca_file, self.cert_file, self.key_file = make_certs(self.root / "ssl")
        self.imap_port: int | None = None
        self.imaps_port: int | None = None
        self.pop3_port: int | None = None
        self.pop3s_port: int | None = None

        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._user_counter = itertools.count(1)
        self._file_counter = itertools.count()
        self._clock_lock = threading.Lock()
        self._last_stamp = 0
        self._pid = os.getpid()
        self._hostname = socket.gethostname().replace("/", "_").replace(":", "_")

        if os.geteuid() == 0:
            # Dovecot will not run mail processes as root: use its own system user.
            entry = pwd.getpwnam("dovecot")
            self.uid, self.gid = entry.pw_uid, entry.pw_gid
            self._internal_user = "dovecot"
            self._internal_group = grp.getgrgid(entry.pw_gid).gr_name
            self._login_user = "dovenull"
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            self._internal_user = pwd.getpwuid(self.uid).pw_name
            self._internal_group = grp.getgrgid(self.gid).gr_name
            self._login_user = self._internal_user
        self._chown = os.geteuid() == 0

        self.home_root = self.root / "home"
        self.home_root.mkdir(exist_ok=True)
        self.home_root.chmod(0o755)
        (self.root / "state").mkdir(exist_ok=True)
        self._mkdir(self.passwd_dir)
        _instances.add(self)

    # -- lifecycle ---------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Dovecot:
        """Start Dovecot and wait until every listener answers."""
        if self.running:
            return self
        fixed_ports = self.imap_port is not None
        attempts = 1 if fixed_ports else 3
        for attempt in range(attempts):
            if not fixed_ports:
                self.imap_port, self.imaps_port = free_port(), free_port()
                self.pop3_port, self.pop3s_port = free_port(), free_port()
            try:
                self._start_once()
            except RuntimeError as exc:
                # Another process took a port between free_port() and bind().
                if attempt == attempts - 1 or "in use" not in str(exc):
                    raise
            else:
                break
        return self

    def _start_once(self) -> None:
        self.conf_file.write_text(self._config())
        stderr = open(self.root / "stderr.log", "ab")  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.conf_file)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it cleanly
                preexec_fn=die_with_parent(),
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC"},
            )
        finally:
            stderr.close()
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + _START_TIMEOUT
        pending = [self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port]
        while pending:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited with status {self._proc.returncode}:\n"
                    + self._diagnostics()
                )
            try:
                with socket.create_connection((self.host, pending[0]), timeout=1):
                    pending.pop(0)
                continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "dovecot did not open its ports in time:\n" + self._diagnostics()
                )
            time.sleep(0.01)
        # Wait for the IMAP greeting: the login service is up.
        with socket.create_connection((self.host, self.imap_port), timeout=10) as s:
            greeting = s.makefile("rb").readline()
        if not greeting.startswith(b"* OK"):
            raise RuntimeError(f"unexpected IMAP greeting {greeting!r}")

    def stop(self) -> None:
        """Stop Dovecot and every process it started. Mail and users stay."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # The master leads its own process group (start_new_session) and is not
        # reaped before the end, so the group id cannot be reused meanwhile.
        # SIGTERM to the whole group: every process shuts down cleanly at once
        # (the master alone would take a second or more to stop its children).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < _STOP_TIMEOUT:
            members = _group_members(proc.pid)
            if members is None:  # cannot look: give them a moment
                time.sleep(0.5)
                break
            if not members or (elapsed > _LOGIN_GRACE and _only_idle_left(members)):
                break
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left
        proc.wait()

    def restart(self) -> None:
        """Stop and start again on the same ports with the same mail."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop Dovecot and remove its directory (unless ``keep``).

        Also done at exit for every instance not closed before.
        """
        self.stop()
        _instances.discard(self)
        if self._own_root and not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def log_text(self) -> str:
        """Dovecot's log so far."""
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _diagnostics(self) -> str:
        stderr = self.root / "stderr.log"
        text = stderr.read_text(errors="replace") if stderr.exists() else ""
        return (text + self.log_text())[-4000:]

    # -- configuration -----------------------------------------------------

    def _config(self) -> str:
        root = self.root
        attributes = self.profile == "full"
        mailboxes = "\n".join(
            f"  mailbox {name} {{\n    auto = subscribe\n"
            + (f"    special_use = {use}\n" if attributes else "")
            + "  }"
            for name, use in SPECIAL_USE.items()
        )
        capability = PROFILES[self.profile]
        imap_capability = f"  imap_capability = {capability}\n" if capability else ""
        prefix = f"  prefix = {self.prefix}\n" if self.prefix else ""
        if os.geteuid() == 0:
            unprivileged = ""
        else:
            # No chroot and no user switching without root.
            unprivileged = "\n".join(
                f"service {name} {{\n  chroot =\n}}"
                for name in (
                    "imap-login",
                    "pop3-login",
                    "anvil",
                    "ipc",
                    "old-stats",
                    "aggregator",
                    "director",
                    "submission-login",
                    "imap-urlauth-login",
                )
            )
        return f"""\
# Generated by tests/servers/dovecot.py for a test run. Not for production.
instance_name = webmail-test-{self.imap_port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {self.log_file}
protocols = imap pop3
listen = {self.host}
shutdown_clients = yes

default_internal_user = {self._internal_user}
default_internal_group = {self._internal_group}
default_login_user = {self._login_user}
first_valid_uid = {self.uid}
last_valid_uid = {self.uid}
first_valid_gid = {self.gid}
last_valid_gid = {self.gid}

ssl = yes
ssl_cert = <{self.cert_file}
ssl_key = <{self.key_file}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no

auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_dir}/%u
}}
# Failed logins answer at once: the auth process holds every failure back for
# at least 0.5 s (whatever auth_failure_delay says) unless a passdb sets
# "nodelay". This passdb is reached only after the passwd-file failed (wrong
# password, unknown user); it adds nodelay and still fails: continue-fail on the
# last passdb means failure.
passdb {{
  driver = static
  args = nopassword=y nodelay=yes
  result_success = continue-fail
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_dir}/%u
}}

mail_location = maildir:~/Maildir
mail_max_userip_connections = 50
mail_plugins = $mail_plugins quota
namespace inbox {{
  inbox = yes
  separator = {self.separator}
{prefix}{mailboxes}
}}
plugin {{
  quota = count:User quota
  quota_vsizes = yes
}}

protocol imap {{
  mail_plugins = $mail_plugins imap_quota
{imap_capability}}}

service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {self.host}
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    address = {self.host}
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
# No failed-login penalty (anvil would delay every further login from
# 127.0.0.1 by up to 15 s): without this socket the auth process skips it.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{unprivileged}
"""

    # -- users -------------------------------------------------------------

    def _write_passwd(self, username: str, line: str) -> None:
        """Write one user's passwd-file atomically: never seen half-written."""
        tmp = self.passwd_dir / f".{username}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, line.encode())
            if self._chown:
                os.fchown(fd, self.uid, self.gid)
        finally:
            os.close(fd)
        os.replace(tmp, self.passwd_dir / username)

    def login(self, user: MailUser) -> IMAPClient:
        """Another mail client of ``user``'s mailbox (a phone, say), logged in
        over plain IMAP on loopback; the caller logs it out."""
        other = IMAPClient(self.host, self.imap_port, ssl=False, timeout=10)
        other.login(user.username, user.password)
        return other

    def new_user(self, quota_mb: int | None = 100) -> MailUser:
        """Create a user with a unique name, a random password and an empty Maildir.

        ``quota_mb`` is the storage limit in MiB (``None`` or 0: no limit, and
        GETQUOTAROOT then answers "OK No quota" with no quota root). The user
        can log in at once, without a restart.
        """
        with self._lock:
            username = f"user{next(self._user_counter):04d}x{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(12)
        user = MailUser(username, password, f"{username}@example.test")
        home = self.home_root / username
        self._mkdir(home, mode=0o700)
        self._make_maildir(home / "Maildir")
        extra = f"userdb_quota_rule=*:storage={quota_mb}M" if quota_mb else ""
        self._write_passwd(
            username,
            f"{username}:{{PLAIN}}{password}:{self.uid}:{self.gid}::{home}::{extra}\n",
        )
        return user

    def folder_name(self, *parts: str) -> str:
        """The IMAP name of a folder given its levels: ``folder_name("A", "B")`` is
        ``A/B`` on the full profile and ``INBOX.A.B`` on the courier one."""
        return self.prefix + self.separator.join(parts)

    def maildir(self, username: str) -> Path:
        """The user's Maildir (the INBOX; folders are ``.Name`` below it)."""
        return self.home_root / username / "Maildir"

    # -- Maildir writing ---------------------------------------------------

    def _mkdir(self, path: Path, mode: int = 0o700) -> None:
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            return
        if self._chown:
            os.chown(path, self.uid, self.gid)

    def _make_maildir(self, path: Path) -> None:
        self._mkdir(path)
        for sub in ("cur", "new", "tmp"):
            self._mkdir(path / sub)

    def folder_path(self, username: str, folder: str = "INBOX") -> Path:
        """The Maildir++ directory of ``folder``, named as IMAP shows it.

        ``"INBOX"`` is the Maildir itself; ``"Archive/2024"`` is
        ``.Archive.2024`` below it (names in modified UTF-7, as Dovecot does); on
        the courier profile ``"INBOX.Archive.2024"`` is.
        """
        base = self.maildir(username)
        if folder.upper() == "INBOX":
            return base
        if self.prefix:
            if not folder.startswith(self.prefix):
                raise ValueError(f"folder name {folder!r} is not below {self.prefix}")
            folder = folder[len(self.prefix) :]
        parts = folder.split(self.separator)
        for part in parts:
            if not part or (self.separator != "." and "." in part) or "/" in part:
                raise ValueError(
                    f"folder name {folder!r} cannot be stored in Maildir++"
                )
        return base / ("." + ".".join(_imap_utf7(part) for part in parts))

    def _folder(self, username: str, folder: str) -> Path:
        base = self.maildir(username)
        if not base.is_dir():
            raise ValueError(f"no such user: {username!r}")
        path = self.folder_path(username, folder)
        if path != base and not (path / "tmp").is_dir():
            self._make_maildir(path)
            marker = path / "maildirfolder"
            marker.touch()
            if self._chown:
                os.chown(marker, self.uid, self.gid)
        return path

    def _next_stamp(self) -> tuple[int, int]:
        """Strictly increasing (seconds, microseconds) for file names.

        Dovecot gives new files their UIDs in file-name time order, so this keeps
        UID order equal to delivery order.
        """
        with self._clock_lock:
            stamp = max(time.time_ns() // 1000, self._last_stamp + 1)
            self._last_stamp = stamp
        return divmod(stamp, 1_000_000)

    def _file_name(self, data: bytes) -> str:
        """A unique Maildir base name, with the sizes Dovecot can trust.

        ``S=`` is the file size, ``W=`` the size with CRLF line ends (what
        RFC822.SIZE reports).
        """
        secs, usecs = self._next_stamp()
        vsize = len(data) + data.count(b"\n") - data.count(b"\r\n")
        return (
            f"{secs}.M{usecs}P{self._pid}Q{next(self._file_counter)}."
            f"{self._hostname},S={len(data)},W={vsize}"
        )

    def _write(self, path: Path, items: Iterable[_Item]) -> None:
        """Write messages the Maildir way: into ``tmp/``, then renamed."""
        folder = str(path)
        for name, data, letters, mtime in items:
            tmp = f"{folder}/tmp/{name}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
                if self._chown:
                    os.fchown(fd, self.uid, self.gid)
                if mtime is not None:
                    os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
            if letters:
                os.rename(tmp, f"{folder}/cur/{name}:2,{letters}")
            else:
                os.rename(tmp, f"{folder}/new/{name}")

    def deliver(
        self,
        username: str,
        *messages: bytes | str | email.message.Message,
        folder: str = "INBOX",
        flags: str | Iterable[str] = "",
        internaldate: dt.datetime | None = None,
    ) -> None:
        """Put ``messages`` into ``folder`` of ``username``'s Maildir, in order.

        Messages without flags go to ``new/`` (Dovecot reports them as
        \\Recent); with flags (``"S"``, ``"\\\\Seen \\\\Flagged"``) to ``cur/``.
        ``internaldate`` becomes the files' mtime, i.e. the IMAP INTERNALDATE
        (a naive datetime is read as UTC; default: now). A folder that does not
        exist is created (not subscribed). UIDs follow the delivery order.
        """
        path = self._folder(username, folder)
        letters = _maildir_flags(flags)
        mtime = _timestamp(internaldate)
        items = []
        for message in messages:
            data = _as_bytes(message)
            items.append((self._file_name(data), data, letters, mtime))
        self._write(path, items)

    def generate(
        self, username: str, count: int, folder: str = "INBOX", size: int = 2000
    ) -> None:
        """Seed ``count`` plain-text messages of about ``size`` bytes each.

        Each has its own Subject, From, Date (one minute apart, the last a
        minute ago; also the INTERNALDATE) and Message-ID; UIDs follow the
        dates. Fast: a few threads write, 10,000 messages take about a second.
        """
        path = self._folder(username, folder)
        batch = secrets.token_hex(4)
        line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\n"
        filler = line * (size // len(line) + 1)
        start = int(time.time()) - 60 * count

        def message(i: int) -> _Item:
            when = start + 60 * i
            sender = i % 97
            header = (
                f"From: Sender {sender} <sender{sender}@example.org>\n"
                f"To: {username}@example.test\n"
                f"Subject: Generated message {i + 1} of {count} ({batch})\n"
                f"Date: {_rfc5322_date(when)}\n"
                f"Message-ID: <{batch}.{i}@generated.example.test>\n"
                "MIME-Version: 1.0\n"
                "Content-Type: text/plain; charset=us-ascii\n"
                "\n"
            ).encode()
            body = filler[: max(size - len(header) - 1, 0)].rstrip(b"\n") + b"\n"
            data = header + body
            return self._file_name(data), data, "", when

        # Names (hence UIDs) are handed out in order here; only the file
        # system calls, which release the GIL, run in parallel.
        with ThreadPoolExecutor(_WRITERS) as pool:
            pending: deque[Future[None]] = deque()
            for first in range(0, count, _CHUNK):
                chunk = [message(i) for i in range(first, min(first + _CHUNK, count))]
                pending.append(pool.submit(self._write, path, chunk))
                if len(pending) > 2 * _WRITERS:
                    pending.popleft().result()
            for future in pending:
                future.result()

    def count(self, username: str, folder: str = "INBOX") -> int:
        """Messages in ``folder``: ``new/`` plus ``cur/``, counted once each."""
        path = self.folder_path(username, folder)
        names: set[str] = set()
        for sub in ("new", "cur"):  # new first: a file moved meanwhile is seen twice
            with contextlib.suppress(FileNotFoundError):
                names.update(
                    entry.name.split(":", 1)[0] for entry in os.scandir(path / sub)
                )
        return len(names)
