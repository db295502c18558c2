"""`hikyaku check dns` against a real dnsmasq on loopback (issue 16 item 6).

The records are the ones `hikyaku dns` prints (one source of record text),
served by dnsmasq (dns_server.py); hikyaku asks it through the configured
[dns] servers, as the server does. A correct zone gives exit 0; a zone with
one deliberate mistake per check (MX elsewhere, SPF not covering the host, a
DKIM record with another key, no DMARC, a PTR naming another host) names
each, with the record to publish, and exits 1. A name the DNS server refuses
to answer is a DNS failure, not a missing record.
"""
import shlex
import subprocess

import pytest

from conftest import HIKYAKU_BIN, Hikyaku
from dns_server import dns_server  # noqa: F401  (pytest fixture)

HOST_IP = "127.0.0.10"  # what mx.example.test (the configuration's hostname) resolves to


def keygen(hk, domain, selector):
    r = hk.run_cli("dkim", "keygen", domain, "--selector", selector, "--algo", "ed25519")
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        if line.startswith("dkim_key = "):
            return line.split('"')[1], r.stdout
    raise AssertionError(r.stdout)


def txt_value(output, owner):
    """The unquoted value of the TXT line for `owner` in zone-file output."""
    for line in output.splitlines():
        tokens = shlex.split(line) if line and not line.startswith(";") else []
        if tokens[:3] == [owner, "IN", "TXT"]:
            return "".join(tokens[3:])
    raise AssertionError(f"no TXT line for {owner} in:\n{output}")


@pytest.fixture
def hk(tmp_path, dns_server):  # noqa: F811
    """A configuration (hostname mx.example.test, domain example.test with
    an Ed25519 key at selector hk1) asking dns_server; no server runs."""
    d = tmp_path / "hk"
    d.mkdir()
    h = Hikyaku(d, extra=dns_server.toml())
    key_path, _ = keygen(h, "example.test", "hk1")
    text = h.config_path.read_text().replace(
        'name = "example.test"\n', f'name = "example.test"\ndkim_selector = "hk1"\ndkim_key = "{key_path}"\n', 1)
    h.config_path.write_text(text)
    return h


def publish_printed_records(hk, dns_server):  # noqa: F811
    """Serve exactly what `hikyaku dns` prints, and the host's A and PTR."""
    printed = hk.run_cli("dns")
    assert printed.returncode == 0, printed.stderr
    with dns_server.batch():
        dns_server.add_mx("example.test", "mx.example.test", 10)
        dns_server.add_host("mx.example.test", HOST_IP)  # A, and the PTR back
        dns_server.add_txt("example.test", txt_value(printed.stdout, "example.test."))
        dns_server.add_txt("mx.example.test", txt_value(printed.stdout, "mx.example.test."))
        dns_server.add_txt("hk1._domainkey.example.test", txt_value(printed.stdout, "hk1._domainkey.example.test."))
        dns_server.add_txt("_dmarc.example.test", txt_value(printed.stdout, "_dmarc.example.test."))
    return printed.stdout


def lines_of(output):
    return {line.split(": ", 1)[0]: line for line in output.splitlines() if ": " in line}


def test_correct_zone_is_all_ok(hk, dns_server):  # noqa: F811
    publish_printed_records(hk, dns_server)
    r = hk.run_cli("check", "dns")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = lines_of(r.stdout)
    for check in ("address mx.example.test", f"FCrDNS {HOST_IP}", "MX example.test", "SPF example.test",
                  "SPF mx.example.test",
                  "DKIM hk1._domainkey.example.test", "DMARC _dmarc.example.test"):
        assert lines.get(check, "").startswith(f"{check}: ok"), r.stdout
    assert f"SPF example.test: ok: pass for {HOST_IP}" in r.stdout
    assert "problem" not in r.stdout
    assert r.stdout.rstrip().endswith("all ok")


