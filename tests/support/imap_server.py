"""A real IMAP server on loopback: Debian's dovecot with a config of its own (no system
file touched), IMAP over TLS with a certificate made for the test, one user with a
password, its mail in a Maildir the test can also write. Run as root (CI), dovecot's
login and mail processes run as Debian's `dovenull` and `dovecot` users, so its folder
is one they can reach (not pytest's, which only root may enter)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .smtp_server import Pki, free_port, make_pki

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """
protocols = imap
listen = 127.0.0.1
base_dir = {run}
state_dir = {state}
log_path = {folder}/dovecot.log
info_log_path = {folder}/dovecot.log
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain
default_login_user = {login}
default_internal_user = {user}
default_internal_group = {group}
first_valid_uid = 0
mail_location = maildir:{maildir}
mail_plugins =
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
service auth {{
  user = {user}
}}
service auth-worker {{
  user = {user}
}}
"""


@dataclass
class ImapServer:
    folder: Path
    port: int
    user: str
    password: str
    maildir: Path
    pki: Pki
    process: subprocess.Popen[bytes]

    def deliver(self, raw: bytes, name: str) -> Path:
        """A message put in the mailbox as a delivery agent would: written to tmp/, moved to new/."""
        temporary = self.maildir / "tmp" / name
        temporary.write_bytes(raw)
        target = self.maildir / "new" / name
        if os.getuid() == 0:
            owner = self.maildir.stat()
            os.chown(temporary, owner.st_uid, owner.st_gid)
        os.replace(temporary, target)
        return target

    def restart(self) -> None:
        """The server dies (every connection dropped at once, as a crash or a network cut does)
        and starts again on the same port, config and mailbox."""
        self._kill()
        _wait_closed(self.port)                 # a child of the old server may hold the port a moment longer
        self.process = _run(self.folder)
        _wait_for(self)

    def _kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Gone at once: the master and every process it started (its own session) are killed;
        a clean shutdown waits seconds for its children, and the folder goes with them."""
        self._kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def available() -> bool:
    return Path(DOVECOT).exists()


def start(user: str = "bounces", password: str = "bounce-mailbox-password") -> ImapServer:
    folder = Path(tempfile.mkdtemp(prefix="digest-imap-"))
    folder.chmod(0o755)
    root = os.getuid() == 0
    login = pwd.getpwnam("dovenull") if root else pwd.getpwuid(os.getuid())
    internal = pwd.getpwnam("dovecot") if root else pwd.getpwuid(os.getuid())
    pki = make_pki(folder / "pki")
    maildir = folder / "home" / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (folder / "users").write_text(f"{user}:{{PLAIN}}{password}\n")
    if root:                                   # the mail process (the dovecot user) owns the mailbox
        for path in [folder / "home", *(folder / "home").rglob("*")]:
            os.chown(path, internal.pw_uid, internal.pw_gid)
    port = free_port()
    for sub in ("run", "state"):
        (folder / sub).mkdir(exist_ok=True)
    config = CONFIG.format(run=folder / "run", state=folder / "state", folder=folder, cert=pki.cert, key=pki.key,
                           login=login.pw_name, user=internal.pw_name, group=_group(internal.pw_gid),
                           uid=internal.pw_uid, gid=internal.pw_gid, maildir=maildir, users=folder / "users",
                           home=folder / "home", port=port)
    (folder / "dovecot.conf").write_text(config)
    server = ImapServer(folder, port, user, password, maildir, pki, _run(folder))
    _wait_for(server)
    return server


def _run(folder: Path) -> subprocess.Popen[bytes]:
    """dovecot in the foreground, in a session of its own (stop kills it and its children at once)."""
    return subprocess.Popen([DOVECOT, "-F", "-c", str(folder / "dovecot.conf")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _group(gid: int) -> str:
    import grp
    return grp.getgrgid(gid).gr_name


def _wait_closed(port: int) -> None:
    ends = time.monotonic() + 10
    while time.monotonic() < ends:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                time.sleep(0.05)
        except OSError:
            return
    raise RuntimeError(f"the port {port} is still taken after the IMAP server was killed")


def _wait_for(server: ImapServer) -> None:
    ends = time.monotonic() + 20
    while time.monotonic() < ends:
        if server.process.poll() is not None:
            output = server.process.stdout.read().decode(errors="replace") if server.process.stdout else ""
            raise RuntimeError(f"dovecot exited: {output} {server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                if server.process.poll() is None:         # this server answers, not what was left of the last
                    return
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"dovecot did not listen on {server.port}: {server.log()}")
