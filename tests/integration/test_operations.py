"""Operating the server (README "Operating it"): signals and the admin
subcommands, against the real binary.

* SIGHUP (systemd's reload, certbot's deploy hook) re-reads the TLS
  certificate (here the self-signed one) and nothing else: the process lives
  on and serves SMTP and POP3. SNI and failed reloads: test_tls_sni.py.
* `hikyaku queue list|show|delete` on a message that stays queued (its
  forward gets 451 at every attempt and the next retry is an hour away):
  `show` prints the hidden forward address as <hidden> — in the target and in
  the far side's reply, which echoes it — unless --reveal; `delete` removes it.
* `hikyaku user list|del`: the listing follows passwords set and removed, and
  a removed password no longer logs in.
"""
import os
import poplib
import re
import signal
import smtplib
import ssl

from conftest import wait_for
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import farside  # noqa: F401  (pytest fixture)
from forward_client import FORWARD, RCPT, SENDER, message

PASSWORD = "correct horse battery"
HUP_LINE = "SIGHUP: TLS certificate reloaded: "


def pop3_login(hk, user="alice", password=PASSWORD):
    ctx = ssl.create_default_context(cafile=str(hk.cert_path))
    ctx.check_hostname = False
    pop = poplib.POP3_SSL("127.0.0.1", hk.pop3s_port, timeout=30, context=ctx)
    pop.user(user)
    pop.pass_(password)
    return pop


def test_sighup_reloads_the_certificate_and_keeps_serving(hikyaku):
    hikyaku.set_password("alice", PASSWORD)
    for n in (1, 2):  # the handler is re-armed: a second SIGHUP reloads too
        hikyaku.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: hikyaku.proc.poll() is not None or hikyaku.log_text().count(HUP_LINE) == n,
                 what=f"SIGHUP number {n} to be logged")
        assert hikyaku.proc.poll() is None, f"SIGHUP ended the server:\n{hikyaku.log_text()[-2000:]}"
    # Still serving: a whole SMTP transaction and a POP3 login.
    with smtplib.SMTP("127.0.0.1", hikyaku.smtp_port, timeout=30) as s:
        s.sendmail("sender@example.org", ["alice@example.test"],
                   b"From: sender@example.org\r\nSubject: after SIGHUP\r\n\r\nstill here\r\n")
    wait_for(lambda: len(hikyaku.messages("alice")) == 1, what="the message in alice's Maildir")
    pop = pop3_login(hikyaku)
    assert pop.stat()[0] == 1
    pop.quit()
    assert hikyaku.proc.poll() is None


def queued_forward_config(dns, fs):
    return f"""
[[mailbox]]
name = "ituki"

[[mailbox]]
name = "ituki-gm"

[[address]]
address = "{RCPT}"
deliver = ["mailbox:ituki", "forward:{FORWARD}"]

[[forward]]
to = "{FORWARD}"
hidden = true
fallback = ["mailbox:ituki-gm"]
defer_limit = "1d"
{dns.toml()}
{fs.toml('retry = ["1h"]')}
"""


def queue_id_of(reply_text):
    m = re.search(r"queued as (\S+)", reply_text)
    assert m, reply_text
    return m.group(1)


