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
import ssl
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
    # A message is in new/ a moment before its name leaves tmp/ (the Maildir
    # convention: link, then unlink); the queue's line comes after both.
    wait_for(lambda: server.log_text().count("target=mailbox:alice, status=delivered") >= 3,
             what="the queue's 3 delivery lines")
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
           f"-e 'set folder={home / 'Mail'}' -e 'set sort=date-sent' -e 'set mark_old=no' "
           f"-e 'set tmpdir={home}'")  # the pager's copies: else /var/tmp, left there by kill-session
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


# Folders made over hikyaku's IMAP, read by Dovecot: "a/b" is .a.b
# (Maildir++), names in modified UTF-7, keywords as info letters named in
# each folder's dovecot-keywords, subscriptions in the root's "subscriptions".
# Dovecot gets the same "/" separator, so names compare as they are.
DOVECOT_SLASH_NAMESPACE = """
namespace inbox {
  inbox = yes
  separator = /
}
"""
IMAP_PASSWORD = "correct horse battery"
LIST_LINE = re.compile(rb'^\(([^)]*)\) (?:NIL|"(?:[^"\\]|\\.)*") (.*)$')
NOT_SELECTABLE = {"\\noselect", "\\nonexistent"}


def folder_message(tag):
    return (f"From: Sender <sender@example.org>\r\nTo: alice@example.test\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}-{uuid.uuid4().hex[:8]}@example.org>\r\n\r\nbody of {tag}\r\n").encode()


def quoted(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def listing(imap, command="list"):
    """{name: set of lower-cased attributes} of LIST (or LSUB) "" "*"."""
    typ, data = getattr(imap, command)('""', "*")
    assert typ == "OK", data
    out = {}
    for line in data:
        if line is None:  # no mailbox at all
            continue
        assert isinstance(line, bytes), f"unexpected literal in {command}: {data}"
        m = LIST_LINE.match(line)
        assert m, line
        name = m.group(2).decode()
        if name.startswith('"'):
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
        out[name] = {a.lower() for a in m.group(1).decode().split()}
    return out


def selectable(names):
    return {n for n, attrs in names.items() if not attrs & NOT_SELECTABLE}


def folder_contents(imap, folder):
    """{BODY[] bytes: FLAGS without \\Recent} of every message in `folder`."""
    typ, data = imap.select(quoted(folder), readonly=True)
    assert typ == "OK", (folder, data)
    count = int(data[0])
    if count == 0:
        return {}
    typ, data = imap.fetch("1:*", "(FLAGS)")
    assert typ == "OK", data
    flags = {}
    for line in data:
        m = re.match(rb"(\d+) \(.*FLAGS \(([^)]*)\)", line)
        assert m, line
        flags[int(m.group(1))] = frozenset(f for f in m.group(2).decode().split() if f != "\\Recent")
    typ, data = imap.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK", data
    bodies = {int(item[0].split()[0]): item[1] for item in data if isinstance(item, tuple)}
    assert sorted(flags) == sorted(bodies) == list(range(1, count + 1)), (folder, data)
    contents = {bodies[i]: flags[i] for i in bodies}
    assert len(contents) == count, f"{folder}: every message's bytes are distinct"
    return contents


def test_dovecot_sees_the_folders_flags_and_keywords_hikyaku_made(hikyaku, request):
    hikyaku.set_password("alice", IMAP_PASSWORD)
    ctx = ssl.create_default_context(cafile=str(hikyaku.cert_path))
    ctx.check_hostname = False  # 127.0.0.1; the chain is still verified
    imap = imaplib.IMAP4("127.0.0.1", hikyaku.imap_port, timeout=30)
    imap.starttls(ssl_context=ctx)
    imap.login("alice", IMAP_PASSWORD)
    # "Entw&APw-rfe" is "Entwürfe" in modified UTF-7.
    folders = ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash", "Projects/2026", "Entw&APw-rfe"]
    try:
        for name in ("Projects/2026", "Entw&APw-rfe"):
            typ, data = imap.create(quoted(name))
            assert typ == "OK", (name, data)
        for folder, flags, tag in [
            ("Projects/2026", r"(\Seen \Flagged $Forwarded)", "project"),
            ("Entw&APw-rfe", r"(\Draft)", "draft"),
            ("Sent", r"(\Seen)", "sent"),
            ("INBOX", r"(\Answered Work $Label1)", "copied"),
            ("INBOX", r"(\Seen $Forwarded)", "moved"),
            ("INBOX", None, "unread"),
        ]:
            typ, data = imap.append(quoted(folder), flags, None, folder_message(tag))
            assert typ == "OK", (folder, data)
        typ, data = imap.select("INBOX")
        assert typ == "OK" and int(data[0]) == 3, data
        # Keywords go with a message into folders whose dovecot-keywords
        # does not name them yet.
        typ, data = imap.copy("1", quoted("Projects/2026"))
        assert typ == "OK", data
        typ, data = imap._simple_command("MOVE", "2", "Archive")
        assert typ == "OK", data
        typ, data = imap.subscribe(quoted("Projects/2026"))
        assert typ == "OK", data

        ours_list = listing(imap)
        ours_lsub = listing(imap, "lsub")
        ours = {name: folder_contents(imap, name) for name in folders}
    finally:
        imap.logout()
    assert set(folders) <= selectable(ours_list), ours_list
    assert ours_list.get("Projects", set()) & NOT_SELECTABLE, ours_list
    assert "Projects/2026" in ours_lsub, ours_lsub
    assert {f: len(ours[f]) for f in folders} == {
        "INBOX": 2, "Archive": 1, "Drafts": 0, "Junk": 0, "Sent": 1, "Trash": 0, "Projects/2026": 2,
        "Entw&APw-rfe": 1}, ours

    with dovecot_on_copy(request, hikyaku.maildir("alice"), "alice", DOVECOT_SLASH_NAMESPACE) as (port, _, copy):
        dove = imaplib.IMAP4("127.0.0.1", port, timeout=30)
        dove.login("alice", "secret")
        try:
            theirs_list = listing(dove)
            theirs = {name: folder_contents(dove, name) for name in folders if name in theirs_list}
            theirs_lsub = listing(dove, "lsub")
        finally:
            dove.logout()
        dovecot_log = (copy.parents[2] / "dovecot.log").read_text(errors="replace")

    assert selectable(theirs_list) == selectable(ours_list), (theirs_list, ours_list)
    assert theirs_list.get("Projects", set()) & NOT_SELECTABLE, theirs_list
    for folder in folders:
        assert theirs[folder] == ours[folder], f"{folder}: Dovecot {theirs[folder]} != hikyaku {ours[folder]}"
    # Dovecot's Maildir++ subscriptions file names a folder as it is on disk
    # without the leading dot ("Projects.2026"); a name it cannot read is
    # dropped from the file with a warning.
    assert "Projects/2026" in theirs_lsub, \
        f"Dovecot does not see the subscription: LSUB {theirs_lsub}\n{dovecot_log}"
    problems = [line for line in dovecot_log.splitlines() if re.search(r": (Warning|Error|Panic|Fatal): ", line)]
    assert not problems, "\n".join(problems)
