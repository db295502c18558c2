"""`hikyaku queue flush [ID] [--destination DOMAIN]` (issue 16 item 1;
docs/operations.md "Queue"): the running server is reached through its
control socket DATA_DIR/control (mode 0600) and attempts the waiting
deliveries at once; with the server stopped, the command records them as
due in the spool, and the server attempts them as soon as it starts.

The real binary forwards ituki@example.test to ituki-ex@gmail.test (an
aiosmtpd far side on 127.0.0.2 found through a real dnsmasq) with
`retry = ["1h"]`: a delivery the far side deferred is attempted again within
this test only because of a flush.
"""
import re
import smtplib
import stat

from conftest import wait_for
from forward_client import RCPT, SENDER, config, message
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import farside  # noqa: F401  (pytest fixture)


def deferred_once(hk, gmail, subject):
    """Send one message whose forward the far side defers (451); its id."""
    gmail.set_mode("tempfail_data", times=1)
    before = len(gmail.attempts)
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=10) as s:
        s.ehlo()
        s.mail(SENDER)
        s.rcpt(RCPT)
        code, text = s.data(message(subject))
        assert code == 250, text
    queue_id = re.search(rb"queued as (\w+)", text).group(1).decode()
    wait_for(lambda: re.search(rf"{queue_id}: to=<{RCPT}>, target=forward:<hidden>, status=deferred",
                               hk.log_text()), what="the deferral")
    assert len(gmail.attempts) == before + 1
    return queue_id


def test_flush_through_the_running_server(make_hikyaku, dns_server, farside):  # noqa: F811
    gmail = farside.gmail
    hk = make_hikyaku(extra=config(dns_server, farside, retry='["1h"]'))
    control = hk.data_dir / "control"
    assert stat.S_ISSOCK(control.stat().st_mode) and stat.S_IMODE(control.stat().st_mode) == 0o600

    first = deferred_once(hk, gmail, "flushed by destination")
    r = hk.run_cli("queue", "flush", "--destination", "other.test")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "0 waiting deliveries made due (destination other.test)\n"
    r = hk.run_cli("queue", "flush", "--destination", "GMAIL.test")
    assert (r.returncode, r.stdout) == (0, "1 waiting delivery made due (destination gmail.test)\n"), r.stderr
    gmail.wait_messages(1)
    wait_for(lambda: f"{first}: removed" in hk.log_text(), what="the flushed message to be done")

    second = deferred_once(hk, gmail, "flushed by id")
    third = deferred_once(hk, gmail, "left waiting")
    r = hk.run_cli("queue", "flush", second)
    assert (r.returncode, r.stdout) == (0, f"1 waiting delivery made due (message {second})\n"), r.stderr
    got = gmail.wait_messages(2)
    assert b"flushed by id" in got[1].data
    assert "queue flush: 1 waiting delivery made due" in hk.log_text()
    r = hk.run_cli("queue", "list")
    assert third in r.stdout and second not in r.stdout, r.stdout

    hk.stop()
    assert not control.exists(), "the socket is removed at a clean stop"


def test_a_running_server_without_its_socket_is_not_flushed_behind_its_back(make_hikyaku, dns_server,  # noqa: F811
                                                                           farside):  # noqa: F811
    """The socket gone (removed by hand) while the server runs: the command
    must not write the spool under it; it says what is wrong."""
    hk = make_hikyaku(extra=config(dns_server, farside, retry='["1h"]'))
    queue_id = deferred_once(hk, farside.gmail, "not flushed")
    (hk.data_dir / "control").unlink()
    r = hk.run_cli("queue", "flush")
    assert r.returncode == 1, r.stdout
    assert "hikyaku is running" in r.stderr and "does not listen on" in r.stderr, r.stderr
    assert queue_id in hk.run_cli("queue", "list").stdout


def test_flush_with_the_server_stopped(make_hikyaku, dns_server, farside):  # noqa: F811
    gmail = farside.gmail
    hk = make_hikyaku(extra=config(dns_server, farside, retry='["1h"]'))
    queue_id = deferred_once(hk, gmail, "flushed while stopped")
    hk.stop()
    r = hk.run_cli("queue", "flush", "--destination", "gmail.test")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hikyaku is not running: 1 waiting delivery made due; they start when it starts\n"
    hk.start()
    [m] = gmail.wait_messages(1)
    assert b"flushed while stopped" in m.data
    r = hk.run_cli("queue", "flush", "0000000000000")
    assert r.returncode == 0, r.stderr  # the running server: nothing of that id waits
    assert r.stdout.startswith("0 waiting deliveries made due"), r.stdout


def test_malformed_requests_are_refused(make_hikyaku, dns_server, farside):  # noqa: F811
    hk = make_hikyaku(extra=config(dns_server, farside))
    for args, error in ((("--destination", "a@b"), "not a domain: a@b"),
                        (("not-an-id",), "not a queue id: not-an-id")):
        r = hk.run_cli("queue", "flush", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert error in r.stderr, r.stderr
    hk.stop()
    r = hk.run_cli("queue", "flush", "0000000000000")
    assert r.returncode == 1 and "no queued message 0000000000000" in r.stderr, r.stderr
