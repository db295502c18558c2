"""Private, real Postfix instances as peers of hikyaku's outbound SMTP.

PostfixPeer(base, host, port, ...) writes its own main.cf/master.cf under
`base` (pytest's tmp_path) and runs `postfix -c BASE/conf start` (PEERS.md):
queue_directory under `base`, data_directory owned by postfix (see below),
maillog_file with a matching maillog_file_prefixes, chroot off, no DNS, no
peer-name lookups, no system tables (aliases, NIS). smtpd listens only on
HOST:PORT (an explicit master.cf service address; `inet_interfaces` stays
127.0.0.1 because Postfix refuses an inet_interfaces address that no
interface carries exactly, and loopback carries only 127.0.0.1/8). The
configuration files are back-dated: Postfix re-reads a file modified in the
last second or two until it "cools down", which made every start take 2 s.

PostfixPeer's policy (a far side for forwarding), all Postfix's own:
  * every recipient in `domain` is a virtual mailbox; accepted mail is
    delivered by Postfix's virtual(8) agent into one Maildir (`maildir`);
  * `smtpd_recipient_restrictions = check_recipient_access texthash:...`
    refuses each address in `refused` with ACCESS_REPLY (550 5.7.1) at RCPT;
  * `header_checks = regexp:...` rejects a message whose Subject contains
    `subject_marker` with HEADER_REPLY (Postfix answers 550 5.7.0 at end of
    data).

PostfixSaslRelay(base, host, port, accounts, hostname=...) is a provider's
relay (smarthost) that hikyaku logs in to, the "second relay" of a gateway:
  * STARTTLS with a self-signed certificate made by `openssl req -x509`
    (`cert_path`; CN and DNS SAN `hostname`, IP SAN `host`);
    `smtpd_tls_security_level = may`, `smtpd_tls_auth_only = yes`: AUTH is
    advertised only after STARTTLS;
  * SMTP AUTH by Cyrus SASL: mechanisms PLAIN LOGIN CRAM-MD5 against a sasldb
    made with saslpasswd2 from `accounts` {username: password};
  * `smtpd_relay_restrictions = permit_sasl_authenticated,
    reject_unauth_destination` and no local or relay domains: without AUTH
    every recipient gets 554 5.7.1 Relay access denied; after AUTH any
    domain is accepted;
  * accepted mail is not sent on: `default_transport = virtual` delivers
    every recipient into the one Maildir, one file per recipient, with
    Return-Path (envelope sender), X-Original-To (recipient as given) and
    Delivered-To prepended. messages() returns Relayed records.
  * The client's HELO/EHLO name and SASL login are read from smtpd's own
    Received header, `Received: from HELO (unknown [ADDR])` /
    `(Authenticated sender: USER)` (smtpd_sasl_authenticated_header = yes) /
    `by HOSTNAME (Postfix) with ESMTPSA id QUEUEID`. Without HELO, Postfix
    writes the client name there ("unknown": no peer-name lookups). The
    maillog's `QUEUEID: client=..., sasl_method=M, sasl_username=U` line gives
    the mechanism too (sasl_login()).
  * Realm: Postfix passes smtpd_sasl_local_domain to Cyrus as the user realm.
    Left empty, Cyrus looks a plain login `relayuser` up in the sasldb as
    `relayuser@` + myhostname and reports it as plain `relayuser`, so the
    sasldb is made with `saslpasswd2 -u HOSTNAME`. (Set to a realm, it
    reports every login as `relayuser@REALM`.)
  * Debian's Postfix reads smtpd.conf from $config_directory/sasl and ignores
    cyrus_sasl_config_path (README.Debian "SASL configuration goes in
    /etc/postfix/sasl"); both name BASE/conf/sasl here.

The Maildir, data_directory and the sasldb live OUTSIDE tmp_path, in a
mkdtemp directory under /tmp (0711): the virtual agent writes the Maildir,
the master opens data_directory/master.lock, and smtpd opens the sasldb at
each AUTH, as the postfix user after dropping root, by absolute path, and
pytest's tmp_path sits below 0700 root directories that user cannot traverse.
Everything opened as root or relative to the queue directory (main.cf,
master.cf, the maps, smtpd.conf, the TLS key, the queue, the maillog) stays
under tmp_path. stop() stops the master and its children and removes the
mkdtemp directory.
"""
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
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
                 subject_marker="PFX-REJECT-MARKER", hostname=None):
        self.base = Path(base)
        self.host = host
        self.port = port
        self.domain = domain
        self.hostname = hostname or f"mx.{domain}"
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
        (self.conf / "main.cf").write_text(self._common_main_cf(pf) + self._policy_main_cf(pf))
        (self.conf / "master.cf").write_text(self._master_cf())
        # Postfix re-reads a configuration file every 0.3 s until its mtime
        # is at least a second older than the read ("pausing to let FILE cool
        # down", dict_load_file): a main.cf written just now made `postfix
        # start` take 2 s instead of 0.2 s.
        old = time.time() - 10
        for f in self.conf.rglob("*"):
            os.utime(f, (old, old))

    def _common_main_cf(self, pf):
        """The private-instance settings every peer shares (module docstring)."""
        return f"""\
compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {self.data}
mail_owner = postfix
setgid_group = postdrop
maillog_file = {self.log_path}
maillog_file_prefixes = {self.base}
myhostname = {self.hostname}
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
virtual_mailbox_base = {self.store / "mail"}
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:{pf.pw_uid}
virtual_gid_maps = static:{pf.pw_gid}
"""

    def _policy_main_cf(self, pf):
        """This peer's policy: `domain` is a virtual mailbox domain, plus the
        access and header_checks refusals."""
        access = self.conf / "access"
        access.write_text("".join(f"{a} {ACCESS_REPLY}\n" for a in self.refused))
        header_checks = self.conf / "header_checks"
        marker = self.subject_marker.replace("/", "\\/")
        header_checks.write_text(f"/^Subject:.*{marker}/ {HEADER_REPLY}\n")
        return f"""\
virtual_mailbox_domains = {self.domain}
smtpd_recipient_restrictions = check_recipient_access texthash:{access}, permit_mynetworks, reject_unauth_destination
header_checks = regexp:{header_checks}
"""

    def _master_cf(self):
        return MASTER_CF.format(host=self.host, port=self.port)

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