def test_queue_list_show_delete(make_hikyaku, dns_server, farside):
    # The far side defers the forward at RCPT and echoes the address, as
    # real servers often do: the reply is a place a hidden address can leak.
    farside.gmail.set_mode("tempfail_rcpt", reply=f"451 4.7.0 <{FORWARD}> try again later")
    hk = make_hikyaku(extra=queued_forward_config(dns_server, farside))
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=30) as s:
        s.ehlo()
        s.mail(SENDER)
        s.rcpt(RCPT)
        code, text = s.data(message("stays queued"))
        assert code == 250, text
    qid = queue_id_of(text.decode())

    def show(*extra):
        r = hk.run_cli("queue", "show", qid, *extra)
        assert r.returncode == 0, r.stderr
        return r.stdout

    # The PC copy is delivered and the forward was tried once and deferred.
    wait_for(lambda: "forward:<hidden>: pending, attempts 1" in show(), what="the deferred forward")
    listed = hk.run_cli("queue", "list")
    assert listed.returncode == 0, listed.stderr
    [line] = [l for l in listed.stdout.splitlines() if l.startswith(qid)]
    assert f"<{SENDER}>" in line and "1/2 pending" in line, line
    assert listed.stdout.rstrip().endswith("1 message in the queue"), listed.stdout

    hidden = show()
    assert f"id: {qid}\n" in hidden and f"sender: <{SENDER}>\n" in hidden, hidden
    assert f"recipient {RCPT} -> mailbox:ituki: delivered" in hidden, hidden
    assert f"recipient {RCPT} -> forward:<hidden>: pending, attempts 1" in hidden, hidden
    assert "last reply: 4.7.0 451 4.7.0 <<hidden>> try again later" in hidden, hidden
    assert FORWARD not in hidden.lower() and "ituki-ex" not in hidden, hidden

    revealed = show("--reveal")
    assert f"recipient {RCPT} -> forward:{FORWARD}: pending, attempts 1" in revealed, revealed
    assert f"451 4.7.0 <{FORWARD}> try again later" in revealed, revealed
    assert "<hidden>" not in revealed, revealed

    deleted = hk.run_cli("queue", "delete", qid)
    assert deleted.returncode == 0 and f"deleted {qid}" in deleted.stdout, deleted
    after = hk.run_cli("queue", "list")
    assert after.returncode == 0 and qid not in after.stdout, after.stdout
    assert after.stdout.rstrip().endswith("0 messages in the queue"), after.stdout
    gone = hk.run_cli("queue", "show", qid)
    assert gone.returncode == 1 and gone.stdout == "", gone
    assert hk.run_cli("queue", "delete", qid).returncode == 1

    # The running server still had it waiting: its next attempt (made due
    # now) forgets it. Nothing reaches the far side, which now accepts; no
    # DSN, no error (it used to be retried, with errors, until it expired).
    farside.gmail.set_mode("accept")
    connections = farside.gmail.connections
    flushed = hk.run_cli("queue", "flush", qid)
    assert flushed.returncode == 0, flushed.stderr
    wait_for(lambda: f"{qid}: no longer in the queue (deleted): forgotten" in hk.log_text(),
             what="the running server to forget the deleted message")
    again = hk.run_cli("queue", "flush", qid)
    assert (again.returncode, again.stdout) == (0, f"0 waiting deliveries made due (message {qid})\n"), again
    hk.stop()
    assert farside.gmail.connections == connections and farside.gmail.received() == []
    assert "DSN" not in hk.log_text() and "status=failed" not in hk.log_text()


