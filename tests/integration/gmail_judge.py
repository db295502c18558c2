"""A far side that judges mail the way Gmail does (issue 4), for the
end-to-end authentication tests: an aiosmtpd server (normally on 127.0.0.2,
mx.gmail.test) that checks

  * SPF with pyspf on the connecting IP and MAIL FROM (HELO for <>),
  * every DKIM signature with dkimpy (`dkim.DKIM(msg).verify(idx, dnsfunc)`),
  * the ARC chain with dkimpy (`dkim.arc_verify(msg, dnsfunc=f)`),
  * DMARC: relaxed alignment of SPF (MAIL FROM domain) or a passing DKIM d=
    with the From domain, against the From domain's _dmarc TXT (then the
    organizational domain's: the last two labels, enough for *.test),

and refuses with `550 5.7.26` when DMARC fails for a p=reject domain.

ARC trust (documented choice, as Gmail does for forwarders it trusts): when
DMARC fails but the ARC chain validates (cv=pass) and the newest ARC-Seal
was made by a domain in `trusted_sealers`, the judge reads that sealer's
ARC-Authentication-Results; if the sealer saw `dmarc=pass`, the message is
accepted ("arc-override"). A sealer that saw dmarc=fail does not help.

DNS: every lookup goes to the test dnsmasq (dns_server.py): pyspf through
`dns.resolver.default_resolver`, dkimpy through `dnsfunc`.
Run with /usr/bin/python3 (Debian's dkim, spf, aiosmtpd, dnspython).
"""
import email.utils
import re
import threading
from dataclasses import dataclass, field

import dkim
import dns.exception
import dns.resolver
import spf
from aiosmtpd.controller import Controller

REFUSAL = ("550 5.7.26 Unauthenticated email from {domain} is not accepted due to "
           "domain's DMARC policy. gsmtp")


@dataclass
class Verdict:
    spf: str = "none"
    spf_domain: str = ""
    dkim: list = field(default_factory=list)   # [(d, "pass"/"fail")]
    arc: str = "none"
    arc_sealer: str = ""
    arc_aar_dmarc: str = ""
    from_domain: str = ""
    dmarc: str = "none"
    policy: str = "none"
    accepted: bool = True
    reason: str = ""


@dataclass
class Judged:
    mail_from: str
    rcpt_tos: list
    data: bytes
    peer: str
    verdict: Verdict
    reply: str


def org_domain(domain):
    labels = domain.lower().rstrip(".").split(".")
    return ".".join(labels[-2:])


def aligned(a, b):
    return bool(a) and bool(b) and org_domain(a) == org_domain(b)


