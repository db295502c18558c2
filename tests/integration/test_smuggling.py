"""SMTP smuggling: every malformed end-of-data sequence of
../shared/testdata/smtp-smuggling/eod-sequences.json, sent over a raw socket
inside a DATA body followed by a complete second transaction, must be refused
(550 5.5.2) or stay inside the one message. The Maildir must never hold a
smuggled second message (RFC 5321 §4.1.1.4, §2.3.8; SEC Consult Dec 2023).
"""
import json
import socket

import pytest

from conftest import TESTDATA, wait_for

SUITE = json.loads((TESTDATA / "smtp-smuggling" / "eod-sequences.json").read_text())
VECTORS = SUITE["sequences"]


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.f = self.sock.makefile("rb")

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                return b"".join(lines) or b"<closed>"
            lines.append(line)
            if line[3:4] != b"-":
                return b"".join(lines)

    def send(self, data: bytes):
        self.sock.sendall(data)

    def close(self):
        self.f.close()
        self.sock.close()


def fill(template, rcpt):
    return template.replace("{sender_domain}", "remote.example").replace("{rcpt}", rcpt).encode("latin-1")


def header_section(msg: bytes) -> bytes:
    msg = msg.replace(b"\r\n", b"\n")  # the Maildir stores LF line endings
    end = msg.find(b"\n\n")
    return msg if end < 0 else msg[:end]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_smuggled_transaction_never_becomes_a_message(hikyaku, vector):
    eod = bytes.fromhex(vector["hex"])
    rcpt = "alice@example.test"
    before = fill(SUITE["injection_template"]["before"], rcpt)
    after = fill(SUITE["injection_template"]["after"], rcpt)

    c = Client(hikyaku.smtp_port)
    assert c.reply().startswith(b"220 ")
    c.send(b"EHLO client.example\r\n")
    assert c.reply().startswith(b"250-")
    c.send(b"MAIL FROM:<test@remote.example>\r\nRCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n")
    assert c.reply().startswith(b"250 ")
    assert c.reply().startswith(b"250 ")
    assert c.reply().startswith(b"354 ")
    c.send(before + eod + after)
    final = c.reply()
    # Exactly one answer for the whole thing: refused with 550 5.5.2, or one
    # message queued. Then QUIT must get 221: had the server split the data,
    # the smuggled MAIL/RCPT/DATA replies would come first.
    assert final.startswith(b"550 5.5.2") or final.startswith(b"250 2.0.0"), final
    c.send(b"QUIT\r\n")
    assert c.reply().startswith(b"221 "), "session out of sync after " + vector["id"]
    c.close()
    accepted = final.startswith(b"250")

    # A marker message proves the queue has delivered what came before it.
    m = Client(hikyaku.smtp_port)
    m.reply()
    m.send(b"EHLO client.example\r\nMAIL FROM:<marker@remote.example>\r\nRCPT TO:<" + rcpt.encode() +
           b">\r\nDATA\r\n")
    for _ in range(4):
        m.reply()
    m.send(b"Subject: marker\r\n\r\nmarker\r\n.\r\nQUIT\r\n")
    assert m.reply().startswith(b"250 2.0.0")
    m.close()

    want = 2 if accepted else 1
    files = wait_for(lambda: len(hikyaku.messages("alice")) >= want and hikyaku.messages("alice"),
                     what=f"{want} message(s) in alice")
    bodies = [p.read_bytes() for p in files]
    assert len(bodies) == want, [b[:200] for b in bodies]
    for b in bodies:
        # No stored message has the smuggled transaction's header section.
        assert b"Subject: SMUGGLED" not in header_section(b), b[:400]
    if accepted:
        outer = [b for b in bodies if b"Subject: outer" in b]
        assert len(outer) == 1 and b"smuggled body" in outer[0]
