"""Fixtures for integration tests: the real `hikyaku` binary on loopback.

Every test gets its own temporary data directory, a generated TOML
configuration with free ports on 127.0.0.1, and a server process that is
stopped when the test ends. Tests wait on conditions (ports, files), never on
fixed sleeps.

Every server a test starts must also end cleanly (checked when the test
ends, see Hikyaku.end_problems): exit status 0 after SIGTERM, the "stopped"
line logged, no "BUG:" line (the session exception boundary), no sanitizer
report and no error-level log line unless the test declared it with
`server.expect_log(r"regex")`. A run ended on purpose with kill() (SIGKILL)
is exempt from the exit status and "stopped" checks only.

A peer program that is missing skips a test on a developer's machine but fails
it in CI (CI=true): use require_programs("swaks") inside the test.

Run with Debian's Python: /usr/bin/python3 -m pytest tests/integration
(the python3 first on PATH lacks dkim, spf, aiosmtpd, dnspython).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HIKYAKU_BIN = os.environ.get("HIKYAKU_BIN", str(ROOT / "build" / "src" / "app" / "hikyaku"))
TESTDATA = Path(os.environ.get("HIKYAKU_TESTDATA", str(ROOT.parent / "shared" / "testdata")))


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def not_available(reason):
    """A test cannot run here: a skip on a developer's machine, a failure in
    CI, where scripts/install-deps.sh must have installed everything."""
    if IN_CI:
        pytest.fail(f"not available in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_programs(*names):
    """Fail (CI) or skip (elsewhere) unless every program is on PATH."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        not_available(f"needs {', '.join(missing)} (installed by scripts/install-deps.sh)")


# What a server's log must not contain. Sanitizer runtimes write their
# reports to the server's stderr, which is the log file.
SANITIZER_REPORT = re.compile(
    r"(ERROR|WARNING): (Address|Leak|Thread|Memory|UndefinedBehavior)Sanitizer|"
    r"runtime error: |SUMMARY: \w+Sanitizer")
BUG_LINE = re.compile(r"\bBUG: ")
# spdlog lines are "2026-12-03T06:19:51.123 LEVEL logger: text", or with
# log_format = "json" {"time":…,"level":"LEVEL","logger":…,"msg":"text"}.
ERROR_LINE = re.compile(r'^(\S+ (error|critical) |\{"time":"[^"]*","level":"(error|critical)")')
STOPPED_LINE = re.compile(r'^(\S+ info \S+: stopped|\{"time":"[^"]*","level":"info","logger":"[^"]*","msg":"stopped"\})$',
                          re.M)


def log_problems(text, expected=()):
    """Lines of a server log that make its run unclean."""
    problems = []
    for line in text.splitlines():
        if SANITIZER_REPORT.search(line):
            problems.append(f"sanitizer report: {line}")
        elif BUG_LINE.search(line):
            problems.append(f"bug: {line}")
        elif ERROR_LINE.match(line) and not any(re.search(p, line) for p in expected):
            problems.append(f"unexpected error line: {line}")
    return problems


_ports_handed_out = set()