# --- a provider's authenticated relay (smarthost) ------------------------------

@dataclass
class Relayed:
    """One message PostfixSaslRelay accepted, as virtual(8) wrote it for one
    recipient (LF line ends)."""
    path: Path
    data: bytes                # Return-Path, X-Original-To, Delivered-To, Received, message
    mail_from: str | None      # envelope sender (Return-Path, without <>)
    rcpt_to: str | None        # envelope recipient as given in RCPT TO (X-Original-To)
    helo: str | None           # name in HELO/EHLO (relay's Received header, see module doc)
    sasl_username: str | None  # "(Authenticated sender: USER)" in the Received header
    protocol: str | None       # "with ESMTPSA": S = STARTTLS was used, A = AUTH
    queue_id: str | None       # the relay's queue ID (keys the maillog lines)

    @property
    def submitted(self):
        """The message as the client sent it in DATA, if it sent CRLF line
        ends: the file without the headers Postfix put on top, LF turned back
        into CRLF."""
        header_end = self.data.find(b"\n\n") + 1
        lines = self.data[:header_end].split(b"\n")[:-1]
        i = 0
        while i < len(lines) and lines[i].split(b":", 1)[0].lower() in ADDED_BY_DELIVERY:
            i += 1
        if i < len(lines) and lines[i].lower().startswith(b"received:"):
            i += 1
            while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
                i += 1
        head = b"".join(line + b"\n" for line in lines[i:])
        return (head + self.data[header_end:]).replace(b"\n", b"\r\n")


ADDED_BY_DELIVERY = (b"return-path", b"x-original-to", b"delivered-to")

# smtpd's own Received header (smtpd.c data_cmd), the first one in the file:
#   Received: from HELO (NAME [ADDR])       HELO, or NAME if none was given
#   \t(using TLS...)                          only with smtpd_tls_received_header
#   \t(Authenticated sender: USER)           smtpd_sasl_authenticated_header
#   \tby HOSTNAME (Postfix) with PROTO id QUEUEID[;]
RECEIVED_FROM_RE = re.compile(r"^Received: from (\S+) \(")
RECEIVED_AUTH_RE = re.compile(r"^\s+\(Authenticated sender: ([^)]*)\)$", re.M)
RECEIVED_BY_RE = re.compile(r"^\s+by \S+ \(Postfix\) with (\S+) id (\w+)", re.M)


def _received(head):
    """(helo, sasl_username, protocol, queue_id) from the relay's Received
    header, None for each part it lacks."""
    m = re.search(r"^Received: .*\n(?:[ \t].*\n)*", head, re.M)
    if m is None:
        return None, None, None, None
    block = m.group(0)
    helo, auth, by = (RECEIVED_FROM_RE.match(block), RECEIVED_AUTH_RE.search(block),
                      RECEIVED_BY_RE.search(block))
    return (helo.group(1) if helo else None, auth.group(1) if auth else None,
            by.group(1) if by else None, by.group(2) if by else None)


# virtual(8) names a Maildir file SECONDS.VdevIinodeMmicroseconds.HOST.
MAILDIR_NAME_RE = re.compile(r"^(\d+)\.V[0-9a-f]+I[0-9a-f]+M(\d+)\.")


def _arrival(path):
    m = MAILDIR_NAME_RE.match(path.name)
    return (int(m.group(1)), int(m.group(2)), path.name) if m else (0, 0, path.name)


