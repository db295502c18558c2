"""The sender side of the forwarding tests (test_forward, test_smtp_client,
test_postfix_farside): one original sender, one local recipient whose mail is
forwarded, the message builder and an SMTP client that keeps every reply the
sender saw (the no-leak assertions read them)."""
import smtplib

SENDER = "someone@sender.test"
RCPT = "ituki@example.test"
FORWARD = "ituki-ex@gmail.test"


def message(subject="forward test", body="Hello from the sender.\r\n"):
    return (f"From: Someone <{SENDER}>\r\n"
            f"To: Ituki <{RCPT}>\r\n"
            f"Subject: {subject}\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@sender.test>\r\n"
            f"\r\n{body}").encode()


class Client:
    """Sends through hikyaku and keeps every reply byte the sender saw."""

    def __init__(self, hk):
        self.hk = hk
        self.replies = []

    def send(self, msg, rcpt=RCPT, sender=SENDER):
        with smtplib.SMTP("127.0.0.1", self.hk.smtp_port, timeout=10) as s:
            self.replies.append(repr(s.ehlo()))
            self.replies.append(repr(s.mail(sender)))
            self.replies.append(repr(s.rcpt(rcpt)))
            code, text = s.data(msg)
            self.replies.append(repr((code, text)))
            assert code == 250, text


def config(dns, fs, hidden=True, notify=False, defer_limit="15m", retry='["1s"]', expire="5d",
           fallback='"mailbox:ituki-gm"', extra="", delivery_extra=""):
    """The forwarding tests' configuration: ituki@ keeps a local copy and
    forwards to FORWARD, diverted into ituki-gm; `extra` goes into the
    [[forward]], `delivery_extra` into [delivery]."""
    return f"""
[[mailbox]]
name = "ituki"

[[mailbox]]
name = "ituki-gm"

[[address]]
address = "{RCPT}"
deliver = ["mailbox:ituki", "forward:{FORWARD}"]

[[forward]]
to = "{FORWARD}"
hidden = {"true" if hidden else "false"}
fallback = [{fallback}]
defer_limit = "{defer_limit}"
notify = {"true" if notify else "false"}
{extra}
{dns.toml()}
{fs.toml(f"retry = {retry}{chr(10)}expire = {chr(34)}{expire}{chr(34)}{chr(10)}{delivery_extra}")}
"""
