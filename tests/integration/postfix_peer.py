"""A private, real Postfix instance as a far side for hikyaku's outbound SMTP.

PostfixPeer(base, host, port, ...) writes its own main.cf/master.cf under
`base` (pytest's tmp_path) and runs `postfix -c BASE/conf start` (PEERS.md):
queue_directory under `base`, data_directory owned by postfix (see below),
maillog_file with a matching maillog_file_prefixes, chroot off, no DNS, no
peer-name lookups, no system tables (aliases, NIS). smtpd listens only on
HOST:PORT (an explicit master.cf service address; `inet_interfaces` stays
127.0.0.1 because Postfix refuses an inet_interfaces address that no
interface carries exactly, and loopback carries only 127.0.0.1/8).

Policy, all Postfix's own:
  * every recipient in `domain` is a virtual mailbox; accepted mail is
    delivered by Postfix's virtual(8) agent into one Maildir (`maildir`);
  * `smtpd_recipient_restrictions = check_recipient_access texthash:...`
    refuses each address in `refused` with ACCESS_REPLY (550 5.7.1) at RCPT;
  * `header_checks = regexp:...` rejects a message whose Subject contains
    `subject_marker` with HEADER_REPLY (Postfix answers 550 5.7.0 at end of
    data).

The Maildir and data_directory live OUTSIDE tmp_path, in a mkdtemp directory
under /tmp (0711): the virtual agent writes the Maildir, and the master opens
data_directory/master.lock, as the postfix user after dropping root by
absolute path, and pytest's tmp_path sits below 0700 root directories that
user cannot traverse. Everything opened as root or relative to the queue
directory (main.cf, master.cf, the access and header_checks maps, the queue,
the maillog) stays under tmp_path. stop() removes the mkdtemp directory.
"""
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from conftest import maildir_messages, port_open, wait_for

ACCESS_TEXT = "Recipient refused by pfx.test access policy"
ACCESS_REPLY = f"550 5.7.1 {ACCESS_TEXT}"
HEADER_TEXT = "Message content rejected by pfx.test header policy"
HEADER_REPLY = f"REJECT 5.7.0 {HEADER_TEXT}"

# Daemons the instance needs; the `chroot` column (5th) is n everywhere.
MASTER_CF = """\
{host}:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixPeer:
    def __init__(self, base: Path, host: str, port: int, domain="pfx.test", refused=(),
                 subject_marker="PFX-REJECT-MARKER"):
        self.base = Path(base)
        self.host = host
        self.port = port
        self.domain = domain
        self.refused = list(refused)
        self.subject_marker = subject_marker
        self.conf = self.base / "conf"
        self.queue = self.base / "queue"
        self.data = None       # data_directory: inside `store` (see above)
        self.log_path = self.base / "maillog"
        self.store = None      # mkdtemp directory: the Maildir and data_directory
        self.master_pid = None
        self.started = False

    @property
    def maildir(self):
        return self.store / "mail" / "inbox"

    def messages(self):
        return maildir_messages(self.maildir) if self.store else []

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _write_config(self):
        pf = pwd.getpwnam("postfix")
        for d in (self.conf, self.queue):
            d.mkdir(parents=True, exist_ok=True)
        self.store = Path(tempfile.mkdtemp(prefix="hikyaku-pfx-"))
        os.chmod(self.store, 0o711)
        self.data = self.store / "data"
        self.data.mkdir()
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        (self.store / "mail").mkdir()
        os.chown(self.store / "mail", pf.pw_uid, pf.pw_gid)

        access = self.conf / "access"
        access.write_text("".join(f"{a} {ACCESS_REPLY}\n" for a in self.refused))
        header_checks = self.conf / "header_checks"
        marker = self.subject_marker.replace("/", "\\/")
        header_checks.write_text(f"/^Subject:.*{marker}/ {HEADER_REPLY}\n")

        (self.conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {self.data}
mail_owner = postfix
setgid_group = postdrop
maillog_file = {self.log_path}
maillog_file_prefixes = {self.base}
myhostname = mx.{self.domain}
mydomain = {self.domain}
myorigin = {self.domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
alias_maps =
alias_database =
biff = no
smtpd_banner = $myhostname ESMTP Postfix
virtual_mailbox_domains = {self.domain}
virtual_mailbox_base = {self.store / "mail"}
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:{pf.pw_uid}
virtual_gid_maps = static:{pf.pw_gid}
smtpd_recipient_restrictions = check_recipient_access texthash:{access}, permit_mynetworks, reject_unauth_destination
header_checks = regexp:{header_checks}
""")
        (self.conf / "master.cf").write_text(MASTER_CF.format(host=self.host, port=self.port))

    def _postfix(self, *args):
        return subprocess.run(["postfix", "-c", str(self.conf), *args], capture_output=True,
                              text=True, timeout=60)

    def _master_alive(self):
        pid = self.master_pid
        if pid is None:
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"

    def start(self):
        self._write_config()
        r = self._postfix("start")
        self.started = True
        if r.returncode != 0:
            raise AssertionError(f"postfix start failed ({r.returncode}): {r.stdout}{r.stderr}\n"
                                 f"{self.log_text()}")
        pidfile = self.queue / "pid" / "master.pid"
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=20,
                 what="Postfix master.pid")
        self.master_pid = int(pidfile.read_text().strip())
        wait_for(lambda: port_open(self.port, self.host), timeout=20,
                 what=f"Postfix smtpd on {self.host}:{self.port}")
        return self

    def stop(self):
        try:
            if self.started:
                self._postfix("stop")
                if self.master_pid is not None:
                    try:
                        wait_for(lambda: not self._master_alive(), timeout=10,
                                 what="Postfix master to exit")
                    except AssertionError:
                        # Fallback: the master's own PID, then its process group
                        # (master runs as a group leader, as `postfix stop` assumes).
                        try:
                            os.kill(self.master_pid, signal.SIGKILL)
                            os.killpg(self.master_pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        wait_for(lambda: not self._master_alive(), timeout=5,
                                 what="Postfix master to die")
                self.started = False
        finally:
            if self.store is not None:
                shutil.rmtree(self.store, ignore_errors=True)
                self.store = None
