"""Several certificates chosen by SNI, and their reload on SIGHUP
(docs/tls.md "Certificates by server name"), against the real binary with
`openssl s_client` and Python's ssl:

* `-servername a.example.test` gets certificate A, `b.example.test` (and
  any one-label name under `*.b.example.test`) gets B, on every TLS
  listener: SMTP, submission, POP3 and IMAP with STARTTLS/STLS, and
  submissions, POP3S, IMAPS; no SNI, or a name no certificate carries, gets
  the default.
* SIGHUP re-reads the files: the next handshake presents the new
  certificate while a connection opened before the reload keeps working;
  the certbot deploy hook (contrib/) sends that SIGHUP.
* A file that fails on reload (garbage, a world-readable key) keeps every
  old certificate and logs an error; fixing it and reloading again works.
* At start, a failing [[tls.certificate]] file stops the server with the
  FILE:LINE:COL that names it.
"""
import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess

from conftest import ROOT, HIKYAKU_BIN, Hikyaku, wait_for

OPENSSL = "openssl"
HOOK = ROOT / "contrib" / "certbot-deploy-hook.sh"

# (listener, port attribute, openssl -starttls protocol or None)
LISTENERS = [("smtp", "smtp_port", "smtp"), ("submission", "submission_port", "smtp"),
             ("submissions", "submissions_port", None), ("pop3", "pop3_port", "pop3"),
             ("pop3s", "pop3s_port", None), ("imap", "imap_port", "imap"), ("imaps", "imaps_port", None)]


def make_cert(directory, name, cn, sans, key=None):
    """A self-signed certificate with subjectAltName DNS `sans`; a new key
    (mode 0600) unless `key` is given. Returns (cert path, key path)."""
    cert = directory / f"{name}-cert.pem"
    key = key or directory / f"{name}-key.pem"
    cmd = [OPENSSL, "req", "-x509", "-days", "2", "-subj", f"/CN={cn}", "-out", str(cert)]
    if sans:
        cmd += ["-addext", "subjectAltName=" + ",".join(f"DNS:{s}" for s in sans)]
    if key.exists():
        cmd += ["-key", str(key)]
    else:
        cmd += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key)]
    subprocess.run(cmd, check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def fingerprint_of_file(cert):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.read_text())).hexdigest()


PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", re.S)


def presented(port, servername=None, starttls=None):
    """The SHA-256 fingerprint of the certificate the server presents to
    `openssl s_client` (with SNI `servername`, or none)."""
    cmd = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}"]
    cmd += ["-servername", servername] if servername else ["-noservername"]
    if starttls:
        cmd += ["-starttls", starttls]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    m = PEM.search(r.stdout)
    assert r.returncode == 0 and m, f"{' '.join(cmd)}:\n{(r.stdout + r.stderr)[-2000:]}"
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(m.group(0))).hexdigest()


def tls_config(default, *more):
    """[tls] body: the default pair, then one [[tls.certificate]] per pair."""
    text = f'cert = "{default[0]}"\nkey = "{default[1]}"\n'
    for cert, key in more:
        text += f'\n[[tls.certificate]]\ncert = "{cert}"\nkey = "{key}"\n'
    return text