class Judge:
    def __init__(self, resolver, trusted_sealers=()):
        self.resolver = resolver
        self.trusted = {d.lower() for d in trusted_sealers}
        dns.resolver.default_resolver = resolver  # pyspf asks dnspython's default resolver

    def txt(self, name):
        try:
            answer = self.resolver.resolve(name, "TXT")
        except dns.exception.DNSException:
            return []
        return [b"".join(r.strings).decode() for r in answer]

    def dnsfunc(self, name, timeout=5):
        texts = self.txt(name.decode().rstrip("."))
        return texts[0].encode() if texts else None

    def dmarc_record(self, domain):
        for name in (domain, org_domain(domain)):
            recs = [t for t in self.txt("_dmarc." + name) if t.startswith("v=DMARC1")]
            if len(recs) == 1:
                tags = dict(p.strip().split("=", 1) for p in recs[0].split(";") if "=" in p)
                return tags
        return None

    def judge(self, data, peer_ip, mail_from, helo="unknown"):
        v = Verdict()
        # SPF (RFC 7208 §2.4): MAIL FROM, or postmaster@HELO for <>.
        identity = mail_from or f"postmaster@{helo}"
        v.spf, _ = spf.check2(i=peer_ip, s=identity, h=helo)
        v.spf_domain = identity.rsplit("@", 1)[-1].lower()
        # DKIM: every signature, top to bottom.
        headers, _ = dkim.rfc822_parse(data)
        sigs = [val for name, val in headers if name.lower() == b"dkim-signature"]
        for i, val in enumerate(sigs):
            m = re.search(rb"\bd\s*=\s*([^;\s]+)", val)
            d = m.group(1).decode().lower() if m else ""
            try:
                ok = dkim.DKIM(data).verify(idx=i, dnsfunc=self.dnsfunc)
            except Exception:  # dkimpy raises on some malformed input
                ok = False
            v.dkim.append((d, "pass" if ok else "fail"))
        # ARC.
        try:
            cv, results, _reason = dkim.arc_verify(data, dnsfunc=self.dnsfunc)
            v.arc = cv.decode() if isinstance(cv, bytes) else str(cv)
        except Exception as e:  # noqa: BLE001
            v.arc = f"fail ({e})"
            results = []
        seals = [val for name, val in headers if name.lower() == b"arc-seal"]
        if seals:
            inst = lambda val: int(re.search(rb"\bi\s*=\s*(\d+)", val).group(1))  # noqa: E731
            newest = max(seals, key=inst)
            m = re.search(rb"\bd\s*=\s*([^;\s]+)", newest)
            v.arc_sealer = m.group(1).decode().lower() if m else ""
            n = inst(newest)
            for name, val in headers:
                if name.lower() == b"arc-authentication-results" and inst(val) == n:
                    m = re.search(rb"\bdmarc\s*=\s*(\w+)", val)
                    v.arc_aar_dmarc = m.group(1).decode().lower() if m else ""
        # DMARC (RFC 7489 §3.1 relaxed alignment, §6.6.2 discovery).
        froms = [val for name, val in headers if name.lower() == b"from"]
        addr = email.utils.parseaddr(froms[0].decode(errors="replace"))[1] if len(froms) == 1 else ""
        v.from_domain = addr.rsplit("@", 1)[-1].lower() if "@" in addr else ""
        record = self.dmarc_record(v.from_domain) if v.from_domain else None
        if record is None:
            v.dmarc = "none"
        else:
            v.policy = record.get("p", "none").strip().lower()
            ok = (v.spf == "pass" and aligned(v.spf_domain, v.from_domain)) or any(
                res == "pass" and aligned(d, v.from_domain) for d, res in v.dkim)
            v.dmarc = "pass" if ok else "fail"
        if v.dmarc == "fail" and v.policy == "reject":
            if v.arc == "pass" and v.arc_sealer in self.trusted and v.arc_aar_dmarc == "pass":
                v.reason = "arc-override"
            else:
                v.accepted = False
                v.reason = "dmarc"
        return v


class _Handler:
    def __init__(self, side):
        self.side = side

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        peer = session.peer[0] if session.peer else ""
        v = self.side.judge.judge(bytes(data), peer, envelope.mail_from, session.host_name or "unknown")
        reply = "250 2.0.0 OK gsmtp" if v.accepted else REFUSAL.format(domain=v.from_domain)
        with self.side.lock:
            item = Judged(envelope.mail_from, list(envelope.rcpt_tos), bytes(data), peer, v, reply)
            self.side.attempts.append(item)
            if v.accepted:
                self.side.messages.append(item)
        return reply


class GmailJudge:
    """The judging far side on HOST:PORT (PORT shared with farside.py's sides)."""

    def __init__(self, host, port, resolver, trusted_sealers=()):
        self.host, self.port = host, port
        self.judge = Judge(resolver, trusted_sealers)
        self.lock = threading.Lock()
        self.messages, self.attempts = [], []
        self.controller = None

    def start(self):
        self.controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                     server_hostname="mx.gmail.test")
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_attempts(self, n, timeout=30.0):
        from conftest import wait_for

        def got():
            with self.lock:
                return len(self.attempts) >= n
        wait_for(got, timeout=timeout, what=f"{n} attempt(s) at the gmail judge")
        with self.lock:
            return list(self.attempts)
