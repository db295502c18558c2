"""Scanning before forwarding (issue 17 item 1): [scan] with the real
daemons from Debian, private instances on loopback started by this module.

- clamd (clamav-daemon): Foreground, its LocalSocket in a temporary
  directory, a one-line .ndb signature database made here (nothing is
  downloaded): Hikyaku.Test.Malware matches the text MALWARE below.
- rspamd: one "normal" worker on a free loopback port, a minimal
  configuration (no Redis, no DNS: its resolver points at a closed port, a
  three-line TLD list so that it starts in a second) and three Lua rules
  that score marker texts: REJECT (20: "reject" at 15), SPAM (8: "add
  header" at 6), GREYLIST (5: "greylist" at 4); a fourth scores 0.5 when
  rspamd was told the client's name client.example.test.

With [scan] clamd_scope = "attachments" clamd is sent each attachment,
decoded, and nothing for a message without one: EICAR pasted into a text
body is then not found (docs/configuration.md says so; the default scope,
the whole message, finds it).

The forwarding setup is forward_client.config: ituki@example.test keeps a
local copy (mailbox ituki) and forwards to ituki-ex@gmail.test (the aiosmtpd
far side), fallback mailbox ituki-gm. Waits are on conditions, never sleeps.
"""
import base64
import os
import re
import smtplib
import subprocess

import pytest

from conftest import free_port, port_open, require_programs, wait_for
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import farside  # noqa: F401  (pytest fixture)
from forward_client import RCPT, SENDER, config, message

MALWARE = "HIKYAKU-TEST-MALWARE-7f3a9c"
# The EICAR test file (https://www.eicar.org): the test's database matches it
# anywhere (an .ndb body signature, as for MALWARE).
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
REJECT = "HIKYAKU-TEST-REJECT"
SPAM = "HIKYAKU-TEST-SPAM"
GREYLIST = "HIKYAKU-TEST-GREYLIST"
QUARANTINE = "HIKYAKU-TEST-QUARANTINE"

RSPAMD_RULES = """
local function has(task, s)
  local c = task:get_content()
  return c ~= nil and tostring(c):find(s, 1, true) ~= nil
end
rspamd_config:register_symbol{ name = 'HIKYAKU_TEST_REJECT', score = 20.0,
  callback = function(task) return has(task, 'HIKYAKU-TEST-REJECT') end }
rspamd_config:register_symbol{ name = 'HIKYAKU_TEST_SPAM', score = 8.0,
  callback = function(task) return has(task, 'HIKYAKU-TEST-SPAM') end }
rspamd_config:register_symbol{ name = 'HIKYAKU_TEST_HOSTNAME', score = 0.5,
  callback = function(task) return task:get_hostname() == 'client.example.test' end }
rspamd_config:register_symbol{ name = 'HIKYAKU_TEST_GREYLIST', score = 5.0,
  callback = function(task) return has(task, 'HIKYAKU-TEST-GREYLIST') end }
rspamd_config:register_symbol{ name = 'HIKYAKU_TEST_QUARANTINE', type = 'prefilter', priority = 10,
  callback = function(task)
    if has(task, 'HIKYAKU-TEST-QUARANTINE') then task:set_pre_result('quarantine', 'held for review') end
  end }
"""


