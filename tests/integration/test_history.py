"""The delivery history (issue 16 items 1-3): `hikyaku trace ID|ADDRESS`,
the status page's chart of forwards per hour and its list of diverted
messages, and counters that go on across a restart.

The real binary with the forwarding setup of test_forward.py (a dnsmasq,
aiosmtpd far sides for gmail.test, which offers STARTTLS, and the sender): ituki@example.test keeps a
copy in mailbox `ituki` and forwards to the hidden ituki-ex@gmail.test,
diverted into `ituki-gm` with a notice. One message is forwarded, one is
deferred once (retry in 1 h: it stays deferred), one is refused and diverted.
The status page is rendered by Debian's headless Chromium (its DOM text
asserted, a phone-sized screenshot kept under HIKYAKU_ARTIFACTS). Chromium
is kept on loopback: every host name but 127.0.0.1 resolves to nothing and
its background services are off. The hidden address appears in no output.
"""
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port, wait_for
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import farside_tls  # noqa: F401  (pytest fixture)
from forward_client import FORWARD, SENDER, Client, config, message

CHROMIUM = shutil.which("chromium")


def page(hk):
    with urllib.request.urlopen(f"http://127.0.0.1:{hk.http_port}/", timeout=10) as r:
        return r.read().decode()


def chromium(tmp_path, *args):
    """Headless Chromium with no network but loopback."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-default-apps", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
           f"--user-data-dir={tmp_path / 'chromium'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_trace_status_page_and_restart(make_hikyaku, dns_server, farside_tls, tmp_path):  # noqa: F811
    farside = farside_tls  # its gmail offers STARTTLS (a certificate that does not verify)
    gmail = farside.gmail
    http = free_port()
    hk = make_hikyaku(extra=config(dns_server, farside, notify=True, retry='["1h"]'),
                      listen_extra=f'http = ["127.0.0.1:{http}"]')
    hk.http_port = http
    client = Client(hk)

    client.send(message("forwarded at once"))
    gmail.wait_messages(1)
    gmail.set_mode("tempfail_data", times=1)
    client.send(message("deferred for an hour"))
    wait_for(lambda: "status=deferred" in hk.log_text(), what="the deferral")
    gmail.set_mode("reject_rcpt")
    client.send(message("refused <by> gmail & diverted"))
    wait_for(lambda: len(hk.messages("ituki-gm")) == 1, what="the diverted copy")
    # The notice to the hidden address is refused too, and fails (never
    # diverted, never bounced); then only the deferred message is left.
    wait_for(lambda: len(re.findall(r": removed", hk.log_text())) == 3, what="three messages done")

    diverted_id = re.search(r"(\w+): to=<ituki@example.test>, target=forward:<hidden>, status=diverted",
                            hk.log_text()).group(1)
    deferred_id = re.search(r"(\w+): to=<ituki@example.test>, target=forward:<hidden>, status=deferred",
                            hk.log_text()).group(1)

    # The history is written off the hot path: wait for its rows.
    wait_for(lambda: "removed" in hk.run_cli("trace", diverted_id).stdout, what="the trace to be complete")
    r = hk.run_cli("trace", diverted_id)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    steps = [f"received from <{SENDER}>, ip 127.0.0.1 helo ", f"to <ituki@example.test>",
             "Subject: refused <by> gmail & diverted", "checks: ", "spf=",
             "<ituki@example.test> via mailbox:ituki: delivered",
             "<ituki@example.test> via forward:<hidden>: diverted in ", " s over TLS (5.7.1 550 ",
             "5.7.1 The email account that you tried to reach is disabled. gsmtp), diverted to mailbox:ituki-gm",
             "<ituki@example.test> via mailbox:ituki-gm: delivered", "report: notice ", " queued to <ituki@example.test>",
             "removed"]
    for step in steps:
        assert step in text, f"{step!r} not in the trace:\n{text}"
    assert text.index("received from") < text.index("diverted in") < text.index("via mailbox:ituki-gm")
    assert text.index("via mailbox:ituki-gm") < text.rindex("removed")

    r = hk.run_cli("trace", deferred_id)
    assert re.search(r"via forward:<hidden>: deferred in [0-9.]+ s over TLS \([^)]*Temporary System Problem[^)]*\), "
                     r"next attempt \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z", r.stdout), r.stdout
    assert "removed" not in r.stdout

    r = hk.run_cli("trace", SENDER.upper())
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("received from") == 3, r.stdout
    r = hk.run_cli("trace", "nobody@nowhere.test")
    assert r.returncode == 1 and "no message in the history matches nobody@nowhere.test" in r.stderr

    # The status page: a chart of the last 7 days and the diverted message.
    # Four forward attempts: the notice to ituki@ was forwarded and refused too.
    wait_for(lambda: "1 forwarded, 1 diverted, 1 deferred" in page(hk), what="the chart to count all three")
    html = page(hk)
    assert "<svg viewBox=" in html
    assert "refused &lt;by&gt; gmail &amp; diverted" in html and "<td>ituki-gm</td>" in html
    assert "5.7.1 The email account that you tried to reach is disabled" in html
    assert re.search(r"Forward latency over 4 attempts: p50 [0-9.]+ s", html), html
    assert "Delivered over TLS: 100 % (1 of 1 forwards)" in html, html
    assert "<tr><th>destinations in a rate-limit slow-down</th><td>none</td></tr>" in html

    if CHROMIUM is None:
        pytest.fail("chromium is not installed (scripts/install-deps.sh installs it)")
    url = f"http://127.0.0.1:{http}/"
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr
    assert "Diverted messages" in dom.stdout and "refused &lt;by&gt; gmail &amp; diverted" in dom.stdout
    assert "1 forwarded" in dom.stdout and "<rect " in dom.stdout
    artifacts = Path(os.environ.get("HIKYAKU_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "status-page.png"
    shot.unlink(missing_ok=True)
    r = chromium(tmp_path, f"--screenshot={shot}", "--window-size=412,1400", "--hide-scrollbars", url)
    assert r.returncode == 0, r.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000

    for out in (text, html, dom.stdout):
        assert FORWARD not in out.lower() and "ituki-ex" not in out.lower()

    # Stopped: trace works from the file; started again: the counters go on.
    hk.stop()
    r = hk.run_cli("trace", diverted_id)
    assert r.returncode == 0 and "diverted to mailbox:ituki-gm" in r.stdout, r.stderr
    hk.start()
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10) as resp:
        body = resp.read().decode()
    assert 'hikyaku_deliveries_total{target="forward",result="diverted"} 1' in body, body
    assert 'hikyaku_deliveries_total{target="forward",result="delivered"} 1' in body, body
    assert "hikyaku_messages_received_total 3" in body, body
    assert "refused &lt;by&gt; gmail &amp; diverted" in page(hk)
