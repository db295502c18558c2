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