class PostfixSaslRelay(PostfixPeer):
    """A provider's smarthost: STARTTLS, then SMTP AUTH (PLAIN, LOGIN,
    CRAM-MD5) against a sasldb holding `accounts`, then relay for any domain
    into one Maildir. The policy is in the module docstring."""

    def __init__(self, base: Path, host: str, port: int, accounts: dict,
                 hostname="smtp.provider.test"):
        super().__init__(base, host, port, domain=hostname.split(".", 1)[-1], hostname=hostname)
        self.accounts = dict(accounts)
        self.cert_path = self.base / "tls" / "cert.pem"   # self-signed; a client may trust it
        self.key_path = self.base / "tls" / "key.pem"

    def messages(self):
        """Every message delivered so far as Relayed records (not paths, as
        PostfixPeer.messages() gives), oldest first. A file appears only
        once complete (Maildir tmp/ → new/ rename)."""
        out = []
        paths = maildir_messages(self.maildir) if self.store else []
        for path in sorted(paths, key=_arrival):
            data = path.read_bytes()
            head = data[:data.find(b"\n\n") + 1].decode("utf-8", "replace")
            mail_from = re.search(r"^Return-Path: <([^>]*)>", head, re.M)
            rcpt_to = (re.search(r"^X-Original-To: (\S+)", head, re.M)
                       or re.search(r"^Delivered-To: (\S+)", head, re.M))
            helo, sasl_username, protocol, queue_id = _received(head)
            out.append(Relayed(
                path=path, data=data,
                mail_from=mail_from.group(1) if mail_from else None,
                rcpt_to=rcpt_to.group(1) if rcpt_to else None,
                helo=helo, sasl_username=sasl_username, protocol=protocol, queue_id=queue_id))
        return out

    def sasl_login(self, queue_id):
        """(sasl_method, sasl_username) smtpd logged for the message with this
        queue ID, or None (yet). The maillog is written by postlogd, so a
        caller waits for it (wait_for) rather than expecting it with the file."""
        m = re.search(rf"\b{re.escape(queue_id)}: client=[^,\n]*, sasl_method=([^,\n]+), "
                      r"sasl_username=(\S+)", self.log_text())
        return (m.group(1), m.group(2)) if m else None

    def _make_certificate(self):
        self.cert_path.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", f"/CN={self.hostname}",
             "-addext", f"subjectAltName=DNS:{self.hostname},IP:{self.host}",
             "-keyout", str(self.key_path), "-out", str(self.cert_path)],
            capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError(f"openssl req failed: {r.stderr}")

    def _make_sasl(self, pf):
        """conf/sasl/smtpd.conf, read by smtpd as root at start-up, and the
        sasldb, read by smtpd as postfix at each AUTH (so it lives in
        `store`). Returns the directory of smtpd.conf."""
        sasl_conf = self.conf / "sasl"
        sasl_conf.mkdir()
        sasldb = self.store / "sasl" / "sasldb2"
        sasldb.parent.mkdir()
        (sasl_conf / "smtpd.conf").write_text(
            "pwcheck_method: auxprop\n"
            "auxprop_plugin: sasldb\n"
            "mech_list: PLAIN LOGIN CRAM-MD5\n"
            f"sasldb_path: {sasldb}\n")
        for user, password in self.accounts.items():
            # -u: the realm Cyrus looks a plain login up under (module
            # docstring). -p: the password comes on stdin, with no newline.
            r = subprocess.run(["saslpasswd2", "-c", "-p", "-f", str(sasldb), "-u", self.hostname,
                                user], input=password, capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise AssertionError(f"saslpasswd2 {user} failed: {r.stdout}{r.stderr}")
        for f in (sasldb.parent, *sasldb.parent.iterdir()):
            os.chown(f, pf.pw_uid, pf.pw_gid)
        return sasl_conf

    def _policy_main_cf(self, pf):
        self._make_certificate()
        sasl_conf = self._make_sasl(pf)
        # default_transport = virtual: every accepted recipient, whatever its
        # domain, goes to the one Maildir (virtual_mailbox_maps = static).
        # local_header_rewrite_clients empty: no client is "local", so
        # cleanup neither rewrites nor adds headers (Message-ID, Date, From).
        return f"""\
virtual_mailbox_domains =
default_transport = virtual
local_header_rewrite_clients =
smtpd_tls_security_level = may
smtpd_tls_cert_file = {self.cert_path}
smtpd_tls_key_file = {self.key_path}
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {sasl_conf}
smtpd_sasl_local_domain =
smtpd_sasl_security_options = noanonymous
smtpd_sasl_authenticated_header = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =
"""

    def _master_cf(self):
        # tlsmgr seeds smtpd's TLS PRNG: without it smtpd logs "no entropy for
        # TLS key generation: disabling TLS support" and STARTTLS fails.
        return super()._master_cf() + \
            "tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"
