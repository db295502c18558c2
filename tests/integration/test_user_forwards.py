"""Per-user forwarding: `hikyaku forward set|show|clear` (DATA_DIR/forwards).

The real binary, a real dnsmasq (gmail.test MX → 127.0.0.2, sender.test MX →
127.0.0.4) and the aiosmtpd far sides of test_forward.py (farside.py). The
server is started, `forward set` writes the file, and the server is
applied to the running server with `hikyaku reload` (once with a restart: the
file is what lasts). A forward set this way behaves like a configured hidden
[[forward]]: the copy goes out, a 5xx diverts into the fallback mailbox with
X-Hikyaku-Diverted, the sender never sees a bounce or the address.
Waits are on conditions (wait_for), never sleeps.
"""
import email
import email.policy
import stat

import pytest

from conftest import wait_for
from forward_client import SENDER, Client, message
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import farside  # noqa: F401  (pytest fixture)
from test_reload import idle

ALICE = "alice@example.test"
PRIVATE = "alice.private@gmail.test"


@pytest.fixture
def hk(make_hikyaku, dns_server, farside):  # noqa: F811
    return make_hikyaku(extra=dns_server.toml() + farside.toml('retry = ["1s"]'))


def forward(hk, *args):
    return hk.run_cli("forward", *args)


def set_and_restart(hk, *args):
    r = forward(hk, "set", "alice", *args)
    assert r.returncode == 0, r.stderr
    hk.restart()
    return r


def set_and_reload(hk, *args):
    """`forward set`, then `hikyaku reload`: no restart."""
    r = forward(hk, "set", "alice", *args)
    assert r.returncode == 0, r.stderr
    pid = hk.proc.pid
    answer = hk.run_cli("reload")
    assert answer.returncode == 0 and ": loaded " in answer.stdout, (answer.stdout, answer.stderr)
    assert hk.proc.pid == pid and hk.proc.poll() is None
    return r


def wait_mailbox(hk, name, n, timeout=20):
    return wait_for(lambda: len(hk.messages(name)) >= n and hk.messages(name), timeout=timeout,
                    what=f"{n} message(s) in mailbox {name}")


def wait_spool_empty(hk, timeout=20):
    q = hk.data_dir / "spool" / "queue"
    wait_for(lambda: q.is_dir() and not any(q.iterdir()), timeout=timeout, what="an empty queue")


def test_set_then_start_forwards_hidden(hk, farside):  # noqa: F811
    r = set_and_restart(hk, PRIVATE)
    assert r.stdout.splitlines()[0] == (f"forward for alice: {PRIVATE} "
                                        "(hidden; fallback mailbox:alice; no local copy)")
    assert f'run "hikyaku reload --config {hk.config_path}" (or send SIGHUP)' in r.stdout
    f = hk.data_dir / "forwards"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert f'to = ["{PRIVATE}"]' in f.read_text()

    c = Client(hk)
    c.send(message("to the private address"), rcpt=ALICE)
    [got] = farside.gmail.wait_messages(1)
    assert got.rcpt_tos == [PRIVATE]
    assert f"X-Forwarded-For: {ALICE}\r\n".encode() in got.data
    assert f"X-Forwarded-To: {PRIVATE}\r\n".encode() in got.data  # only in the copy sent to it
    wait_spool_empty(hk)
    assert hk.messages("alice") == []  # no local copy
    assert farside.sender.attempts == []


def test_keep_copy_leaves_a_maildir_copy_and_an_idle_session_stays(hk, farside):  # noqa: F811
    # alice reads her mail by IMAP and is in IDLE while the forward is set
    # and the server reloads: her session is not dropped, and it hears of
    # the copy the new rule keeps.
    hk.set_password("alice", "alice's password")
    raw = idle(hk, "alice's password")
    r = set_and_reload(hk, PRIVATE, "--keep-copy")
    assert "(hidden; fallback mailbox:alice; keeps a local copy)" in r.stdout
    Client(hk).send(message("kept"), rcpt=ALICE)
    farside.gmail.wait_messages(1)
    [copy] = wait_mailbox(hk, "alice", 1)
    assert b"kept" in copy.read_bytes()
    assert raw.line(timeout=20) == b"* 1 EXISTS"
    raw.send(b"DONE\r\n")
    assert raw.until_tagged(b"a3")[-1] == b"a3 OK IDLE terminated"
    raw.close()
    wait_spool_empty(hk)
    assert len(hk.messages("alice")) == 1


