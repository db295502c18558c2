"""Privilege separation (issue 13 item 5): started as root with `user = "..."`,
`hikyaku serve` binds its listeners and reads its keys as root, then drops to
that user for good — and keeps serving.

* Every thread of the serving process (/proc/PID/task/*/status) has the
  user's real, effective, saved and file-system uid and gid, no root group and
  no capabilities; the data directory it created belongs to the user.
* Mail is still accepted over SMTP and delivered to the Maildir, and a POP3
  login works with a password set by `hikyaku user passwd` run as root (the
  operator's way): the CLI drops to the user too, so DATA_DIR/users is the
  user's, not root's.
* An unknown user is refused at start-up with the configuration position,
  and so is a start by neither root nor that user;
  a data directory that belongs to someone else is refused with the chown
  that fixes it; check-config reports the user.

These tests need root (CI runs them as root). They create the system user
`hikyaku-test` when it is missing (useradd --system, idempotent) and leave it
in place: removing it while another run uses it would race, and it owns
nothing outside the tests' temporary directories.
"""
import os
import poplib
import pwd
import re
import shutil
import smtplib
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import HIKYAKU_BIN, Hikyaku, asan_options, free_port, wait_for

TEST_USER = "hikyaku-test"
PASSWORD = "correct horse battery"

if os.geteuid() != 0:
    pytest.skip("test_privileges.py needs root (it starts hikyaku as root to drop to a system user); "
                "CI runs it as root", allow_module_level=True)


def ensure_user():
    """The unprivileged system user the tests drop to, created once."""
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    r = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", TEST_USER], capture_output=True, text=True, timeout=30)
    # Another run may have created it meanwhile (exit 9: name in use).
    assert r.returncode in (0, 9), r.stderr
    return pwd.getpwnam(TEST_USER)


@pytest.fixture(autouse=True)
def no_leak_check_after_the_drop(monkeypatch):
    """Under AddressSanitizer (the CI's sanitizer stage): LeakSanitizer's
    check at exit attaches to the process with ptrace, which a process that
    changed its user (no longer dumpable) refuses, so it would report a
    fatal error instead of leaks. Every other sanitizer check stays on; a
    plain build ignores the variable."""
    monkeypatch.setenv("ASAN_OPTIONS", asan_options("detect_leaks=0"))


@pytest.fixture
def account():
    return ensure_user()


