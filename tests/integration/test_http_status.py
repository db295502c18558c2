"""The status listener (issue 16 item 2): [listen] http serves /healthz,
/metrics (Prometheus text format 0.0.4) and a small HTML status page on
loopback.

The real binary with the forwarding setup of test_forward.py (a dnsmasq,
aiosmtpd far sides for gmail.test and the sender): a message to
`ituki@example.test` is kept in mailbox `ituki` and forwarded to the hidden
`ituki-ex@gmail.test`. /metrics is read with urllib and parsed with the
Prometheus project's own parser (python3-prometheus-client); the counters
must have moved, and the hidden address must appear on no page. Waits are on
conditions (wait_for), never sleeps.
"""
import poplib
import re
import smtplib
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import HIKYAKU_BIN, free_port, wait_for
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import farside  # noqa: F401  (pytest fixture)
from forward_client import FORWARD, Client, config, message

parser = pytest.importorskip("prometheus_client.parser")


def start(make_hikyaku, dns_server, farside, **kwargs):
    port = free_port()
    hk = make_hikyaku(extra=config(dns_server, farside), listen_extra=f'http = ["127.0.0.1:{port}"]', **kwargs)
    hk.http_port = port
    return hk


def get(hk, path, method="GET", data=None):
    """(status, headers, body) of one request; errors are answers too."""
    req = urllib.request.Request(f"http://127.0.0.1:{hk.http_port}{path}", method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def metrics(hk):
    """{(sample name, frozenset of label pairs): value} from /metrics, and
    the family types, through prometheus_client's text parser."""
    status, headers, body = get(hk, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples, types = {}, {}
    for family in parser.text_string_to_metric_families(body.decode()):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types, body


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def wait_metric(hk, name, want, **labels):
    wait_for(lambda: value(metrics(hk)[0], name, **labels) == want, what=f"{name}{labels} == {want}")


def wait_spool_empty(hk):
    q = hk.data_dir / "spool" / "queue"
    wait_for(lambda: q.is_dir() and not any(q.iterdir()), what="an empty queue")


def test_metrics_count_a_forwarded_message(make_hikyaku, dns_server, farside):
    hk = start(make_hikyaku, dns_server, farside)
    before, types, _ = metrics(hk)
    assert value(before, "hikyaku_messages_received_total") == 0
    assert types["hikyaku_messages_received"] == "counter"
    assert types["hikyaku_deliveries"] == "counter"
    assert types["hikyaku_forward_duration_seconds"] == "histogram"
    assert types["hikyaku_queue_messages"] == "gauge"
    assert types["hikyaku_connections"] == "gauge"
    assert types["hikyaku_auth_failures"] == "counter"

    client = Client(hk)
    client.send(message("metrics"))
    farside.gmail.wait_messages(1)
    wait_for(lambda: len(hk.messages("ituki")) == 1, what="the PC copy")
    wait_spool_empty(hk)
    # The forward's result is settled (and counted) before the spool file goes.
    samples, _, body = metrics(hk)
    assert value(samples, "hikyaku_messages_received_total") == 1
    assert value(samples, "hikyaku_deliveries_total", target="forward", result="delivered") == 1
    assert value(samples, "hikyaku_deliveries_total", target="mailbox", result="delivered") == 1
    assert value(samples, "hikyaku_deliveries_total", target="forward", result="diverted") == 0
    assert value(samples, "hikyaku_forward_duration_seconds_count") == 1
    assert value(samples, "hikyaku_forward_duration_seconds_bucket", le="+Inf") == 1
    assert value(samples, "hikyaku_forward_duration_seconds_sum") > 0
    assert value(samples, "hikyaku_queue_messages") == 0
    for protocol in ("smtp", "submission", "pop3", "imap"):
        assert ("hikyaku_connections", frozenset({("protocol", protocol)})) in samples
    assert value(samples, "hikyaku_dns_queries_total", result="upstream") >= 1

    status, headers, page = get(hk, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"<tr><th>messages received</th><td>1</td></tr>" in page
    assert b"<tr><th>forward delivered</th><td>1</td></tr>" in page
    # The hidden address is on no page (and never in a label).
    for blob in (body, page):
        assert FORWARD.encode() not in blob.lower() and b"ituki-ex" not in blob.lower()


def test_a_diversion_is_counted(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("reject_rcpt")
    hk = start(make_hikyaku, dns_server, farside)
    Client(hk).send(message("refused"))
    wait_for(lambda: len(hk.messages("ituki-gm")) == 1, what="the diverted copy")
    wait_spool_empty(hk)
    samples, _, body = metrics(hk)
    assert value(samples, "hikyaku_deliveries_total", target="forward", result="diverted") == 1
    assert value(samples, "hikyaku_deliveries_total", target="forward", result="delivered") == 0
    # The PC copy and the diverted copy.
    assert value(samples, "hikyaku_deliveries_total", target="mailbox", result="delivered") == 2
    assert FORWARD.encode() not in body.lower()


def test_connections_and_login_failures(make_hikyaku, dns_server, farside):
    hk = start(make_hikyaku, dns_server, farside, allow_plaintext=True)
    # A generous timeout: the password check runs at nice +10 and waits
    # behind any other load on the machine.
    pop = poplib.POP3("127.0.0.1", hk.pop3_port, timeout=120)
    wait_metric(hk, "hikyaku_connections", 1, protocol="pop3")
    pop.user("alice")
    with pytest.raises(poplib.error_proto):
        pop.pass_("wrong password")
    pop.quit()
    wait_metric(hk, "hikyaku_connections", 0, protocol="pop3")
    with smtplib.SMTP("127.0.0.1", hk.submission_port, timeout=120) as s:
        s.ehlo()
        s.user, s.password = "alice", "wrong password"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.auth("PLAIN", s.auth_plain)  # one attempt (login() tries each mechanism)
    samples = metrics(hk)[0]
    assert value(samples, "hikyaku_auth_failures_total", protocol="pop3") == 1
    assert value(samples, "hikyaku_auth_failures_total", protocol="submission") == 1
    assert value(samples, "hikyaku_auth_failures_total", protocol="imap") == 0


def test_healthz_404_405_400(make_hikyaku, dns_server, farside):
    hk = start(make_hikyaku, dns_server, farside)
    status, _, body = get(hk, "/healthz")
    assert (status, body) == (200, b"ok\n")
    status, headers, body = get(hk, "/healthz", method="HEAD")
    assert (status, body, headers["Content-Length"]) == (200, b"", "3")
    assert get(hk, "/nothing-here")[0] == 404
    assert get(hk, "/metrics?name[]=x")[0] == 200  # the query is ignored
    status, headers, _ = get(hk, "/metrics", method="POST", data=b"x=1")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    with socket.create_connection(("127.0.0.1", hk.http_port), timeout=10) as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply
    # DNS rebinding: a browser on a page of attacker.example, its name now
    # pointing at 127.0.0.1, sends that name as Host: not answered.
    with socket.create_connection(("127.0.0.1", hk.http_port), timeout=10) as s:
        s.sendall(f"GET /metrics HTTP/1.1\r\nHost: rebind.attacker.example:{hk.http_port}\r\n\r\n".encode())
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 421 Misdirected Request\r\n") and b"hikyaku" not in reply, reply
    # Still serving after all of that.
    assert get(hk, "/healthz")[0] == 200


def test_a_listener_off_loopback_is_refused(tmp_path):
    conf = tmp_path / "hikyaku.toml"
    conf.write_text(f'data_dir = "{tmp_path / "data"}"\n[listen]\nhttp = ["0.0.0.0:{free_port()}"]\n')
    for command in (["check-config"], ["serve"]):
        r = subprocess.run([HIKYAKU_BIN, *command, "--config", str(conf)], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0, command
        assert f"{conf}:3:8: listen.http: '0.0.0.0:" in r.stderr + r.stdout, r.stderr
        assert "is not a loopback address" in r.stderr + r.stdout


def test_a_rate_limited_destination_is_shown(make_hikyaku, dns_server, farside):
    """After Gmail's 421 4.7.28 the destination is paused (test_rate_limit_pause.py):
    the page names it with the end of the pause, and the gauge counts it."""
    farside.gmail.set_mode("tempfail_mail", times=1)
    port = free_port()
    hk = make_hikyaku(extra=config(dns_server, farside, delivery_extra='rate_limit_pause = "10m"'),
                      listen_extra=f'http = ["127.0.0.1:{port}"]')
    hk.http_port = port
    Client(hk).send(message("rate limited"))
    wait_for(lambda: "gmail.test is rate-limiting us" in hk.log_text(), what="the rate-limit reply")
    status, _, page = get(hk, "/")
    assert status == 200
    assert re.search(rb"<tr><th>rate-limit slow-down: gmail.test</th><td>paused until "
                     rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</td></tr>", page), page
    assert value(metrics(hk)[0], "hikyaku_destinations_slowed_down") == 1
