#!/usr/bin/env python3
"""Seed inputs for the libFuzzer targets, made at run time from the public
suites in ../shared/testdata (each folder's SOURCE.md says where it comes
from). scripts/fuzz.sh runs this into its build directory before fuzzing;
nothing it writes belongs in the repository (the project reads test data
from ../shared/testdata and never copies it: see fuzz/README.md).

Usage: scripts/fuzz-seeds.py OUT_DIR [TESTDATA_DIR]
Writes OUT_DIR/<target>/<name> for the targets below (target = the fuzz
source's stem without "_fuzz") and prints one line per target with the
number of seeds. A suite that is missing is skipped with a note: the
committed seeds of fuzz/corpus/ still run.

What each target gets:
  smtp_command      the smuggling suite's second transaction, command by
                    command, and each command with every bogus end-of-data
                    sequence in it
  smtp_data         the smuggling injection (text, bogus end, a second
                    transaction, the real end) for every sequence, at every
                    chunk size the target's first byte can choose
  tag_list          DKIM-Signature / ARC-* / Authentication-Results values
                    of every suite message, and every DKIM key record
  dmarc_record      Authentication-Results and ARC-Authentication-Results
                    values of every suite message
  spf_record        every TXT/SPF record and exp= text of the openspf
                    RFC 7208 and RFC 4408 suites, pyspf's tests and
                    Stalwart's SPF files
  dns_rdata         those SPF and DKIM records as TXT rdata, and the zones'
                    names as wire-format names (PTR) and MX rdata
  canonicalization, author, forward_transform
                    every suite message (CRLF line endings)
  dkim_verify       Stalwart's DKIM files; the RFC 8463 A.3 message with
                    the A.2 records; dkimpy's signed messages with their
                    records (layout of fuzz/signed_message_input.hpp)
  arc_validate      ValiMail's validation and signing scenarios with their
                    records; Stalwart's ARC files
  imap_command      every imaptest script's commands, variables filled in,
                    after the state the script asks for (first byte 0x84:
                    plaintext allowed and started in the selected state;
                    0x04 with "LOGIN alice pw" for scripts in state auth;
                    0x04 alone for nonauth)
"""
import hashlib
import json
import re
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # python3-yaml (Debian); /usr/bin/python3 has it
    yaml = None


class Seeds:
    def __init__(self, out):
        self.out = Path(out)
        self.count = {}

    def add(self, target, data, label="seed"):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        if not data:
            return
        d = self.out / target
        d.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:60] + "-" + hashlib.sha1(data).hexdigest()[:12]
        path = d / name
        if not path.exists():
            path.write_bytes(data)
            self.count[target] = self.count.get(target, 0) + 1


def crlf(text):
    """LF line endings (the suites' files) to CRLF, leaving CRLF alone."""
    return re.sub(r"(?<!\r)\n", "\r\n", text)


def header_fields(message):
    """(name, value) of each header field of a CRLF message, folding kept."""
    head = message.split("\r\n\r\n", 1)[0]
    fields = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] = fields[-1] + "\r\n" + line
        elif line:
            fields.append(line)
    out = []
    for f in fields:
        if ":" in f:
            name, value = f.split(":", 1)
            out.append((name.strip(), value))
    return out


def signed_input(records, message):
    """The layout of fuzz/signed_message_input.hpp: records, empty line, message."""
    lines = "".join(f"{name} {value}\n" for name, value in records)
    return lines + "\n" + message


# ------------------------------------------------------------ suites

def load_yaml_all(path):
    if yaml is None:
        return []
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def valimail(td):
    """(scenario records, message) of the ARC suites' tests."""
    out = []
    for name in ("arc-draft-validation-tests.yml", "arc-draft-sign-tests.yml", "unused_tests.yml"):
        path = td / "arc-valimail" / name
        if not path.exists():
            continue
        for doc in load_yaml_all(path):
            records = [(k, str(v).replace("\n", "")) for k, v in (doc.get("txt-records") or {}).items()]
            for test_id, t in (doc.get("tests") or {}).items():
                msg = (t or {}).get("message")
                if msg:
                    out.append((f"{name.split('-')[2] if name.startswith('arc') else 'unused'}_{test_id}",
                                records, crlf(msg)))
    return out