@pytest.fixture
def shared_tmp():
    """A directory the dropped user can reach: pytest's tmp_path lives under
    /tmp/pytest-of-root, which is root's alone (mode 0700)."""
    base = Path(tempfile.mkdtemp(prefix="hk-priv-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def dropping_hikyaku(tmp_path, shared_tmp, account):
    """A Hikyaku with `user = "hikyaku-test"` (top-level, so written first)
    and its data directory, not yet existing, where that user can reach it."""
    from dns_server import DnsServer  # imports conftest: import late
    resolver = DnsServer().start()
    hk = Hikyaku(tmp_path, extra=resolver.toml(), allow_plaintext=True, data_dir=shared_tmp / "data")
    hk.config_path.write_text(f'user = "{TEST_USER}"\n' + hk.config_path.read_text())
    yield hk
    problems = hk.end_problems()
    resolver.stop()
    assert not problems, "hikyaku did not end cleanly:\n" + "\n".join(problems)


def ids(status_text, field):
    """The numbers of a /proc status line ("Uid:\t998\t998\t998\t998")."""
    m = re.search(rf"^{field}:\s*(.*)$", status_text, re.M)
    assert m, f"no {field} line"
    return [int(v, 16) if field.startswith("Cap") else int(v) for v in m.group(1).split()]


def thread_statuses(pid):
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[task.name] = (task / "status").read_text()
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return out


def test_serves_as_unprivileged_user(dropping_hikyaku, account):
    hk = dropping_hikyaku.start()
    # Ports listen only after the drop; "ready" is logged once accepting.
    wait_for(lambda: "hikyaku ready" in hk.log_text(), what="hikyaku ready")
    assert f"running as user {TEST_USER} (uid {account.pw_uid}, gid {account.pw_gid})" in hk.log_text()

    # Every thread: the user's ids, no root group, no capabilities.
    statuses = thread_statuses(hk.server_pid())
    assert len(statuses) > 1, "expected the thread pools to be running"
    for tid, status in statuses.items():
        assert ids(status, "Uid") == [account.pw_uid] * 4, f"thread {tid}: {status}"
        assert ids(status, "Gid") == [account.pw_gid] * 4, f"thread {tid}: {status}"
        assert 0 not in ids(status, "Groups"), f"thread {tid} keeps group root"
        for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            assert ids(status, cap) == [0], f"thread {tid}: {cap} not empty"
        assert ids(status, "NoNewPrivs") == [1], f"thread {tid}"

    # The data directory it created, and what is in it, is the user's.
    for path in (hk.data_dir, hk.data_dir / "spool", hk.data_dir / "mailboxes" / "alice", hk.data_dir / "tls",
                 hk.data_dir / "tls" / "key.pem"):
        assert path.stat().st_uid == account.pw_uid, path

    # The operator sets a password as root: the users file is the user's.
    hk.set_password("alice", PASSWORD)
    users = hk.data_dir / "users"
    assert users.stat().st_uid == account.pw_uid
    assert users.stat().st_mode & 0o777 == 0o600

    # SMTP in, Maildir delivery, POP3 login.
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=30) as s:
        s.sendmail("sender@example.org", ["alice@example.test"],
                   b"From: sender@example.org\r\nTo: alice@example.test\r\nSubject: privsep\r\n\r\nhello\r\n")
    delivered = wait_for(lambda: hk.messages("alice"), what="delivery to alice's Maildir")
    assert delivered[0].stat().st_uid == account.pw_uid
    pop = poplib.POP3("127.0.0.1", hk.pop3_port, timeout=30)
    try:
        pop.user("alice")
        pop.pass_(PASSWORD)
        assert pop.stat()[0] == 1
    finally:
        pop.quit()


def write_config(path, data_dir, user):
    path.write_text(f'hostname = "mx.example.test"\nuser = "{user}"\ndata_dir = "{data_dir}"\n'
                    f'[listen]\nsmtp = ["127.0.0.1:{free_port()}"]\n')
    return path


def test_unknown_user_is_refused_with_its_position(tmp_path):
    config = write_config(tmp_path / "hikyaku.toml", tmp_path / "data", "hikyaku-no-such-user")
    want = f"{config}:2:8: user 'hikyaku-no-such-user' does not exist"
    r = subprocess.run([HIKYAKU_BIN, "serve", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert want in r.stderr, r.stderr
    assert not (tmp_path / "data").exists()
    r = subprocess.run([HIKYAKU_BIN, "check-config", "--config", str(config)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert want in r.stderr, r.stderr


def test_data_dir_of_another_user_is_refused(tmp_path, shared_tmp, account):
    data = shared_tmp / "data"
    data.mkdir()  # root's
    config = write_config(tmp_path / "hikyaku.toml", data, TEST_USER)
    r = subprocess.run([HIKYAKU_BIN, "serve", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"chown -R {TEST_USER}: {data}" in r.stderr, r.stderr
    r = subprocess.run([HIKYAKU_BIN, "check-config", "--config", str(config)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert f"chown -R {TEST_USER}: {data}" in r.stderr, r.stderr
    # Once it is the user's, check-config names the user it will run as.
    os.chown(data, account.pw_uid, account.pw_gid)
    r = subprocess.run([HIKYAKU_BIN, "check-config", "--config", str(config)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert f"serve runs as user {TEST_USER} (uid {account.pw_uid}, gid {account.pw_gid}" in r.stdout


def test_cli_as_root_writes_as_the_user(tmp_path, shared_tmp, account):
    """`hikyaku user passwd` as root before the first start: data_dir is
    created for the user and the users file is the user's."""
    data = shared_tmp / "data"
    config = write_config(tmp_path / "hikyaku.toml", data, TEST_USER)
    config.write_text(config.read_text() + '[[mailbox]]\nname = "alice"\n')
    r = subprocess.run([HIKYAKU_BIN, "user", "passwd", "alice", "--config", str(config)], input=PASSWORD + "\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert data.stat().st_uid == account.pw_uid
    assert (data / "users").stat().st_uid == account.pw_uid
    r = subprocess.run([HIKYAKU_BIN, "user", "list", "--config", str(config)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "alice"


def test_started_as_another_user_is_refused(shared_tmp, account):
    """Neither root nor the configured user: a clear refusal, nothing bound
    or created (setpriv runs it as `nobody`)."""
    config = write_config(shared_tmp / "hikyaku.toml", shared_tmp / "data", TEST_USER)
    config.chmod(0o644)
    nobody = pwd.getpwnam("nobody")
    r = subprocess.run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
                        HIKYAKU_BIN, "serve", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert (f"{config}:2:8: user '{TEST_USER}' (uid {account.pw_uid}): hikyaku runs as uid {nobody.pw_uid}; "
            f"start it as root (it drops to {TEST_USER}) or as {TEST_USER}") in r.stderr, r.stderr
    assert not (shared_tmp / "data").exists()