class Daemon:
    """A scanner process of this module; stop() ends it by its own PID."""

    def __init__(self, args, log):
        self.log = log
        self.proc = subprocess.Popen(args, stdout=open(log, "ab"), stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def clamd(tmp_path_factory):
    require_programs("clamd")
    d = tmp_path_factory.mktemp("clamd")
    (d / "db").mkdir()
    (d / "db" / "hikyaku-test.ndb").write_text(f"Hikyaku.Test.Malware:0:*:{MALWARE.encode().hex()}\n"
                                               f"Hikyaku.Test.EICAR:0:*:{EICAR.encode().hex()}\n")
    sock = d / "clamd.ctl"
    (d / "clamd.conf").write_text(f"""Foreground yes
LocalSocket {sock}
DatabaseDirectory {d / "db"}
LogFile {d / "clamd.log"}
TemporaryDirectory {d}
""")
    daemon = Daemon(["clamd", "-c", str(d / "clamd.conf")], d / "clamd.out")
    try:
        wait_for(lambda: sock.exists() or daemon.proc.poll() is not None, timeout=120, what="clamd's socket")
        assert daemon.proc.poll() is None, (d / "clamd.out").read_text()
        daemon.address = f"unix:{sock}"
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    require_programs("rspamd")
    d = tmp_path_factory.mktemp("rspamd")
    (d / "db").mkdir()
    port = free_port()
    (d / "tld.dat").write_text("test\ncom\norg\n")
    (d / "rules.lua").write_text(RSPAMD_RULES)
    (d / "rspamd.conf").write_text(f"""
options {{
  pidfile = "{d}/rspamd.pid";
  dbdir = "{d}/db";
  hs_cache_dir = "{d}/db";
  url_tld = "{d}/tld.dat";
  filters = "";
  dns {{ nameserver = ["127.0.0.1:1"]; timeout = 0.1s; retransmits = 0; }}
}}
logging {{ type = "file"; filename = "{d}/rspamd.log"; level = "info"; }}
actions {{ reject = 15; add_header = 6; greylist = 4; quarantine {{ flags = ["no_threshold"]; }} }}
worker "normal" {{ bind_socket = "127.0.0.1:{port}"; count = 1; }}
lua = "{d}/rules.lua";
""")
    args = ["rspamd", "-f", "-c", str(d / "rspamd.conf")]
    if os.geteuid() == 0:
        args += ["-u", "root", "-g", "root", "-i"]
    daemon = Daemon(args, d / "rspamd.out")
    try:
        wait_for(lambda: port_open(port) or daemon.proc.poll() is not None, timeout=120, what="rspamd's port")
        assert daemon.proc.poll() is None, (d / "rspamd.out").read_text()
        daemon.address = f"http://127.0.0.1:{port}"
        yield daemon
    finally:
        daemon.stop()


def scan_config(dns, fs, clamd=None, rspamd=None, on_failure=None, spam=None, timeout="20s", clamd_scope=None):
    scan = "\n[scan]\n"
    if clamd:
        scan += f'clamd = "{clamd}"\n'
    if clamd_scope:
        scan += f'clamd_scope = "{clamd_scope}"\n'
    if rspamd:
        scan += f'rspamd = "{rspamd}"\n'
    scan += f'timeout = "{timeout}"\n'
    if on_failure:
        scan += f'on_failure = "{on_failure}"\n'
    extra = f'spam = "{spam}"' if spam else ""
    return config(dns, fs, extra=extra) + scan


def send(hk, body):
    """(code, text) of the end of DATA."""
    return send_raw(hk, message("scan test", body=f"Hello.\r\n{body}\r\n"))


def send_raw(hk, data):
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=30) as s:
        s.ehlo("client.sender.test")
        s.mail(SENDER)
        s.rcpt(RCPT)
        return s.data(data)


def with_attachment(content, filename="invoice.com", ctype="application/octet-stream"):
    """A multipart/mixed message: a text part, then `content` as a base64 attachment."""
    return with_attachments([(filename, content.encode())], ctype=ctype)


def with_attachments(files, ctype="application/octet-stream"):
    """A multipart/mixed message: a text part, then each (filename, bytes) of
    `files` as a base64 attachment."""
    head = message("attachment test", body="").decode().rstrip("\r\n")
    out = (f"{head}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
           "--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee the attachment.\r\n")
    for filename, content in files:
        encoded = base64.encodebytes(content).decode().replace("\n", "\r\n")
        out += (f"--b1\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n"
                f"Content-Disposition: attachment; filename=\"{filename}\"\r\n\r\n{encoded}")
    return (out + "--b1--\r\n").encode()


def assert_log(hk, pattern):
    """The server logs a line matching `pattern` (written before its reply)."""
    wait_for(lambda: re.search(pattern, hk.log_text()), what=f"a log line matching {pattern}")


def wait_spool_empty(hk):
    q = hk.data_dir / "spool" / "queue"
    wait_for(lambda: q.is_dir() and not any(q.iterdir()), what="an empty queue")


def local_copy(hk, name="ituki"):
    msgs = wait_for(lambda: hk.messages(name), what=f"a message in {name}")
    assert len(msgs) == 1
    return msgs[0].read_bytes()


def assert_nothing_delivered(hk, fs):
    wait_spool_empty(hk)
    assert hk.messages("ituki") == [] and hk.messages("ituki-gm") == []
    assert fs.gmail.attempts == []


