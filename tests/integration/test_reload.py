"""`hikyaku reload` and SIGHUP (issue 14 item 6): the running server re-reads
its configuration file and the per-user forwards; a configuration with errors
is refused and the running one kept; connections in progress are not dropped
(an IMAP client in IDLE stays, and is told of the mail the new rules deliver).

The far side is an aiosmtpd "Gmail" on 127.0.0.2 (farside.py), reached
through a [[route]] so that no MX record is needed; the resolver is the
private dnsmasq every test server gets (conftest.make_hikyaku).

Run: HIKYAKU_BIN=build/src/app/hikyaku /usr/bin/python3 -m pytest -q tests/integration/test_reload.py
"""
import email
import email.policy
import os
import signal
import smtplib
import subprocess
import threading

import pytest

from conftest import HIKYAKU_BIN, Hikyaku, wait_for
from farside import FarSide, free_shared_port
from test_imap import Raw

PASSWORD = "alice's imap password"
# fan@ goes to a hidden forward (fallback: alice's mailbox) and to alice's mailbox.
FAN = """
[[address]]
address = "fan@example.test"
deliver = ["forward:fan@gmail.test", "mailbox:alice"]

[[forward]]
to = "fan@gmail.test"
fallback = ["mailbox:alice"]
"""


def message(subject, to="alice@example.test"):
    return (f"From: <someone@sender.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            "Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@sender.test>\r\n\r\n{subject}\r\n").encode()


def send(server, rcpt, subject):
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
        s.sendmail("someone@sender.test", [rcpt], message(subject, rcpt))


def rcpt_reply(server, rcpt):
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
        s.ehlo("mx.sender.test")
        s.mail("someone@sender.test")
        return s.rcpt(rcpt)


@pytest.fixture
def gmail():
    port = free_shared_port(["127.0.0.2"])
    side = FarSide("127.0.0.2", port, name="mx.gmail.test").start()
    yield side
    side.stop()


def route_to(side):
    return f"""
[delivery]
retry = ["1s"]

[[route]]
match = "@gmail.test"
via = "[127.0.0.2]:{side.port}"
"""


def rewrite(server, old, new):
    text = server.config_path.read_text()
    assert old in text, old
    server.config_path.write_text(text.replace(old, new))


def idle(server, password=PASSWORD):
    """An IMAP session of alice's (over IMAPS), selected and in IDLE."""
    raw = Raw(server)
    raw.send(f'a1 LOGIN alice "{password}"\r\n'.encode())
    assert raw.until_tagged(b"a1")[-1].startswith(b"a1 OK")
    raw.send(b"a2 SELECT INBOX\r\n")
    assert b"* 0 EXISTS" in raw.until_tagged(b"a2")
    raw.send(b"a3 IDLE\r\n")
    assert raw.line() == b"+ idling"
    return raw


def test_reload_applies_new_rules_without_dropping_an_imap_session_in_idle(make_hikyaku, gmail):
    hk = make_hikyaku(extra=route_to(gmail))
    hk.set_password("alice", PASSWORD)
    raw = idle(hk)
    code, _ = rcpt_reply(hk, "carol@example.test")
    assert code == 550  # not an address yet

    # New rules: alice's mail also goes to her Gmail (a hidden forward that
    # falls back to her mailbox), and a new mailbox with its address.
    rewrite(hk, 'address = "alice@example.test"\ndeliver = ["mailbox:alice"]',
            'address = "alice@example.test"\ndeliver = ["forward:alice.private@gmail.test", "mailbox:alice"]')
    with open(hk.config_path, "a") as f:
        f.write('\n[[forward]]\nto = "alice.private@gmail.test"\nfallback = ["mailbox:alice"]\n'
                '\n[[mailbox]]\nname = "carol"\n\n[[address]]\naddress = "carol@example.test"\n'
                'deliver = ["mailbox:carol"]\n')
    r = hk.run_cli("reload")
    assert r.returncode == 0, r.stderr
    assert "reload 1: loaded" in r.stdout and "generation 2" in r.stdout, r.stdout

    send(hk, "alice@example.test", "after reload")
    got = gmail.wait_messages(1)
    assert got[0].rcpt_tos == ["alice.private@gmail.test"]
    msg = email.message_from_bytes(got[0].data, policy=email.policy.compat32)
    assert msg["Subject"] == "after reload"
    # The session in IDLE was not dropped: it hears of the local copy.
    assert raw.line(timeout=20) == b"* 1 EXISTS"
    raw.send(b"DONE\r\n")
    assert raw.until_tagged(b"a3")[-1] == b"a3 OK IDLE terminated"
    raw.send(b"a4 LOGOUT\r\n")
    raw.until_tagged(b"a4")
    raw.close()

    # The new mailbox has an address and a Maildir now; no restart happened.
    send(hk, "carol@example.test", "for carol")
    wait_for(lambda: len(hk.messages("carol")) == 1, what="carol's message")
    assert "reload: loaded" in hk.log_text() and "kept as started: hostname" in hk.log_text()


def test_a_configuration_with_errors_is_refused_and_the_running_one_stays(make_hikyaku, gmail):
    hk = make_hikyaku(extra=route_to(gmail))
    hk.expect_log(r"reload refused")
    good = hk.config_path.read_text()
    rewrite(hk, 'deliver = ["mailbox:bob"]', 'deliver = ["mailbox:nobody"]')
    line = next(n for n, l in enumerate(hk.config_path.read_text().splitlines(), 1) if "mailbox:nobody" in l)

    # The command checks first: the server is not even asked.
    r = hk.run_cli("reload")
    assert r.returncode == 1
    assert f"{hk.config_path}:{line}:" in r.stderr, r.stderr
    assert not (hk.data_dir / "state" / "reload").exists()

    # SIGHUP straight to the server (systemd's ExecReload): refused, with the
    # file and line in the log and in the answer `hikyaku reload` reads.
    os.kill(hk.proc.pid, signal.SIGHUP)
    status = hk.data_dir / "state" / "reload"
    wait_for(status.exists, what="the reload answer")
    answer = status.read_text()
    assert answer.startswith("reload 1: refused: ") and f"{hk.config_path}:{line}:" in answer, answer
    assert f"reload refused: {hk.config_path}:{line}:" in hk.log_text()

    # The running configuration stays: bob still gets his mail.
    send(hk, "bob@example.test", "still bob's")
    wait_for(lambda: len(hk.messages("bob")) == 1, what="bob's message")

    # A change the server cannot apply without a restart: a new signing key.
    hk.config_path.write_text(good + '\n[[domain]]\nname = "signed.test"\ndkim_selector = "s1"\ndkim_key = "signed.pem"\n')
    (hk.config_path.parent / "signed.pem").write_text("not used\n")
    r = hk.run_cli("reload")
    assert r.returncode == 1
    assert "reload 2: refused: the DKIM signing keys changed (signed.test)" in r.stderr, r.stderr

    # Fixed: loaded.
    hk.config_path.write_text(good)
    r = hk.run_cli("reload")
    assert r.returncode == 0 and "reload 3: loaded" in r.stdout, (r.stdout, r.stderr)


def test_reloads_while_mail_flows_lose_nothing(make_hikyaku, gmail):
    """Each transaction, decision and attempt keeps the rules it took while
    reloads replace them underneath (this file also runs under TSan)."""
    hk = make_hikyaku(extra=route_to(gmail) + FAN)
    answers = []
    stop = threading.Event()

    def reload_repeatedly():
        while not stop.is_set():
            r = hk.run_cli("reload")
            answers.append((r.returncode, r.stdout + r.stderr))

    reloader = threading.Thread(target=reload_repeatedly)
    reloader.start()
    try:
        for i in range(40):
            send(hk, "fan@example.test", f"message {i}")
    finally:
        stop.set()
        reloader.join()
    assert answers and all(code == 0 for code, _ in answers), answers
    got = gmail.wait_messages(40)
    assert sorted(email.message_from_bytes(m.data)["Subject"] for m in got) == sorted(f"message {i}" for i in range(40))
    wait_for(lambda: len(hk.messages("alice")) == 40, what="40 local copies")


def test_queued_messages_keep_their_plans_across_a_reload(make_hikyaku, gmail):
    hk = make_hikyaku(extra=route_to(gmail) + FAN)
    gmail.set_mode("tempfail_data")
    send(hk, "fan@example.test", "queued before")
    gmail.wait_attempts(1)  # refused for now: the message waits in the queue

    # The address now forwards elsewhere, and the old forward's table is gone.
    rewrite(hk, 'deliver = ["forward:fan@gmail.test", "mailbox:alice"]\n\n[[forward]]\nto = "fan@gmail.test"',
            'deliver = ["forward:other@gmail.test", "mailbox:alice"]\n\n[[forward]]\nto = "other@gmail.test"')
    r = hk.run_cli("reload")
    assert r.returncode == 0, r.stderr
    gmail.set_mode("accept")
    send(hk, "fan@example.test", "sent after")
    got = {email.message_from_bytes(m.data)["Subject"]: m for m in gmail.wait_messages(2)}
    # The queued copy keeps its plan; only new mail follows the new rules.
    assert got["queued before"].rcpt_tos == ["fan@gmail.test"]
    assert got["sent after"].rcpt_tos == ["other@gmail.test"]
    # The dropped forward is still a hidden one: never in the log.
    wait_for(lambda: len(hk.messages("alice")) == 2, what="both local copies")
    assert "fan@gmail.test" not in hk.log_text()


def test_reload_without_a_running_server_says_so(make_hikyaku, gmail):
    hk = make_hikyaku(extra=route_to(gmail))
    hk.stop()
    r = hk.run_cli("reload")
    assert r.returncode == 1
    assert "no running server" in r.stderr, r.stderr


def test_a_second_server_on_the_same_data_directory_is_refused(make_hikyaku, gmail, tmp_path):
    """Two servers on one spool would each deliver every queued message (and
    delete each other's staged files at start): the second is refused before
    it touches anything, naming the first."""
    hk = make_hikyaku(extra=route_to(gmail))
    (tmp_path / "second").mkdir()
    second = Hikyaku(tmp_path / "second", data_dir=hk.data_dir, extra=route_to(gmail))
    proc = subprocess.Popen([HIKYAKU_BIN, "serve", "--config", str(second.config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("a second server started on the same data directory")
    assert proc.returncode == 1
    assert f"another hikyaku (pid {hk.server_pid()}) serves this data directory" in err, err
    assert hk.run_cli("reload").returncode == 0  # the first one is still the one found


def test_reload_never_signals_a_pid_that_a_crash_left_behind(make_hikyaku, gmail):
    """After a crash the pid file stays, and its pid may be anyone's by now:
    `reload` (and `queue flush`) trust it only while a server holds its lock."""
    hk = make_hikyaku(extra=route_to(gmail))
    hk.kill()
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (hk.data_dir / "hikyaku.pid").write_text(f"{bystander.pid}\n")
        r = hk.run_cli("reload")
        assert r.returncode == 1
        assert "no running server" in r.stderr and "is not locked" in r.stderr, r.stderr
        assert bystander.poll() is None, "reload signalled an unrelated process"
    finally:
        bystander.kill()
        bystander.wait()
    hk.start()  # and the next server takes the file over
    assert hk.run_cli("reload").returncode == 0