def test_each_mistake_is_named_with_the_record_to_publish(hk, dns_server):  # noqa: F811
    printed = hk.run_cli("dns").stdout
    # A key that is not the configured one, for the DKIM record.
    _, other = keygen(hk, "other.test", "hk1")
    other_record = txt_value(other, "hk1._domainkey.other.test.")
    assert other_record != txt_value(printed, "hk1._domainkey.example.test.")
    # A second [[domain]] the DNS server refuses to answer for (not under .test).
    hk.config_path.write_text(hk.config_path.read_text() + '\n[[domain]]\nname = "example.org"\ndkim = false\n')
    with dns_server.batch():
        dns_server.add_mx("example.test", "mail.elsewhere.test", 10)  # MX pointing elsewhere
        dns_server.add_address("mx.example.test", HOST_IP)  # A without the PTR back…
        dns_server.add_ptr(HOST_IP, "vps-1234.hoster.test")  # …whose PTR names another host
        dns_server.add_txt("example.test", "v=spf1 ip4:127.0.0.99 -all")  # SPF not covering the host
        dns_server.add_txt("hk1._domainkey.example.test", other_record)  # another key
        # no _dmarc.example.test at all, no SPF for the HELO name mx.example.test

    r = hk.run_cli("check", "dns")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = lines_of(r.stdout)
    assert lines["address mx.example.test"] == f"address mx.example.test: ok: {HOST_IP}"

    mx = lines["MX example.test"]
    assert mx.startswith("MX example.test: problem: MX names 10 mail.elsewhere.test, not mx.example.test"), mx
    assert mx.endswith("; publish: example.test. IN MX 10 mx.example.test."), mx

    helo = lines["SPF mx.example.test"]
    assert helo.startswith("SPF mx.example.test: problem: no SPF record"), helo
    assert helo.endswith('; publish: mx.example.test. IN TXT "v=spf1 a -all"'), helo
    spf = lines["SPF example.test"]
    assert spf.startswith(f"SPF example.test: problem: fail for {HOST_IP}"), spf
    assert 'publish: example.test. IN TXT "v=spf1 mx -all"' in spf, spf

    dkim = lines["DKIM hk1._domainkey.example.test"]
    assert "problem: p= is a different key" in dkim, dkim
    # The record to publish is the one `hikyaku dns` prints.
    assert txt_value(printed, "hk1._domainkey.example.test.") in dkim.replace('" "', ""), dkim

    dmarc = lines["DMARC _dmarc.example.test"]
    assert dmarc.startswith("DMARC _dmarc.example.test: problem: no DMARC record"), dmarc
    assert dmarc.endswith('; publish: _dmarc.example.test. IN TXT "v=DMARC1; p=quarantine; adkim=r; aspf=r"'), dmarc

    ptr = lines[f"FCrDNS {HOST_IP}"]
    assert ptr.startswith(f"FCrDNS {HOST_IP}: problem: PTR names vps-1234.hoster.test, not mx.example.test"), ptr
    assert "; publish: 10.0.0.127.in-addr.arpa. IN PTR mx.example.test." in ptr, ptr

    # REFUSED is a DNS failure: reported as such, not as a missing record.
    refused = lines["MX example.org"]
    assert refused.startswith("MX example.org: dns failure:"), refused
    assert "publish" not in refused
    assert lines["DMARC _dmarc.example.org"].startswith("DMARC _dmarc.example.org: dns failure:")
    assert lines["DKIM example.org"].startswith("DKIM example.org: skipped: dkim = false")


def test_usage_and_configuration_errors_exit_2(hk, tmp_path):
    r = subprocess.run([HIKYAKU_BIN, "check", "dns"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text('hostname = 5\n')
    r = subprocess.run([HIKYAKU_BIN, "check", "dns", "--config", str(broken)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, r.stderr
    assert f"{broken}:1:" in r.stderr
    # A configured key that cannot be read: the check cannot be made.
    text = hk.config_path.read_text()
    key_line = next(line for line in text.splitlines() if line.startswith("dkim_key = "))
    hk.config_path.write_text(text.replace(key_line, 'dkim_key = "/nonexistent/key.pem"'))
    r = hk.run_cli("check", "dns")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "DKIM example.test: error: cannot read dkim_key /nonexistent/key.pem" in r.stdout, r.stdout