def test_user_list_and_del(hikyaku):
    listed = hikyaku.run_cli("user", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["alice (no password)", "bob (no password)"], listed.stdout
    hikyaku.set_password("alice", PASSWORD)
    assert hikyaku.run_cli("user", "list").stdout.splitlines() == ["alice", "bob (no password)"]
    pop3_login(hikyaku).quit()

    removed = hikyaku.run_cli("user", "del", "alice")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == "password removed for alice (the mailbox stays in the configuration)\n"
    assert hikyaku.run_cli("user", "list").stdout.splitlines() == ["alice (no password)", "bob (no password)"]
    try:
        pop3_login(hikyaku)
        raise AssertionError("a removed password still logs in")
    except poplib.error_proto as e:
        assert e.args[0].startswith(b"-ERR [AUTH]"), e.args
    # Removing it again, or a password nobody set, is an error.
    again = hikyaku.run_cli("user", "del", "alice")
    assert again.returncode == 1 and "no such user: alice" in again.stderr, again
    unknown = hikyaku.run_cli("user", "passwd", "nobody", input="x\n")
    assert unknown.returncode == 1 and "no [[mailbox]] named 'nobody'" in unknown.stderr, unknown
    # A password no client could send (SASL PLAIN, POP3 PASS: 255 octets).
    long = hikyaku.run_cli("user", "passwd", "alice", input="p" * 256 + "\n")
    assert long.returncode == 1 and "password of 256 octets: at most 255" in long.stderr, long
    assert hikyaku.run_cli("user", "passwd", "alice", input="p" * 255 + "\n").returncode == 0


def test_every_pop3_and_imap_connection_is_logged_even_without_a_login(hikyaku):
    """Issue 16 item 4: one line at connect and one at the end, for clients
    that never log in too (probes, password guessers) — as SMTP has."""
    import imaplib
    pop = poplib.POP3("127.0.0.1", hikyaku.pop3_port, timeout=30)
    pop_port = pop.sock.getsockname()[1]
    pop.quit()
    imap = imaplib.IMAP4("127.0.0.1", hikyaku.imap_port, timeout=30)
    imap_port = imap.sock.getsockname()[1]
    imap.logout()
    hikyaku.set_password("alice", PASSWORD)
    pop = pop3_login(hikyaku)
    logged_in_port = pop.sock.getsockname()[1]
    pop.quit()
    for port, proto, user, tls in ((pop_port, "pop3", "-", "no"), (imap_port, "imap", "-", "no"),
                                   (logged_in_port, "pop3s", "alice", "yes")):
        wait_for(lambda: f"127.0.0.1:{port} disconnect from [127.0.0.1] user={user} tls={tls}"
                 in hikyaku.log_text(), what=f"the {proto} connection's last line")
        assert f"127.0.0.1:{port} connect from [127.0.0.1]:{port} ({proto})" in hikyaku.log_text()


def test_json_log_lines(hikyaku):
    """Issue 16 item 4: log_format = "json" makes every line one JSON object
    (time, level, logger, msg) that a log shipper can parse."""
    import json
    hikyaku.stop()
    text = hikyaku.config_path.read_text()
    hikyaku.config_path.write_text(text.replace('log_level = "debug"\n', 'log_level = "debug"\nlog_format = "json"\n', 1))
    start = len(hikyaku.log_text())
    hikyaku.start()
    pop = poplib.POP3("127.0.0.1", hikyaku.pop3_port, timeout=30)
    pop.quit()
    wait_for(lambda: '"msg":"127.0.0.1:' in hikyaku.log_text()[start:] and "disconnect from" in hikyaku.log_text()[start:],
             what="the POP3 connection's JSON lines")
    lines = [l for l in hikyaku.log_text()[start:].splitlines() if l.strip()]
    assert lines
    for line in lines:
        obj = json.loads(line)
        assert set(obj) == {"time", "level", "logger", "msg"}, line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"]), line
    assert any(o["logger"] == "pop3d" and "connect from [127.0.0.1]" in o["msg"] for o in map(json.loads, lines))


def test_check_config_reads_the_srs_secrets_as_serve_does(hikyaku, tmp_path):
    """An empty SRS secret file used to pass check-config and then stop serve
    with no position; a file every user may read (anyone holding the secret
    can make SRS addresses the server reverses and relays) passed silently."""
    secret = tmp_path / "srs.secret"
    secret.write_text("\n")
    base = hikyaku.config_path.read_text()
    hikyaku.config_path.write_text(base + f'\n[srs]\ndomain = "example.test"\nsecret_file = "{secret}"\n')
    r = hikyaku.run_cli("check-config")
    assert r.returncode == 1
    assert re.search(r"hikyaku\.toml:\d+:\d+: srs\.secret_file: the SRS secret file \S+ holds no secret", r.stderr), \
        r.stderr
    secret.write_text("a-long-random-secret\n")
    os.chmod(secret, 0o644)
    r = hikyaku.run_cli("check-config")
    assert r.returncode == 0, r.stderr
    assert "warning: the SRS secret file" in r.stderr and "readable by every user: chmod o-r" in r.stderr
    os.chmod(secret, 0o600)
    r = hikyaku.run_cli("check-config")
    assert r.returncode == 0 and "SRS secret" not in r.stderr, r.stderr