def certificates(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    return (make_cert(d, "default", "mx.example.test", ["mx.example.test"]),
            make_cert(d, "a", "a.example.test", ["a.example.test"]),
            make_cert(d, "b", "b.example.test", ["b.example.test", "*.b.example.test"]))


def reload_count(hk, cert):
    return hk.log_text().count(f"SIGHUP: TLS certificate reloaded: {cert}:")


def test_certificate_by_server_name_on_every_listener(make_hikyaku, tmp_path):
    default, a, b = certificates(tmp_path)
    hk = make_hikyaku(tls=tls_config(default, a, b))
    want = {name: fingerprint_of_file(pair[0]) for name, pair in
            (("default", default), ("a", a), ("b", b))}
    # Start-up names what each certificate serves.
    log = hk.log_text()
    assert f"TLS certificate {a[0]}: subject CN=a.example.test, names a.example.test, not after " in log, log
    assert f"TLS certificate {b[0]}: subject CN=b.example.test, names b.example.test, *.b.example.test" in log
    for listener, attr, starttls in LISTENERS:
        port = getattr(hk, attr)
        for servername, expected in (("a.example.test", "a"), ("A.Example.TEST", "a"), ("b.example.test", "b"),
                                     ("x.b.example.test", "b"), ("mx.example.test", "default"),
                                     ("unknown.example.test", "default"), ("x.y.b.example.test", "default"),
                                     (None, "default")):
            got = presented(port, servername, starttls)
            assert got == want[expected], f"{listener} with SNI {servername}: got {got}, want {expected}"


def test_sighup_swaps_certificates_for_new_handshakes_only(make_hikyaku, tmp_path):
    default, a, b = certificates(tmp_path)
    hk = make_hikyaku(tls=tls_config(default, a, b))
    old_a = fingerprint_of_file(a[0])
    assert presented(hk.imaps_port, "a.example.test") == old_a

    # A connection opened before the reload, on certificate A (verified
    # against it, SNI a.example.test).
    ctx = ssl.create_default_context(cafile=str(a[0]))
    imap = ctx.wrap_socket(socket.create_connection(("127.0.0.1", hk.imaps_port), timeout=30),
                           server_hostname="a.example.test")
    lines = imap.makefile("rb")
    try:
        assert lines.readline().startswith(b"* OK"), "IMAP greeting"
        assert hashlib.sha256(imap.getpeercert(binary_form=True)).hexdigest() == old_a

        # New files for A (a new key too), then SIGHUP by the certbot hook.
        a[1].unlink()
        make_cert(a[0].parent, "a", "a.example.test", ["a.example.test", "imap.a.example.test"])
        new_a = fingerprint_of_file(a[0])
        assert new_a != old_a
        before = reload_count(hk, a[0])
        r = subprocess.run(["sh", str(HOOK)], env=dict(os.environ, HIKYAKU_PID=str(hk.server_pid())),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert f"sent SIGHUP to hikyaku (pid {hk.server_pid()})" in r.stderr
        wait_for(lambda: reload_count(hk, a[0]) > before, what="the reload to be logged")
        assert (f"SIGHUP: TLS certificate reloaded: {a[0]}: subject CN=a.example.test, "
                f"names a.example.test, imap.a.example.test, not after ") in hk.log_text()

        # New handshakes get the new A on every kind of listener; B and the
        # default are unchanged.
        for listener, attr, starttls in LISTENERS:
            assert presented(getattr(hk, attr), "a.example.test", starttls) == new_a, listener
        assert presented(hk.imaps_port, "imap.a.example.test") == new_a
        assert presented(hk.imaps_port, "b.example.test") == fingerprint_of_file(b[0])
        assert presented(hk.imaps_port) == fingerprint_of_file(default[0])

        # The connection from before still works, over its old session.
        imap.sendall(b"a1 NOOP\r\n")
        assert lines.readline().startswith(b"a1 OK"), "NOOP after the reload"
        imap.sendall(b"a2 CAPABILITY\r\n")
        assert b"IMAP4rev1" in lines.readline()
        assert lines.readline().startswith(b"a2 OK")
        assert hashlib.sha256(imap.getpeercert(binary_form=True)).hexdigest() == old_a
        imap.sendall(b"a3 LOGOUT\r\n")
        assert lines.readline().startswith(b"* BYE")
    finally:
        lines.close()
        imap.close()

def test_failed_reload_keeps_every_old_certificate(make_hikyaku, tmp_path):
    default, a, b = certificates(tmp_path)
    hk = make_hikyaku(tls=tls_config(default, a, b))
    hk.expect_log(r"SIGHUP: TLS certificates not reloaded, the old ones stay in use: ")
    fingerprints = {name: fingerprint_of_file(pair[0]) for name, pair in (("a", a), ("b", b))}

    def failed_reloads():
        return hk.log_text().count("SIGHUP: TLS certificates not reloaded")

    # A new, good A and a broken B: neither is taken.
    a[1].unlink()
    make_cert(a[0].parent, "a", "a.example.test", ["a.example.test"])
    good_b = b[0].read_text()
    b[0].write_text("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    hk.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: failed_reloads() == 1, what="the failed reload to be logged")
    assert re.search(rf"error hikyaku: SIGHUP: TLS certificates not reloaded, the old ones stay in use: "
                     rf"\S+hikyaku\.toml:\d+:\d+: TLS certificate {re.escape(str(b[0]))}: ", hk.log_text()), \
        hk.log_text()[-2000:]
    assert presented(hk.imaps_port, "a.example.test") == fingerprints["a"]
    assert presented(hk.pop3s_port, "b.example.test") == fingerprints["b"]

    # A key other users may read is refused on reload as at start; `hikyaku
    # reload` says so and exits 1, though the configuration itself loaded.
    b[0].write_text(good_b)
    os.chmod(b[1], 0o644)
    r = hk.run_cli("reload")
    assert r.returncode == 1, r.stdout + r.stderr
    assert ": loaded " in r.stderr and "TLS certificates NOT reloaded, the old ones stay in use: " in r.stderr, r.stderr
    assert failed_reloads() == 2
    assert f"TLS key {b[1]} has mode 0644: other users may access it" in hk.log_text()
    assert presented(hk.imaps_port, "a.example.test") == fingerprints["a"]

    # Fixed: the next reload takes the new A.
    os.chmod(b[1], 0o600)
    before = reload_count(hk, a[0])
    r = hk.run_cli("reload")
    assert r.returncode == 0 and "NOT reloaded" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert reload_count(hk, a[0]) > before
    assert presented(hk.imaps_port, "a.example.test") == fingerprint_of_file(a[0]) != fingerprints["a"]
    assert presented(hk.imaps_port, "b.example.test") == fingerprints["b"]


def test_bad_extra_certificate_stops_start_with_its_position(tmp_path):
    default, a, _ = certificates(tmp_path)
    _, other_key = make_cert(tmp_path / "certs", "other", "other.example.test", ["other.example.test"])
    run = tmp_path / "run"
    run.mkdir()
    hk = Hikyaku(run, tls=tls_config(default, (a[0], other_key)))
    r = subprocess.run([HIKYAKU_BIN, "serve", "--config", str(hk.config_path)], capture_output=True, text=True,
                       timeout=20)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    lines = hk.config_path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text == f'key = "{other_key}"')
    assert f"{hk.config_path}:{line}:7: TLS key {other_key} does not match the certificate {a[0]}" in out, out