def test_refused_copy_is_diverted_to_the_fallback_mailbox(hk, farside):  # noqa: F811
    set_and_reload(hk, PRIVATE, "--fallback", "mailbox:bob")
    farside.gmail.set_mode("reject_rcpt")
    c = Client(hk)
    c.send(message("refused far away"), rcpt=ALICE)
    [copy] = wait_mailbox(hk, "bob", 1)
    raw = copy.read_bytes()
    diverted = email.message_from_bytes(raw, policy=email.policy.compat32).get("X-Hikyaku-Diverted")
    assert diverted is not None and "550 5.7.1" in diverted
    assert b"refused far away" in raw
    wait_spool_empty(hk)
    assert hk.messages("alice") == []
    assert farside.sender.attempts == []  # no bounce to the sender
    seen_by_sender = " ".join(c.replies).lower()
    assert PRIVATE not in seen_by_sender and "alice.private" not in seen_by_sender


def test_clear_and_reload_keeps_mail_in_the_mailbox_again(hk, farside):  # noqa: F811
    set_and_reload(hk, PRIVATE)
    c = Client(hk)
    c.send(message("while forwarded"), rcpt=ALICE)
    farside.gmail.wait_messages(1)
    r = forward(hk, "clear", "alice")
    assert r.returncode == 0, r.stderr
    answer = hk.run_cli("reload")
    assert answer.returncode == 0, answer.stderr
    c.send(message("after clear"), rcpt=ALICE)
    [kept] = wait_mailbox(hk, "alice", 1)
    assert b"after clear" in kept.read_bytes()
    wait_spool_empty(hk)
    assert len(farside.gmail.received()) == 1


def test_show_and_clear(hk):
    r = forward(hk, "show", "alice")
    assert (r.returncode, r.stdout) == (0, "no forward for alice\n")
    r = forward(hk, "show")
    assert (r.returncode, r.stdout) == (0, "no per-user forwards\n")

    assert forward(hk, "set", "alice", PRIVATE, "second@gmail.test").returncode == 0
    assert forward(hk, "set", "bob", "bob.private@gmail.test", "--keep-copy").returncode == 0
    r = forward(hk, "show", "alice")
    assert r.returncode == 0
    assert r.stdout == (f"forward for alice: {PRIVATE}, second@gmail.test "
                        "(hidden; fallback mailbox:alice; no local copy)\n")
    r = forward(hk, "show")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    assert "forward for bob: bob.private@gmail.test (hidden; fallback mailbox:bob; keeps a local copy)" in r.stdout
    # The whole configuration loads with the file (check-config merges it).
    r = hk.run_cli("check-config")
    assert r.returncode == 0, r.stderr

    r = forward(hk, "clear", "alice")
    assert r.returncode == 0 and r.stdout.startswith("forward for alice cleared\n")
    assert forward(hk, "show", "alice").stdout == "no forward for alice\n"
    assert "forward for bob:" in forward(hk, "show").stdout
    r = forward(hk, "clear", "alice")
    assert (r.returncode, r.stdout) == (0, "no forward for alice (nothing to clear)\n")
    assert forward(hk, "clear", "bob").returncode == 0
    assert not (hk.data_dir / "forwards").exists()

    for args in (["clear", "nobody"], ["show", "nobody"]):
        r = forward(hk, *args)
        assert r.returncode == 1 and "no [[mailbox]] named 'nobody'" in r.stderr, r


@pytest.mark.parametrize("args,error", [
    (["nobody", PRIVATE], "no [[mailbox]] named 'nobody'"),
    (["alice", "loop@example.test"], "one of this server's [[domain]]s: forwarding into it would loop"),
    (["alice", "LOOP@Example.Test"], "one of this server's [[domain]]s"),
    (["alice", "not-an-address"], "'not-an-address' is not an email address"),
    (["alice", PRIVATE, "--fallback", "mailbox:ghost"], "no [[mailbox]] named 'ghost'"),
    (["alice", PRIVATE, "--fallback", "bob"], '--fallback: expected "mailbox:NAME"'),
])
def test_bad_input_is_refused(hk, args, error):
    r = forward(hk, "set", *args)
    assert r.returncode == 1, r
    assert error in r.stderr, r.stderr
    assert not (hk.data_dir / "forwards").exists()


def test_a_broken_file_is_reported_with_its_position(hk):
    f = hk.data_dir / "forwards"
    f.write_text('[[user]]\nname = "alice"\nto = ["x@gmail.test"]\ncolour = "red"\n')
    r = hk.run_cli("check-config")
    assert r.returncode == 1
    assert f"{f}:4:1: unknown key 'user.colour'" in r.stderr
    r = forward(hk, "set", "alice", PRIVATE)
    assert r.returncode == 1 and f"fix or remove {f}" in r.stderr