def stalwart_signed(td, kind):
    """Stalwart's dkim/ or arc/ files: (name, records, CRLF message)."""
    out = []
    for path in sorted((td / "stalwart-mail-auth" / kind).glob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        head, _, message = text.partition("\n\n")
        records = []
        for line in head.splitlines():
            name, _, value = line.partition(" ")
            if name and value:
                records.append((name, value.strip()))
        out.append((f"stalwart_{kind}_{path.stem}", records, crlf(message)))
    return out


def dkim_messages(td):
    """(name, records, CRLF message) for the DKIM vectors of dkimpy and the RFCs."""
    out = []
    zone = td / "dkim-rfc-vectors" / "rfc8463-A2-dns.zone"
    rfc_records = []
    if zone.exists():
        for line in zone.read_text().splitlines():
            m = re.match(r'(\S+)\.\s+IN\s+TXT\s+"(.*)"', line)
            if m:
                rfc_records.append((m.group(1), m.group(2)))
    for rel in ("dkim-rfc-vectors/rfc8463-A3-signed.eml", "dkim-rfc-vectors/rfc6376-A1-unsigned.eml",
                "dkim-dkimpy/rfc6376.signed.rsa.msg", "dkim-dkimpy/rfc6376.w1258.msg"):
        p = td / rel
        if p.exists():
            out.append((p.stem, rfc_records, crlf(p.read_text(encoding="utf-8", errors="surrogateescape"))))
    dkimpy = td / "dkim-dkimpy"
    if dkimpy.exists():
        def rec(name):
            p = dkimpy / name
            return p.read_text().strip() if p.exists() else None
        pairs = [("ed25519test2.msg", "sed._domainkey.test.ex", rec("eximtest.dns")),
                 ("test.message.baddomain", "test._domainkey.example.com", rec("test.txt"))]
        for msg, name, value in pairs:
            p = dkimpy / msg
            if p.exists() and value:
                out.append((p.name, [(name, value)], crlf(p.read_text(encoding="utf-8", errors="surrogateescape"))))
        for msg in ("test.message", "test2.message", "test_extra.message", "test_nofrom.message",
                    "ed25519test.msg"):
            p = dkimpy / msg
            if p.exists():
                value = rec("test.txt")
                out.append((p.name, [("test._domainkey.example.com", value)] if value else [],
                            crlf(p.read_text(encoding="utf-8", errors="surrogateescape"))))
        mbox = dkimpy / "message.mbox"
        if mbox.exists():
            for k, m in enumerate(re.split(r"(?m)^From .*\n", mbox.read_text(errors="surrogateescape"))):
                if m.strip():
                    out.append((f"mbox{k}", [], crlf(m)))
    return out


def key_records(td):
    out = []
    dkimpy = td / "dkim-dkimpy"
    for p in sorted(dkimpy.glob("*.txt")) + sorted(dkimpy.glob("*.dns")):
        text = p.read_text(errors="surrogateescape").strip()
        if text.startswith("v=") or "p=" in text:
            out.append((p.name, text))
        else:  # a bare p= value (the *_wo_markers files)
            out.append((p.name, "v=DKIM1; k=rsa; p=" + text.replace("\n", "")))
    return out


def spf_suites(td):
    """(label, record or exp text, is_exp) from every SPF suite."""
    out = []
    for name in ("rfc7208-tests.yml", "rfc4408-tests.yml", "pyspf-extra-test.yml"):
        path = td / "spf-rfc7208" / name
        if not path.exists():
            continue
        for doc in load_yaml_all(path):
            for host, recs in (doc.get("zonedata") or {}).items():
                for r in recs or []:
                    if not isinstance(r, dict):
                        continue
                    for typ, v in r.items():
                        if typ in ("TXT", "SPF") and v != "NONE":
                            text = "".join(v) if isinstance(v, list) else str(v)
                            out.append((f"{name.split('-')[0]}_{host}", text))
    for path in sorted((td / "stalwart-mail-auth" / "spf").glob("*.yml")):
        for line in path.read_text(errors="surrogateescape").splitlines():
            m = re.match(r"\s*(spf|exp):\s*(\S+)\s+(.*)$", line)
            if m:
                out.append((f"stalwart_{path.stem}_{m.group(1)}", m.group(3)))
    return out


def smuggling(td):
    path = td / "smtp-smuggling" / "eod-sequences.json"
    if not path.exists():
        return None
    suite = json.loads(path.read_text())
    fill = {"sender_domain": "example.org", "rcpt": "alice@example.test"}
    tpl = suite["injection_template"]
    return ([(s["id"], s["eod"]) for s in suite["sequences"]],
            tpl["before"].format(**fill), tpl["after"].format(**fill))


# ------------------------------------------------------------ imaptest

def imap_seeds(td):
    """(name, first byte, command text) for each imaptest script."""
    out = []
    d = td / "imaptest-scripts"
    if not d.exists():
        return out
    for path in sorted(d.iterdir()):
        if not path.is_file() or path.suffix or path.name.isupper() or path.name.startswith("COPYING"):
            continue
        lines = path.read_text(errors="surrogateescape").split("\n")
        meta = {}
        if lines and re.match(r"^[a-z_]+:", lines[0]):  # a header, up to the empty line
            while lines and lines[0].strip():
                k, _, v = lines.pop(0).partition(":")
                meta[k.strip().lower()] = v.strip()
        multi = meta.get("connections", "1") != "1"
        commands, tags, n = [], set(), 0
        while lines:
            line = lines.pop(0).strip()
            literal = None
            if "{{{" in line:  # "{{{ text }}}": a literal over several lines
                head, _, first = line.partition("{{{")
                text = [first]
                while "}}}" not in text[-1] and lines:
                    text.append(lines.pop(0))
                body, _, tail = "\r\n".join(text).partition("}}}")
                line, literal = head, (body.lstrip("\r\n"), tail)
            if not line or line[0] in "*!#":
                continue
            if multi:
                line = re.sub(r"^\d+\s+", "", line)
            words = line.split(None, 1)
            if not words:
                continue
            first, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
            if first in ("ok", "no", "bad", '""'):
                if not rest or rest.startswith("["):
                    continue  # the tagged reply of a command written alone
                tag, cmd = f"t{n}", rest
            elif first in tags and rest.split(None, 1)[0].lower() in ("ok", "no", "bad"):
                continue  # "tag1 ok": a pipelined command's reply
            elif re.match(r"^[a-z]+\d+$", first) and rest:
                tag, cmd = words[0], rest  # "<tag> <command>"
                tags.add(first)
            else:
                tag, cmd = f"t{n}", line
            n += 1
            cmd = re.sub(r"\$\{?mailbox\}?", "INBOX", cmd)
            cmd = re.sub(r"\$\{?\w+\}?", "1", cmd)
            if literal:
                data, tail = literal
                cmd += "{%d}\r\n%s%s" % (len(data.encode("utf-8", "surrogateescape")), data, tail)
            commands.append(f"{tag} {cmd}\r\n")
        if not commands:
            continue
        state = meta.get("state", "selected")
        script = "".join(commands)
        if state == "nonauth":
            out.append((path.name, 0x04, script))
        elif state in ("auth", "created", "appended"):
            out.append((path.name, 0x04, "a LOGIN alice pw\r\n" + script))
        else:
            out.append((path.name, 0x84, script))
            # The same after an explicit login, for the LOGIN/SELECT path.
            out.append((path.name + "_login", 0x04, "a LOGIN alice pw\r\nb SELECT INBOX\r\n" + script))
    return out


# ------------------------------------------------------------ dns wire

def txt_rdata(text):
    data = text.encode("utf-8", "surrogateescape")
    out = b""
    for k in range(0, max(len(data), 1), 255):
        chunk = data[k:k + 255]
        out += bytes([len(chunk)]) + chunk
    return out


def name_wire(name):
    out = b""
    for label in name.strip(".").split("."):
        b = label.encode("utf-8", "surrogateescape")
        if not b or len(b) > 63:
            return None
        out += bytes([len(b)]) + b
    return out + b"\0"


# ------------------------------------------------------------ main

def main():
    if len(sys.argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    seeds = Seeds(sys.argv[1])
    td = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parents[2] / "shared" / "testdata"
    if not td.is_dir():
        print(f"fuzz-seeds: no test data at {td}: only the committed seeds run")
        return 0
    if yaml is None:
        print("fuzz-seeds: python3-yaml missing: the YAML suites (SPF, ARC) give no seeds")

    # SMTP: the smuggling vectors.
    smug = smuggling(td)
    if smug:
        sequences, before, after = smug
        commands = [c for c in after.split("\r\n") if c and c.split(":")[0] in ("MAIL FROM", "RCPT TO", "DATA")]
        for c in commands:
            seeds.add("smtp_command", c, "command")
            for sid, eod in sequences:
                seeds.add("smtp_command", c + eod, f"{sid}")
        for k, (sid, eod) in enumerate(sequences):
            for chunk in range(17):
                if chunk % 4 == k % 4 or chunk in (0, 16):
                    seeds.add("smtp_data", bytes([chunk]) + (before + eod + after).encode(), f"{sid}_c{chunk}")

    # Messages of every suite, with their key records.
    signed = [(n, r, m, "arc") for n, r, m in valimail(td)] + \
             [(n, r, m, "arc") for n, r, m in stalwart_signed(td, "arc")] + \
             [(n, r, m, "dkim") for n, r, m in stalwart_signed(td, "dkim")] + \
             [(n, r, m, "dkim") for n, r, m in dkim_messages(td)]
    ar_names = ("authentication-results", "arc-authentication-results")
    sig_names = ("dkim-signature", "arc-seal", "arc-message-signature")
    for name, records, message, kind in signed:
        seeds.add("dkim_verify" if kind == "dkim" else "arc_validate", signed_input(records, message), name)
        for target in ("canonicalization", "author", "forward_transform"):
            seeds.add(target, message, name)
        for field, value in header_fields(message):
            lname = field.lower()
            if lname in sig_names or lname in ar_names:
                seeds.add("tag_list", value, lname)
            if lname in ar_names:
                seeds.add("dmarc_record", value, lname)
            if lname == "from":
                seeds.add("author", value, "from")
        for rname, value in records:
            seeds.add("tag_list", value, "key")
            seeds.add("dns_rdata", b"\0" + txt_rdata(value), "txt_key")
            wire = name_wire(rname)
            if wire:
                seeds.add("dns_rdata", b"\2" + wire, "name")
    # dkimpy's key records (good, broken, ed25519, bare keys).
    for rname, value in key_records(td):
        seeds.add("tag_list", value, rname)

    # SPF records.
    for label, text in spf_suites(td):
        seeds.add("spf_record", text, label)
        seeds.add("dns_rdata", b"\0" + txt_rdata(text), "txt_spf")

    # IMAP.
    for name, flags, script in imap_seeds(td):
        seeds.add("imap_command", bytes([flags]) + script.encode("utf-8", "surrogateescape"), name)

    for target in sorted(seeds.count):
        print(f"fuzz-seeds: {target}: {seeds.count[target]} seeds from {td}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
