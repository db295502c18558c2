"""The server's TLS policy (docs/tls.md), against the real binary and
`openssl s_client` / `openssl req`:

* TLS 1.2 is the floor on every TLS listener: SMTP STARTTLS, POP3 STLS,
  POP3S, IMAP STARTTLS and IMAPS refuse a TLS 1.1 or 1.0 client with a
  protocol_version alert, and accept TLS 1.2 (the control that shows the
  client side of the test works). The client is told to allow old
  protocols (`@SECLEVEL=0`), so a refusal is the server's.
* A key that does not match the certificate stops start-up: exit status 1
  and a message naming both files.
* The key file's mode: "other" access stops start-up (exit 1, the file and
  its mode named); group access is a warning and the server serves; 0600
  gives no warning.

Plaintext pipelined after STARTTLS/STLS (CVE-2011-0411) is tested in
test_pop3.py and test_imap.py; the SMTP client's TLS policy in
test_smtp_client.py.
"""
import os
import subprocess

import pytest

from conftest import HIKYAKU_BIN, Hikyaku

OPENSSL = "openssl"


def make_pair(directory, name, cn="mx.example.test"):
    """A self-signed certificate and its key (PEM), the key mode 0600."""
    cert, key = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={cn}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def tls_table(cert, key):
    return f'cert = "{cert}"\nkey = "{key}"'


def s_client(port, protocol, starttls=None):
    """openssl s_client with one protocol version, allowed old ciphers and
    signatures (SECLEVEL=0), so only the server can refuse."""
    cmd = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", f"-{protocol}", "-cipher", "DEFAULT:@SECLEVEL=0"]
    if starttls:
        cmd += ["-starttls", starttls]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


LISTENERS = [("smtp", "smtp_port", "smtp"), ("pop3-stls", "pop3_port", "pop3"), ("pop3s", "pop3s_port", None),
             ("imap-starttls", "imap_port", "imap"), ("imaps", "imaps_port", None)]


@pytest.mark.parametrize("name,attr,starttls", LISTENERS, ids=[x[0] for x in LISTENERS])
def test_tls_1_2_is_the_floor(hikyaku, name, attr, starttls):
    port = getattr(hikyaku, attr)
    # The control: TLS 1.2 is accepted, so the client side works.
    code, out = s_client(port, "tls1_2", starttls)
    assert code == 0 and "Protocol  : TLSv1.2" in out, out[-2000:]
    for old in ("tls1_1", "tls1"):
        code, out = s_client(port, old, starttls)
        assert code != 0, f"{name} accepted {old}:\n{out[-2000:]}"
        # RFC 8446 §6.2 / RFC 8996: the server's protocol_version alert, not a
        # client that could not offer the protocol.
        assert "alert protocol version" in out, out[-2000:]
        assert "no protocols available" not in out, out[-2000:]


def serve_once(tmp_path, tls):
    """Start `hikyaku serve` on a configuration that must not start; return
    (exit status, output). A server that does start is killed by the timeout
    and fails the test."""
    hk = Hikyaku(tmp_path, tls=tls)
    r = subprocess.run([HIKYAKU_BIN, "serve", "--config", str(hk.config_path)], capture_output=True, text=True,
                       timeout=20)
    return r.returncode, r.stdout + r.stderr


def test_key_not_matching_certificate_stops_start(tmp_path):
    cert, _ = make_pair(tmp_path, "one")
    _, other_key = make_pair(tmp_path, "two")
    (tmp_path / "run").mkdir()
    code, out = serve_once(tmp_path / "run", tls_table(cert, other_key))
    assert code == 1, out
    assert f"TLS key {other_key} does not match the certificate {cert}" in out, out


def test_world_readable_key_stops_start(tmp_path):
    cert, key = make_pair(tmp_path, "pair")
    os.chmod(key, 0o644)
    (tmp_path / "run").mkdir()
    code, out = serve_once(tmp_path / "run", tls_table(cert, key))
    assert code == 1, out
    assert f"TLS key {key} has mode 0644: other users may access it; refusing to use it" in out, out


def test_group_readable_key_is_a_warning(make_hikyaku, tmp_path):
    cert, key = make_pair(tmp_path, "pair")
    os.chmod(key, 0o640)
    hk = make_hikyaku(tls=tls_table(cert, key))
    assert hk.proc.poll() is None
    assert f"TLS key {key} has mode 0640: its group may read it" in hk.log_text()
    code, out = s_client(hk.imaps_port, "tls1_2")
    assert code == 0, out[-2000:]


def test_private_key_gives_no_warning(make_hikyaku, tmp_path):
    cert, key = make_pair(tmp_path, "pair")
    hk = make_hikyaku(tls=tls_table(cert, key))
    code, out = s_client(hk.pop3s_port, "tls1_2")
    assert code == 0, out[-2000:]
    assert "has mode" not in hk.log_text()
