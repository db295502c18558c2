"""Let's Encrypt end to end, on loopback: certbot obtains a certificate from
pebble (Let's Encrypt's test ACME server), hikyaku serves it by SNI, and a
forced renewal's deploy hook (contrib/certbot-deploy-hook.sh) makes the
running server present the renewed certificate (README "Certificates with
Let's Encrypt (certbot)").

Loopback only: pebble listens on 127.0.0.1 and, with PEBBLE_VA_ALWAYS_VALID=1,
validates nothing, so it contacts no one (its DNS server is set to a
loopback port where nothing answers); certbot talks only to pebble
(--server https://127.0.0.1:PORT/dir, --no-verify-ssl: pebble's HTTPS
certificate is the test's own self-signed one) and binds its HTTP-01
responder to 127.0.0.1.
"""
import grp
import hashlib
import json
import os
import re
import ssl
import subprocess

import pytest

from conftest import ROOT, free_port, port_open, require_programs, wait_for
from test_tls_sni import PEM, make_cert, presented, tls_config

HOOK = ROOT / "contrib" / "certbot-deploy-hook.sh"
NAME = "mail.example.test"


class Pebble:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port = free_port()
        cert, key = make_cert(tmp, "pebble", "127.0.0.1", [], key=None)
        # Its HTTPS certificate names 127.0.0.1 (certbot does not verify it).
        subprocess.run(["openssl", "req", "-x509", "-days", "2", "-subj", "/CN=127.0.0.1", "-key", str(key),
                        "-addext", "subjectAltName=IP:127.0.0.1", "-out", str(cert)], check=True,
                       capture_output=True)
        config = {"pebble": {"listenAddress": f"127.0.0.1:{self.port}",
                             "managementListenAddress": f"127.0.0.1:{free_port()}",
                             "certificate": str(cert), "privateKey": str(key),
                             "httpPort": free_port(), "tlsPort": free_port(),
                             "ocspResponderURL": "", "externalAccountBindingRequired": False}}
        self.config = tmp / "pebble.json"
        self.config.write_text(json.dumps(config))
        self.log_path = tmp / "pebble.log"
        self.proc = None

    def start(self):
        env = dict(os.environ, PEBBLE_VA_ALWAYS_VALID="1", PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0",
                   PEBBLE_AUTHZREUSE="0")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["pebble", "-config", str(self.config), "-dnsserver", f"127.0.0.1:{free_port()}"],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: self.proc.poll() is not None or port_open(self.port), what="pebble to listen")
        assert self.proc.poll() is None, self.log_path.read_text()
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self._log.close()


@pytest.fixture
def pebble(tmp_path):
    require_programs("pebble", "certbot")
    d = tmp_path / "pebble"
    d.mkdir()
    p = Pebble(d).start()
    yield p
    p.stop()


def certbot(tmp_path, pebble, *extra, env=None):
    le = tmp_path / "le"
    cmd = ["certbot", "certonly", "--server", f"https://127.0.0.1:{pebble.port}/dir", "--no-verify-ssl",
           "--standalone", "--http-01-address", "127.0.0.1", "--http-01-port", str(free_port()),
           "--config-dir", str(le / "config"), "--work-dir", str(le / "work"), "--logs-dir", str(le / "logs"),
           "-d", NAME, "--register-unsafely-without-email", "--agree-tos", "--non-interactive", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=dict(os.environ, **(env or {})))
    assert r.returncode == 0, f"certbot failed:\n{r.stdout}\n{r.stderr}"
    return r, le / "config" / "live" / NAME


def leaf_fingerprint(fullchain):
    first = PEM.search(fullchain.read_text()).group(0)
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def test_certbot_renewal_reloads_hikyaku(make_hikyaku, tmp_path, pebble):
    # The first certificate, before hikyaku starts (its configuration names
    # the files, which must exist).
    _, live = certbot(tmp_path, pebble)
    first = leaf_fingerprint(live / "fullchain.pem")

    certs = tmp_path / "certs"
    certs.mkdir()
    default = make_cert(certs, "default", "mx.example.test", ["mx.example.test"])
    hk = make_hikyaku(tls=tls_config(default, (live / "fullchain.pem", live / "privkey.pem")))
    assert presented(hk.imaps_port, NAME) == first
    assert presented(hk.smtp_port, NAME, "smtp") == first

    # A forced renewal: certbot runs the deploy hook, which signals this
    # server (HIKYAKU_PID: never another hikyaku on the machine) and gives
    # the key to our group (HIKYAKU_KEY_GROUP).
    group = grp.getgrgid(os.getgid()).gr_name
    r, _ = certbot(tmp_path, pebble, "--force-renewal", "--deploy-hook", f"sh {HOOK}",
                   env={"HIKYAKU_PID": str(hk.server_pid()), "HIKYAKU_KEY_GROUP": group})
    renewed = leaf_fingerprint(live / "fullchain.pem")
    assert renewed != first
    wait_for(lambda: "SIGHUP: TLS certificate reloaded: " + str(live / "fullchain.pem") in hk.log_text(),
             what="hikyaku to log the reload")
    assert re.search(r"SIGHUP: TLS certificate reloaded: \S+/fullchain\.pem: subject CN=mail\.example\.test, "
                     r"names mail\.example\.test, not after \d{4}-", hk.log_text()), hk.log_text()[-3000:]
    key = (live / "privkey.pem").resolve()
    assert oct(key.stat().st_mode & 0o777) == "0o640" and key.stat().st_gid == os.getgid()

    # The next handshake presents what certbot obtained, on every kind of
    # listener; the default is unchanged.
    assert presented(hk.imaps_port, NAME) == renewed
    assert presented(hk.submissions_port, NAME) == renewed
    assert presented(hk.smtp_port, NAME, "smtp") == renewed
    assert presented(hk.pop3s_port) == hashlib.sha256(
        ssl.PEM_cert_to_DER_cert(default[0].read_text())).hexdigest()