def test_clean_message_is_scanned_forwarded_and_kept(make_hikyaku, dns_server, farside, clamd, rspamd):
    hk = make_hikyaku(extra=scan_config(dns_server, farside, clamd.address, rspamd.address))
    code, _ = send(hk, "nothing to see")
    assert code == 250
    got = farside.gmail.wait_messages(1)[0].data
    local = local_copy(hk)
    # The local copy says what rspamd said; the forwarded copy says nothing.
    assert b"\nDelivered-To: ituki@example.test\nX-Spam-Status: No, score=0.00 required=15.00 action=\"no action\"" in local
    assert b"X-Spam-Flag" not in local
    assert b"X-Spam-" not in got
    assert_log(hk, r"scanned: .*clamd: clean; rspamd: action=\"no action\"")
    wait_spool_empty(hk)


def test_rspamd_is_told_the_clients_confirmed_reverse_name(make_hikyaku, dns_server, farside, rspamd):
    # rspamd makes no PTR lookup of its own: hikyaku's iprev check (RFC 8601
    # §3) finds the name and passes it as Hostname.
    dns_server.add_host("client.example.test", "127.0.0.1")  # A and PTR
    hk = make_hikyaku(extra=scan_config(dns_server, farside, rspamd=rspamd.address))
    code, _ = send(hk, "who is asking")
    assert code == 250
    local = local_copy(hk)
    assert b"HIKYAKU_TEST_HOSTNAME(0.50)" in local, local
    assert b"iprev=pass policy.iprev=127.0.0.1" in local, local
    assert_log(hk, r"iprev=pass\(client\.example\.test\)")
    wait_spool_empty(hk)


def test_malware_is_refused_554_and_nothing_delivered(make_hikyaku, dns_server, farside, clamd, rspamd):
    hk = make_hikyaku(extra=scan_config(dns_server, farside, clamd.address, rspamd.address))
    code, text = send(hk, MALWARE)
    assert code == 554 and text.startswith(b"5.7.0 "), text
    assert b"Hikyaku.Test" not in text  # the signature name stays in the log
    assert_log(hk, r"message refused \(554 5\.7\.0\).*Hikyaku\.Test\.Malware.* FOUND")
    assert_nothing_delivered(hk, farside)


def test_clamd_alone_refuses_malware_and_passes_clean_mail(make_hikyaku, dns_server, farside, clamd):
    hk = make_hikyaku(extra=scan_config(dns_server, farside, clamd=clamd.address))
    assert send(hk, MALWARE)[0] == 554
    assert send(hk, "clean")[0] == 250
    farside.gmail.wait_messages(1)
    assert b"X-Spam-" not in local_copy(hk)  # no rspamd: no spam fields
    wait_spool_empty(hk)


def test_rspamd_reject_is_refused_550_and_nothing_delivered(make_hikyaku, dns_server, farside, clamd, rspamd):
    hk = make_hikyaku(extra=scan_config(dns_server, farside, clamd.address, rspamd.address))
    code, text = send(hk, REJECT)
    assert code == 550 and text.startswith(b"5.7.1 "), text
    assert_nothing_delivered(hk, farside)


def test_rspamd_greylist_is_451(make_hikyaku, dns_server, farside, rspamd):
    hk = make_hikyaku(extra=scan_config(dns_server, farside, rspamd=rspamd.address))
    code, text = send(hk, GREYLIST)
    assert code == 451 and text.startswith(b"4.7.1 "), text
    assert_nothing_delivered(hk, farside)


def test_spam_is_kept_local_with_spam_fields_and_not_forwarded(make_hikyaku, dns_server, farside, clamd, rspamd):
    hk = make_hikyaku(extra=scan_config(dns_server, farside, clamd.address, rspamd.address))
    code, _ = send(hk, SPAM)
    assert code == 250
    local = local_copy(hk)
    assert b"\nX-Spam-Status: Yes, score=8.00 required=15.00 action=\"add header\"" in local, local[:300]
    assert b"tests=HIKYAKU_TEST_SPAM(8.00)" in local
    assert b"\nX-Spam-Score: 8.00\n" in local and b"\nX-Spam-Flag: YES\n" in local
    wait_spool_empty(hk)
    assert farside.gmail.attempts == []
    assert hk.messages("ituki-gm") == []


