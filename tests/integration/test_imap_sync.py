"""Two-way folder synchronisation with real IMAP sync clients (issue 15):
mbsync (isync) and offlineimap3 mirror every folder of a hikyaku mailbox to a
local Maildir, both ways, twice: the server's folders, messages (byte for
byte) and flags reach the local side; a folder, a message, a flag and a
deletion made locally reach the server; a second round carries changes made on
each side since the first, and a last run with nothing new changes nothing.

Peers: mbsync 1.4 and offlineimap3 from Debian (scripts/install-deps.sh), over
IMAPS on 127.0.0.1 with the server's self-signed certificate pinned
(mbsync: CertificateFile, whose certificates are trusted as they are;
offlineimap3: cert_fingerprint). The server side is checked with imaplib.
"""
import hashlib
import re
import ssl
import subprocess
from pathlib import Path

from conftest import require_programs
from test_imap import PASSWORD, login_ssl, make_message

FOLDERS = ["INBOX", "Archive", "Drafts", "Junk", "Projects/2026", "Sent", "Trash"]


def without_tuid(message: bytes) -> bytes:
    """The message without the X-TUID header mbsync writes into every message
    it copies (to find it again on a side that cannot report its UID); the
    rest must be byte-exact."""
    return re.sub(rb"(?m)^X-TUID: [^\r\n]*\r?\n", b"", message, count=1)


def server_state(hikyaku):
    """{folder: {message body: set of flags}} of alice's mailbox, by imaplib."""
    imap = login_ssl(hikyaku)
    typ, data = imap.list()
    assert typ == "OK", data
    names = [re.match(rb'\([^)]*\) "/" "?([^"]*)"?$', line).group(1).decode() for line in data
             if b"\\Noselect" not in line]  # a parent that is no folder itself
    state = {}
    for name in names:
        typ, data = imap.select(f'"{name}"', readonly=True)
        assert typ == "OK", (name, data)
        messages = {}
        if data != [b"0"]:
            typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[])")
            assert typ == "OK", data
            for item in data:
                if not isinstance(item, tuple):
                    continue
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).split()
                messages[without_tuid(item[1])] = {f.decode() for f in flags if f != b"\\Recent"}
        state[name] = messages
        imap.close()
    imap.logout()
    return state


def seed_server(hikyaku):
    """INBOX with two messages (one \\Seen), Projects/2026 with one, Sent with one."""
    imap = login_ssl(hikyaku)
    assert imap.append("INBOX", None, None, make_message("sync-inbox-1"))[0] == "OK"
    assert imap.append("INBOX", "(\\Seen)", None, make_message("sync-inbox-2"))[0] == "OK"
    assert imap.create("Projects/2026")[0] == "OK"
    assert imap.append("Projects/2026", "(\\Flagged)", None, make_message("sync-project"))[0] == "OK"
    assert imap.append("Sent", "(\\Seen)", None, make_message("sync-sent"))[0] == "OK"
    imap.logout()


def local_messages(folder: Path):
    """{body: set of IMAP flags} of a local Maildir folder (info ":2,FLAGS")."""
    letters = {"S": "\\Seen", "F": "\\Flagged", "R": "\\Answered", "D": "\\Draft", "T": "\\Deleted"}
    out = {}
    for sub in ("new", "cur"):
        for f in (folder / sub).iterdir():
            info = f.name.split(":2,", 1)[1] if ":2," in f.name else ""
            out[without_tuid(f.read_bytes()).replace(b"\r\n", b"\n")] = {letters[c] for c in info if c in letters}
    return out


def lf(state):
    """The server state with LF line ends, as a local Maildir holds mail."""
    return {k: {body.replace(b"\r\n", b"\n"): flags for body, flags in v.items()} for k, v in state.items()}


def add_local_message(folder: Path, tag: str, flags=""):
    (folder / "cur").mkdir(parents=True, exist_ok=True)
    for sub in ("new", "tmp"):
        (folder / sub).mkdir(exist_ok=True)
    name = f"1700000000.{tag}.local:2,{flags}"
    (folder / "cur" / name).write_bytes(make_message(tag).replace(b"\r\n", b"\n"))


def local_file(folder: Path, tag: str) -> Path:
    """The file of the local message make_message(tag) in new/ or cur/."""
    for f in [*(folder / "new").iterdir(), *(folder / "cur").iterdir()]:
        if f"imap test {tag}".encode() in f.read_bytes():
            return f
    raise AssertionError(f"no local message {tag} in {folder}")


def delete_local_message(folder: Path, tag: str):
    """What a mail reader does on expunge: the file goes."""
    local_file(folder, tag).unlink()


def set_local_flags(folder: Path, tag: str, flags: str):
    """What a mail reader does: the message goes to cur/ with the new flags."""
    f = local_file(folder, tag)
    f.rename(folder / "cur" / (f.name.split(":2,")[0] + ":2," + flags))