def _port_share():
    """(index, count) of this pytest-xdist worker: worker `index` takes only
    the ports with (port >> 1) % count == index, so one never hands out a port
    another worker has chosen but not yet bound. Not port % count: Linux gives
    bind(port 0) even ports while it can (the odd ones it keeps for connect),
    so a residue class of odd ports would leave a worker spinning.
    (0, 1) when not under xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count < 2:
        return 0, 1
    return int(worker[2:]) % count, count


def free_port(host="127.0.0.1"):
    """A port nothing listens on now, never the same one twice in a test run:
    the kernel may hand back a port it just gave us, and one configuration
    needs several distinct ports (SMTP, POP3, POP3S, DNS, far sides). Under
    pytest-xdist each worker keeps to its own ports (`_port_share`)."""
    index, count = _port_share()
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if (port >> 1) % count == index and port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port


def asan_options(*extra):
    """ASAN_OPTIONS as the stage set them, plus `extra` ("name=value"): for a
    server started in a way the sanitizer runtime needs told about (under
    ptrace, after an LD_PRELOAD shim). A plain build ignores the variable."""
    return ":".join(o for o in (os.environ.get("ASAN_OPTIONS", ""), *extra) if o)


def wait_for(predicate, timeout=20.0, interval=0.02, what="condition"):
    """Poll `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def maildir_messages(maildir):
    """All message files in a Maildir's new/ and cur/, oldest name first. A
    message that a reader (an IMAP session) moves from new/ to cur/ between
    the two listings is counted once, under its cur/ name."""
    found = {}
    for sub in ("new", "cur"):
        d = Path(maildir) / sub
        if d.is_dir():
            for p in d.iterdir():
                if p.is_file():
                    found[p.name.split(":", 1)[0]] = p  # the unique name, without ":2,FLAGS"
    return sorted(found.values(), key=lambda p: p.name)


class Hikyaku:
    """One hikyaku server process with its own configuration and data."""

    def __init__(self, tmp: Path, extra="", allow_plaintext=False, message_size="1M",
                 hostname="mx.example.test", limits_extra="", tls="self_signed = true", env=None, wrapper=None,
                 data_dir=None, failure_delay="1s", auth_extra="", listen_extra=""):
        """`env`: variables added to the server's environment (LD_PRELOAD of
        tests/faultinject); `wrapper`: a command the server runs under (strace
        ...), which must exec the server as its only child; `data_dir`: another
        data directory (a small tmpfs); `listen_extra`: more [listen] keys
        (http = [...])."""
        self.tmp = tmp
        self.data_dir = Path(data_dir) if data_dir is not None else tmp / "data"
        self.env = env
        self.wrapper = list(wrapper or [])
        self.config_path = tmp / "hikyaku.toml"
        self.log_path = tmp / "hikyaku.log"
        self.smtp_port = free_port()
        self.submission_port = free_port()
        self.submissions_port = free_port()
        self.pop3_port = free_port()
        self.pop3s_port = free_port()
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.hostname = hostname
        self.proc = None
        self._log = None
        self._run_offset = 0          # where the current run's log starts
        self._expected_errors = []    # regexes of error lines a test expects
        self.problems = []            # unclean ends, checked when the test ends
        self.config_path.write_text(f"""
hostname = "{hostname}"
data_dir = "{self.data_dir}"
log_level = "debug"

[listen]
smtp  = ["127.0.0.1:{self.smtp_port}"]
submission  = ["127.0.0.1:{self.submission_port}"]
submissions = ["127.0.0.1:{self.submissions_port}"]
pop3  = ["127.0.0.1:{self.pop3_port}"]
pop3s = ["127.0.0.1:{self.pop3s_port}"]
imap  = ["127.0.0.1:{self.imap_port}"]
imaps = ["127.0.0.1:{self.imaps_port}"]
{listen_extra}

[tls]
{tls}

[auth]
allow_plaintext = {"true" if allow_plaintext else "false"}
failure_delay = "{failure_delay}"
{auth_extra}

[limits]
message_size = "{message_size}"
{limits_extra}

[[domain]]
name = "example.test"

[[mailbox]]
name = "alice"
send_as = ["alice@example.test"]

[[mailbox]]
name = "bob"

[[address]]
address = "alice@example.test"
deliver = ["mailbox:alice"]

[[address]]
address = "bob@example.test"
deliver = ["mailbox:bob"]
{extra}
""")

    @property
    def cert_path(self):
        return self.data_dir / "tls" / "cert.pem"

    def maildir(self, name):
        return self.data_dir / "mailboxes" / name

    def messages(self, name):
        return maildir_messages(self.maildir(name))

    def expect_log(self, pattern):
        """Declare an error-level log line this test provokes on purpose
        (a regex searched in the line); every other error line fails the test."""
        self._expected_errors.append(pattern)
        return self

    def start(self):
        assert self.proc is None
        self._log = open(self.log_path, "ab")
        self._run_offset = self._log.tell()
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen([*self.wrapper, HIKYAKU_BIN, "serve", "--config", str(self.config_path)],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env)
        for port in (self.smtp_port, self.submission_port, self.submissions_port, self.pop3_port, self.pop3s_port,
                     self.imap_port, self.imaps_port):
            wait_for(lambda: self.proc.poll() is not None or port_open(port),
                     what=f"hikyaku to listen on {port}")
            if self.proc.poll() is not None:
                raise AssertionError(f"hikyaku exited with {self.proc.returncode}:\n{self.log_text()}")
        # The listeners open before the spool is resumed and the control
        # socket is bound; "ready" is logged once all of it is in place.
        wait_for(lambda: self.proc.poll() is not None or "hikyaku ready" in self._run_log(),
                 what="hikyaku ready")
        if self.proc.poll() is not None:
            raise AssertionError(f"hikyaku exited with {self.proc.returncode}:\n{self.log_text()}")
        return self

    def server_pid(self):
        """The hikyaku process itself (under a wrapper: the wrapper's child)."""
        if not self.wrapper:
            return self.proc.pid
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        return int(pids[0]) if pids else None

    def stop(self):
        """SIGTERM, wait, and record whether the run ended cleanly."""
        if self.proc is None:
            return
        problems = []
        if self.proc.poll() is None:
            pid = self.server_pid() if self.wrapper else None
            if pid is not None:
                os.kill(pid, signal.SIGTERM)  # the wrapper exits with it
            else:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("did not exit within 20 s of SIGTERM (killed)")
        else:
            problems.append(f"exited by itself before SIGTERM (status {self.proc.returncode})")
        status = self.proc.returncode
        self.proc = None
        self._log.close()
        run_log = self._run_log()
        if status != 0 and not problems:
            problems.append(f"exit status {status} after SIGTERM")
        if not STOPPED_LINE.search(run_log):
            problems.append('no "stopped" line logged')
        self._record(problems + log_problems(run_log, self._expected_errors))

    def kill(self):
        """SIGKILL: the crash the durability contract is about. The run is
        exempt from the clean-end checks except its log's content."""
        if self.proc is None:
            return
        pid = self.server_pid() if self.wrapper else None
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self._log.close()
        self._record(log_problems(self._run_log(), self._expected_errors))

    def _run_log(self):
        with open(self.log_path, "rb") as f:
            f.seek(self._run_offset)
            return f.read().decode(errors="replace")

    def _record(self, problems):
        if problems:
            self.problems.append(f"run of {self.tmp.name} (log from byte {self._run_offset}):\n  "
                                 + "\n  ".join(problems))

    def end_problems(self):
        """Stop the server if it runs; every unclean end of every run."""
        self.stop()
        return self.problems

    def restart(self):
        self.stop()
        return self.start()

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def run_cli(self, *args, input=None):
        r = subprocess.run([HIKYAKU_BIN, *args, "--config", str(self.config_path)], input=input,
                           capture_output=True, text=True, timeout=60)
        reports = [line for line in r.stderr.splitlines() if SANITIZER_REPORT.search(line)]
        assert not reports, f"hikyaku {' '.join(args)}: sanitizer report:\n{r.stderr}"
        return r

    def set_password(self, name, password):
        r = self.run_cli("user", "passwd", name, input=password + "\n")
        assert r.returncode == 0, r.stderr
        return r


@pytest.fixture
def make_hikyaku(tmp_path):
    """Factory: make_hikyaku(extra=..., allow_plaintext=..., message_size=...).

    Loopback only: unless `extra` brings its own [dns] table, each server gets
    a private dnsmasq on 127.0.0.1 (answering *.test) as its resolver, so the
    SPF/DMARC checks of incoming mail never ask the machine's resolvers."""
    servers = []
    resolvers = []

    def make(**kwargs):
        d = tmp_path / f"hk{len(servers)}"
        d.mkdir()
        if "[dns]" not in kwargs.get("extra", ""):
            from dns_server import DnsServer  # imports this module: import late
            resolver = DnsServer().start()
            resolvers.append(resolver)
            kwargs["extra"] = kwargs.get("extra", "") + resolver.toml()
        server = Hikyaku(d, **kwargs)
        servers.append(server)
        return server.start()

    yield make
    problems = []
    for s in servers:
        problems += s.end_problems()
    for r in resolvers:
        r.stop()
    assert not problems, "hikyaku did not end cleanly:\n" + "\n".join(problems)


@pytest.fixture
def hikyaku(make_hikyaku):
    return make_hikyaku()