def test_rspamd_quarantine_is_spam_kept_local_not_a_scanner_failure(make_hikyaku, dns_server, farside, rspamd):
    # rspamd's "quarantine" (and "discard") is a verdict, not an error: with
    # on_failure = "accept" it must not be delivered as if unscanned.
    hk = make_hikyaku(extra=scan_config(dns_server, farside, rspamd=rspamd.address, on_failure="accept"))
    code, _ = send(hk, QUARANTINE)
    assert code == 250
    local = local_copy(hk)
    assert b'action="quarantine"' in local and b"\nX-Spam-Flag: YES\n" in local, local[:400]
    wait_spool_empty(hk)
    assert farside.gmail.attempts == []
    assert "delivered unscanned" not in hk.log_text()


def test_spam_forward_option_forwards_without_spam_fields(make_hikyaku, dns_server, farside, rspamd):
    hk = make_hikyaku(extra=scan_config(dns_server, farside, rspamd=rspamd.address, spam="forward"))
    assert send(hk, SPAM)[0] == 250
    got = farside.gmail.wait_messages(1)[0].data
    assert b"X-Spam-" not in got and SPAM.encode() in got
    assert b"X-Spam-Flag: YES" in local_copy(hk)
    wait_spool_empty(hk)


@pytest.mark.parametrize("scanner", ["clamd", "rspamd"])
def test_scanner_down_tempfails_by_default(make_hikyaku, dns_server, farside, tmp_path, scanner):
    down = f"unix:{tmp_path}/nothing.ctl" if scanner == "clamd" else f"http://127.0.0.1:{free_port()}"
    hk = make_hikyaku(extra=scan_config(dns_server, farside, **{scanner: down}))
    code, text = send(hk, "clean")
    assert code == 451 and text.startswith(b"4.7.1 "), text
    assert_log(hk, r"message refused \(451 4\.7\.1\).*on_failure = tempfail")
    assert_nothing_delivered(hk, farside)


def test_scanner_that_never_answers_times_out_with_451(make_hikyaku, dns_server, farside):
    """A listening socket nobody serves: the connect succeeds (the kernel's
    backlog), the answer never comes; [scan] timeout ends the wait."""
    import socket
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        hk = make_hikyaku(extra=scan_config(dns_server, farside, rspamd=f"http://127.0.0.1:{port}", timeout="1s"))
        code, text = send(hk, "clean")
        assert code == 451 and text.startswith(b"4.7.1 "), text
        assert_log(hk, r"rspamd: 127\.0\.0\.1:\d+: timed out after 1 s")
    assert_nothing_delivered(hk, farside)


