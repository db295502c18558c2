"""The forwarder's own identity (issue 17 item 4): source address, EHLO name
and address family of outgoing SMTP.

The real binary, dnsmasq (gmail.test MX → 127.0.0.2; dual.test MX →
mx.dual.test with A 127.0.0.2 and AAAA ::1) and aiosmtpd far sides
(farside.py) that record each message's peer address and HELO name. Only
loopback addresses: sources 127.0.0.3 / 127.0.0.6 / ::1, far sides on
127.0.0.2 and ::1. Waits are on conditions, never sleeps.
"""
import subprocess

import pytest

from conftest import HIKYAKU_BIN, wait_for
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import farside  # noqa: F401  (pytest fixture)
from forward_client import FORWARD, RCPT, Client, message

OTHER_RCPT = "bob2@example.test"
OTHER_FORWARD = "bob2-ex@gmail.test"


def config(dns, fs, delivery="", forward="", forward_to=FORWARD):
    return f"""
[[mailbox]]
name = "ituki"

[[mailbox]]
name = "ituki-gm"

[[address]]
address = "{RCPT}"
deliver = ["forward:{forward_to}"]

[[forward]]
to = "{forward_to}"
fallback = ["mailbox:ituki-gm"]
{forward}

[[address]]
address = "{OTHER_RCPT}"
deliver = ["forward:{OTHER_FORWARD}"]

[[forward]]
to = "{OTHER_FORWARD}"
fallback = ["mailbox:ituki-gm"]
{dns.toml()}
{fs.toml('retry = ["1s"]' + chr(10) + delivery)}
"""


def test_source_address_and_name_of_delivery(make_hikyaku, dns_server, farside):
    hk = make_hikyaku(extra=config(dns_server, farside, delivery='source_address = "127.0.0.3"\n'
                                                                'source_name = "fwd.example.test"'))
    Client(hk).send(message("from 127.0.0.3"))
    [got] = farside.gmail.wait_messages(1)
    assert got.peer[0] == "127.0.0.3"
    assert got.helo == "fwd.example.test"


def test_without_source_address_the_kernel_chooses(make_hikyaku, dns_server, farside):
    """The control: without the setting the connection comes from 127.0.0.1
    (so the test above can fail) and EHLO names the hostname."""
    hk = make_hikyaku(extra=config(dns_server, farside))
    Client(hk).send(message("default source"))
    [got] = farside.gmail.wait_messages(1)
    assert got.peer[0] == "127.0.0.1"
    assert got.helo == "mx.example.test"


def test_a_forward_overrides_the_source(make_hikyaku, dns_server, farside):
    hk = make_hikyaku(extra=config(dns_server, farside,
                                   delivery='source_address = ["127.0.0.3", "::1"]',
                                   forward='source_address = "127.0.0.6"\nsource_name = "own.example.test"'))
    c = Client(hk)
    c.send(message("own source"))
    [got] = farside.gmail.wait_messages(1)
    c.send(message("delivery source"), rcpt=OTHER_RCPT)
    got = farside.gmail.wait_messages(2)
    by_rcpt = {m.rcpt_tos[0]: m for m in got}
    assert by_rcpt[FORWARD].peer[0] == "127.0.0.6"
    assert by_rcpt[FORWARD].helo == "own.example.test"
    assert by_rcpt[OTHER_FORWARD].peer[0] == "127.0.0.3"
    assert by_rcpt[OTHER_FORWARD].helo == "mx.example.test"


def test_a_source_address_not_on_this_host_defers_with_a_log_line(make_hikyaku, dns_server, farside):
    """192.0.2.1 (TEST-NET-1) is on no interface here: bind fails, the attempt
    is temporary (never a connection from another address), logged."""
    hk = make_hikyaku(extra=config(dns_server, farside, delivery='source_address = "192.0.2.1"'))
    Client(hk).send(message("unbindable"))
    wait_for(lambda: "cannot bind the source address 192.0.2.1" in hk.log_text(), what="the bind failure log line")
    wait_for(lambda: hk.log_text().count("cannot bind the source address 192.0.2.1") >= 2,
             what="a retry (the failure was temporary)")
    assert farside.gmail.connections == 0
    assert hk.messages("ituki-gm") == []  # 4xx: not diverted before defer_limit
    assert FORWARD not in hk.log_text().lower()


@pytest.fixture
def dual(dns_server, farside):  # noqa: F811
    """dual.test's MX has an IPv4 (127.0.0.2, the gmail stand-in) and an IPv6
    (::1) address, each with a far side on the shared port."""
    with dns_server.batch():
        dns_server.add_mx("dual.test", "mx.dual.test", 10)
        dns_server.add_host("mx.dual.test", "127.0.0.2", "::1")
    return farside.add("::1", name="mx.dual.test")


def test_address_family_ipv4_never_tries_ipv6(make_hikyaku, dns_server, farside, dual):
    """127.0.0.2 answers 451 at end of data, so the route loop would go on to
    ::1 (A before AAAA). Two attempts at 127.0.0.2 mean the first attempt's
    loop is over; ::1 was never connected to."""
    farside.gmail.set_mode("tempfail_data")
    hk = make_hikyaku(extra=config(dns_server, farside, delivery='address_family = "ipv4"',
                                   forward_to="ituki@dual.test"))
    Client(hk).send(message("ipv4 only"))
    farside.gmail.wait_attempts(2)
    assert dual.connections == 0


def test_address_family_any_goes_on_to_ipv6(make_hikyaku, dns_server, farside, dual):
    """The control of the test above: with "any" the same 451 is followed by
    ::1, which accepts — from the IPv6 source address."""
    farside.gmail.set_mode("tempfail_data")
    hk = make_hikyaku(extra=config(dns_server, farside, delivery='source_address = ["127.0.0.3", "::1"]',
                                   forward_to="ituki@dual.test"))
    Client(hk).send(message("either family"))
    [got] = dual.wait_messages(1)
    assert got.peer[0] == "::1"
    assert farside.gmail.attempts[0].peer[0] == "127.0.0.3"


def test_address_family_ipv6_uses_only_ipv6(make_hikyaku, dns_server, farside, dual):
    hk = make_hikyaku(extra=config(dns_server, farside, delivery='address_family = "ipv6"',
                                   forward_to="ituki@dual.test"))
    Client(hk).send(message("ipv6 only"))
    [got] = dual.wait_messages(1)
    assert got.peer[0] == "::1"
    assert farside.gmail.connections == 0


def test_check_config_reports_a_bad_source_address(make_hikyaku, dns_server, farside):
    hk = make_hikyaku(extra=config(dns_server, farside))
    text = hk.config_path.read_text().replace("[delivery]\n", '[delivery]\nsource_address = ["127.0.0.2", "10.0.0.1"]\n'
                                                               'address_family = "inet"\n', 1)
    bad = hk.tmp / "bad.toml"
    bad.write_text(text)
    r = subprocess.run([HIKYAKU_BIN, "check-config", "--config", str(bad)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    lines = [line for line in (r.stdout + r.stderr).splitlines() if "bad.toml:" in line]
    assert any("delivery.source_address: two IPv4 addresses" in line for line in lines), lines
    assert any("delivery.address_family: one of" in line for line in lines), lines