def run(argv, cwd):
    try:
        result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{argv[0]} did not finish in {e.timeout} s:\n{e.stdout}\n{e.stderr}") from None
    assert result.returncode == 0, f"{argv[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def check_round_trip(hikyaku, sync, local_folder, new_folder):
    """The two rounds every client goes through; `sync()` runs the client,
    `local_folder(name)` is the local Maildir of an IMAP folder, `new_folder`
    the folder made locally."""
    seed_server(hikyaku)

    # Round 1, server → local: every folder, every message byte-exact, flags.
    sync()
    server = server_state(hikyaku)
    assert sorted(server) == sorted(FOLDERS)
    for name in FOLDERS:
        assert local_messages(local_folder(name)) == lf(server)[name], name
    assert server["INBOX"][make_message("sync-inbox-2")] == {"\\Seen"}

    # Round 1, local → server: a new folder with a message, a new message in
    # a folder, a flag set, a message deleted.
    add_local_message(local_folder(new_folder), "sync-local-new", "S")
    add_local_message(local_folder("Projects/2026"), "sync-local-project")
    set_local_flags(local_folder("INBOX"), "sync-inbox-1", "FS")
    delete_local_message(local_folder("Sent"), "sync-sent")
    sync()
    server = server_state(hikyaku)
    assert server[new_folder] == {make_message("sync-local-new"): {"\\Seen"}}
    assert server["Projects/2026"] == {make_message("sync-project"): {"\\Flagged"}, make_message("sync-local-project"): set()}
    assert server["INBOX"][make_message("sync-inbox-1")] == {"\\Seen", "\\Flagged"}
    assert server["Sent"] == {}

    # Round 2, changes on both sides since round 1.
    imap = login_ssl(hikyaku)
    assert imap.append("Drafts", "(\\Draft)", None, make_message("sync-server-draft"))[0] == "OK"
    imap.select("INBOX")
    typ, data = imap.search(None, "UNSEEN")
    assert typ == "OK" and data == [b""], data  # both INBOX messages are \Seen now
    typ, data = imap.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    uid2 = next(re.search(rb"UID (\d+)", m[0]).group(1) for m in data
                if isinstance(m, tuple) and b"sync-inbox-2" in m[1])
    assert imap.uid("STORE", uid2, "+FLAGS", "(\\Answered)")[0] == "OK"
    imap.logout()
    add_local_message(local_folder("Archive"), "sync-local-archive", "S")
    sync()
    server = server_state(hikyaku)
    assert server["Archive"] == {make_message("sync-local-archive"): {"\\Seen"}}
    assert server["INBOX"][make_message("sync-inbox-2")] == {"\\Seen", "\\Answered"}
    for name in server:
        assert local_messages(local_folder(name)) == lf(server)[name], name

    # Nothing new: a last run changes nothing on either side.
    sync()
    assert server_state(hikyaku) == server
    for name in server:
        assert local_messages(local_folder(name)) == lf(server)[name], name


def test_mbsync_syncs_every_folder_both_ways_twice(hikyaku, tmp_path):
    require_programs("mbsync")
    hikyaku.set_password("alice", PASSWORD)
    local = tmp_path / "local"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount hikyaku
Host 127.0.0.1
Port {hikyaku.imaps_port}
User alice
Pass "{PASSWORD}"
SSLType IMAPS
SystemCertificates no
CertificateFile {hikyaku.cert_path}

IMAPStore remote
Account hikyaku

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel hikyaku
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")

    def sync():
        run(["mbsync", "-c", str(rc), "-a"], tmp_path)

    check_round_trip(hikyaku, sync, lambda name: local / name, "Local/New")


def test_offlineimap3_syncs_every_folder_both_ways_twice(hikyaku, tmp_path):
    require_programs("offlineimap")
    hikyaku.set_password("alice", PASSWORD)
    local = tmp_path / "local"
    local.mkdir()
    der = ssl.PEM_cert_to_DER_cert(hikyaku.cert_path.read_text())
    rc = tmp_path / "offlineimaprc"
    rc.write_text(f"""[general]
accounts = hikyaku
metadata = {tmp_path}/offlineimap-state

[Account hikyaku]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}
sep = /

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {hikyaku.imaps_port}
remoteuser = alice
remotepass = {PASSWORD}
ssl = yes
cert_fingerprint = {hashlib.sha512(der).hexdigest()}
createfolders = True
""")

    def sync():
        run(["offlineimap", "-c", str(rc), "-o", "-u", "basic"], tmp_path)

    # Not a nested new folder: offlineimap's Maildir side would take the
    # parent directory ("Local") for a folder of its own and fail on it.
    check_round_trip(hikyaku, sync, lambda name: local / name, "LocalNew")