def test_scanner_down_with_accept_delivers_unscanned(make_hikyaku, dns_server, farside, tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    hk = make_hikyaku(extra=scan_config(dns_server, farside, clamd=f"unix:{tmp_path}/none.ctl", rspamd=down,
                                        on_failure="accept"))
    assert send(hk, MALWARE)[0] == 250
    farside.gmail.wait_messages(1)
    assert b"X-Spam-" not in local_copy(hk)
    assert_log(hk, r"on_failure = accept: delivered unscanned")
    wait_spool_empty(hk)


def test_attachments_scope_refuses_an_eicar_attachment_554(make_hikyaku, dns_server, farside, clamd):
    hk = make_hikyaku(extra=scan_config(dns_server, farside, clamd=clamd.address, clamd_scope="attachments"))
    code, text = send_raw(hk, with_attachment(EICAR))
    assert code == 554 and text.startswith(b"5.7.0 "), text
    assert_log(hk, r'message refused \(554 5\.7\.0\).*clamd: \S+ in "invoice\.com" FOUND')
    # A clean attachment is sent, found clean, and the message forwarded.
    assert send_raw(hk, with_attachment("just a file", filename="notes.bin"))[0] == 250
    assert_log(hk, r"scanned: .*clamd: clean \(1 attachment\)")
    farside.gmail.wait_messages(1)
    # EICAR pasted into the text body is not sent to clamd in this scope
    # (docs/configuration.md): accepted. The far side, like Gmail, refuses
    # it (552 5.7.0), so it is diverted to the fallback mailbox.
    assert send(hk, EICAR)[0] == 250
    assert_log(hk, r"scanned: .*clamd: clean \(no attachment: clamd not asked\)")
    diverted = wait_for(lambda: hk.messages("ituki-gm"), what="the diverted copy")
    assert EICAR.encode() in diverted[0].read_bytes()
    wait_spool_empty(hk)


@pytest.mark.parametrize("scope", ["attachments", "message"])
def test_a_large_message_is_scanned_from_its_body_file(make_hikyaku, dns_server, farside, clamd, scope):
    """Over 1 MiB a message keeps its body in a file (mail/message.hpp).
    attachments: the file is mapped and walked, each attachment decoded in
    turn (on the blocking pool), and EICAR in the last of three, after two
    large ones, is found; message: the whole file is read and sent."""
    hk = make_hikyaku(message_size="10M",
                      extra=scan_config(dns_server, farside, clamd=clamd.address, clamd_scope=scope))
    big = [("one.bin", os.urandom(1536 * 1024)), ("two.bin", os.urandom(1536 * 1024))]
    code, text = send_raw(hk, with_attachments(big + [("eicar.com", EICAR.encode())]))
    assert code == 554 and text.startswith(b"5.7.0 "), text
    if scope == "attachments":
        assert_log(hk, r'message refused \(554 5\.7\.0\).*clamd: \S+ in "eicar\.com" FOUND')
    assert send_raw(hk, with_attachments(big))[0] == 250
    if scope == "attachments":
        assert_log(hk, r"scanned: .*clamd: clean \(2 attachments\)")
    farside.gmail.wait_messages(1)
    wait_spool_empty(hk)


def test_attachments_scope_does_not_ask_clamd_about_plain_text(make_hikyaku, dns_server, farside, tmp_path):
    """clamd is down and on_failure is "tempfail": a plain-text message is
    still accepted and forwarded (clamd was never asked), while a message
    with an attachment gets the 451 of a scanner that cannot be asked."""
    down = f"unix:{tmp_path}/nothing.ctl"
    hk = make_hikyaku(extra=scan_config(dns_server, farside, clamd=down, clamd_scope="attachments"))
    assert send(hk, "plain text, nothing attached")[0] == 250
    farside.gmail.wait_messages(1)
    assert_log(hk, r"scanned: .*clamd: clean \(no attachment: clamd not asked\)")
    code, text = send_raw(hk, with_attachment("a file"))
    assert code == 451 and text.startswith(b"4.7.1 "), text
    assert_log(hk, r"message refused \(451 4\.7\.1\).*on_failure = tempfail")
    wait_spool_empty(hk)
    assert len(farside.gmail.attempts) == 1


def test_attachments_scope_sends_an_unreadable_structure_whole(make_hikyaku, dns_server, farside, clamd):
    """A multipart without a delimiter line hides nothing: the whole message
    goes to clamd, which finds EICAR in it."""
    hk = make_hikyaku(extra=scan_config(dns_server, farside, clamd=clamd.address, clamd_scope="attachments"))
    head = message("hostile", body="").decode().rstrip("\r\n")
    data = (f"{head}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=nowhere\r\n\r\n"
            f"{EICAR}\r\n").encode()
    code, text = send_raw(hk, data)
    assert code == 554 and text.startswith(b"5.7.0 "), text
    assert_nothing_delivered(hk, farside)


def test_scan_config_errors_name_file_and_line(tmp_path):
    from conftest import HIKYAKU_BIN
    cfg = tmp_path / "bad.toml"
    cfg.write_text('hostname = "mx.example.test"\n[scan]\nclamd = "clamd.example:3310"\n'
                   'rspamd = "127.0.0.1:11333"\non_failure = "maybe"\ntimeout = "0s"\nclamd_scope = "parts"\n')
    r = subprocess.run([HIKYAKU_BIN, "check-config", "--config", str(cfg)], capture_output=True, text=True)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert f"{cfg}:3:9: scan.clamd:" in out, out
    assert f"{cfg}:4:10: scan.rspamd: expected \"http://IP:PORT\"" in out, out
    assert f"{cfg}:5:14: scan.on_failure:" in out, out
    assert f"{cfg}:6:11: scan.timeout:" in out, out
    assert f"{cfg}:7:15: scan.clamd_scope: one of \"message\", \"attachments\"" in out, out
