"""Real Maildir readers see what hikyaku delivered, unchanged.

Mail goes in through hikyaku's SMTP listener; then
* mutt (under tmux, the screen read with capture-pane) lists and opens it;
* Dovecot (PEERS.md "Dovecot as a reference reader") reads a byte-for-byte
  copy of the Maildir over IMAP and POP3 and must report the same sizes as
  our file names' W= field (the CRLF size our POP3 server announces).

Needs: mutt, tmux, dovecot-imapd, dovecot-pop3d (skipped when absent, failed in CI).
"""
import contextlib
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import subprocess
import tempfile
import uuid
from email import policy
from email.message import EmailMessage
from pathlib import Path

from conftest import free_port, maildir_messages, not_available, port_open, require_programs, wait_for


def send(server, subject, body):
    msg = EmailMessage()
    msg["From"] = "sender@example.org"
    msg["To"] = "alice@example.test"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.org>"
    msg.set_content(body)
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as s:
        s.sendmail("sender@example.org", ["alice@example.test"], msg.as_bytes(policy=policy.SMTP))
    return msg["Message-ID"]


def deliver_three(server):
    subjects = [f"reader test {i} {uuid.uuid4().hex[:6]}" for i in range(3)]
    for i, subject in enumerate(subjects):
        send(server, subject, f"body line {i}\nsecond line\n")
    maildir = server.maildir("alice")
    wait_for(lambda: len(maildir_messages(maildir)) >= 3, what="3 messages in alice's Maildir")
    return maildir, subjects


def test_files_follow_maildir_convention(hikyaku):
    maildir, _ = deliver_three(hikyaku)
    assert not any((maildir / "tmp").iterdir()), "tmp/ must be empty after delivery"
    for path in maildir_messages(maildir):
        data = path.read_bytes()
        assert b"\r\n" not in data, "Maildir files use LF line endings"
        m = re.match(r"^\d+\.M\d+P\d+Q\d+\.[^/:,]+,S=(\d+),W=(\d+)$", path.name)
        assert m, f"unexpected name {path.name}"
        assert int(m.group(1)) == len(data)
        assert int(m.group(2)) == len(data) + data.count(b"\n"), "W= is the CRLF size"
        assert data.startswith(b"Return-Path: <sender@example.org>\n")


def test_mutt_reads_maildir(hikyaku, tmp_path):
    require_programs("mutt", "tmux")
    maildir, subjects = deliver_three(hikyaku)
    session = f"hkmutt{os.getpid()}"
    home = tmp_path / "mutt-home"
    (home / "Mail").mkdir(parents=True)  # else mutt asks whether to create ~/Mail
    env = dict(os.environ, TERM="xterm", HOME=str(home))
    cmd = (f"mutt -n -F /dev/null -R -f {maildir} -e 'set mbox_type=Maildir' "
           f"-e 'set folder={home / 'Mail'}' -e 'set sort=date-sent' -e 'set mark_old=no'")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50", cmd],
                   check=True, env=env)

    def screen():
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                              capture_output=True, text=True).stdout

    try:
        try:
            index = wait_for(lambda: (lambda s: s if all(x in s for x in subjects) else None)(screen()),
                             what="mutt's index to list every subject")
        except AssertionError:
            raise AssertionError(f"mutt's screen:\n{screen()}")
        assert index.count(" N ") >= 3, f"messages in new/ show as New:\n{index}"
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        # The messages carry no Date: field, so which one sorts first is not
        # fixed; whichever mutt opens, its body and subject must match.
        try:
            pager = wait_for(lambda: (lambda s: s if "body line " in s else None)(screen()),
                             what="mutt's pager to show a body")
        except AssertionError:
            raise AssertionError(f"mutt's screen:\n{screen()}")
        [shown] = [i for i in range(3) if f"body line {i}" in pager]
        assert "second line" in pager
        assert subjects[shown] in pager
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q", "q"], check=False)
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, capture_output=True)


DOVECOT_CONF = """\
base_dir = {t}/run
state_dir = {t}/state
log_path = {t}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = nobody
default_login_user = nobody
default_internal_group = nogroup
mail_uid = nobody
mail_gid = nogroup
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {t}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={t}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


@contextlib.contextmanager
def dovecot_on_copy(request, maildir, user, extra_conf=""):
    """Dovecot serving a byte-for-byte copy of `maildir` as `user`'s Maildir
    (password "secret"); yields (imap_port, pop3_port, the copy). The copy is
    owned by the user Dovecot runs as, in a directory that user can traverse
    (pytest's tmp_path is 0700 root). Stopped and removed afterwards."""
    require_programs("dovecot")
    if os.geteuid() != 0:
        not_available("needs root to run Dovecot as nobody")
    t = Path(tempfile.mkdtemp(prefix="hikyaku-dovecot-"))
    t.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(t, ignore_errors=True))
    home = t / "home" / user
    home.mkdir(parents=True)
    shutil.copytree(maildir, home / "Maildir")
    subprocess.run(["chown", "-R", "nobody:nogroup", str(t / "home")], check=True)
    (t / "passwd").write_text(f"{user}:{{PLAIN}}secret\n")
    (t / "passwd").chmod(0o644)
    imap_port, pop3_port = free_port(), free_port()
    conf = t / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(t=t, imap=imap_port, pop3=pop3_port) + extra_conf)
    proc = subprocess.Popen(["dovecot", "-F", "-c", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or (port_open(imap_port) and port_open(pop3_port)),
                 what="dovecot to listen")
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
        yield imap_port, pop3_port, home / "Maildir"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_dovecot_reads_maildir(hikyaku, request):
    maildir, subjects = deliver_three(hikyaku)
    ours = {p.name.split(":")[0]: p for p in maildir_messages(maildir)}
    with dovecot_on_copy(request, maildir, "alice") as (imap_port, pop3_port, _):
        imap = imaplib.IMAP4("127.0.0.1", imap_port)
        imap.login("alice", "secret")
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) == 3
        typ, data = imap.fetch("1:*", "(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        seen = {}
        for item in data:
            if isinstance(item, tuple):
                size = int(re.search(rb"RFC822\.SIZE (\d+)", item[0]).group(1))
                subject = item[1].decode().split(":", 1)[1].strip()
                seen[subject] = size
        assert set(seen) == set(subjects)
        our_sizes = sorted(int(re.search(r",W=(\d+)", n).group(1)) for n in ours)
        assert sorted(seen.values()) == our_sizes, "Dovecot's RFC822.SIZE equals our W= (CRLF) size"
        imap.logout()

        pop = poplib.POP3("127.0.0.1", pop3_port, timeout=30)
        pop.user("alice")
        pop.pass_("secret")
        _, listing, _ = pop.list()
        assert sorted(int(x.split()[1]) for x in listing) == our_sizes
        _, lines, octets = pop.retr(1)
        assert octets in our_sizes
        assert any(b"body line" in line for line in lines)
        pop.quit()
