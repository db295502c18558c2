"""A small runner for Dovecot imaptest's scripted tests (the format described
in ../shared/testdata/imaptest-scripts/FORMAT-scripted_test.md), written for
hikyaku's test suite. The scripts are read from the shared test data; nothing
is copied into the repository.

Supported: header keys (capabilities, connections, messages, state,
ignore_extra_untagged), the three command forms (incl. pipelined tags), "*"
expected and "!" banned untagged replies, $variables (bound on first match;
$tag is the tag of the step's command),
"$" wildcards, "$!ban=e" (no extra element e), "?" replies (may come or
not: ignored), "{{{ ... }}}" literals (several in one command too) and
"~{{{ ... }}}" literal8s, "append" without a message (the next
message of the .mbox, its INTERNALDATE the date of its "From " line), !ifenv/!ifnenv/!else/!endif (no variables set). List
matching: FETCH items unordered with extras allowed; FLAGS unordered, \\Recent
ignored; LIST flags and STATUS items unordered; everything else ordered.
"$N" sequence variables (numbers of messages expunged by another session)
match any number. Not supported, so such scripts are reported as NOT RUN:
$! directives other than $!unordered/$!ordered/$!noextra/$!extra/$!ban, the
ordered "$modseqN" variables (each must be above the last), capabilities the
server lacks. Other variables with modseq in their name ($modseq_seq1,
$highestmodseq) are ordinary variables, bound on first match.

$mailbox is the folder "imaptest": the "auth" state deletes it and every
folder whose name starts with it (as imaptest deletes its test mailboxes),
"created" creates it, "appended" fills it, "selected" selects it.
"""
import re
import socket
import ssl
import urllib.parse
from pathlib import Path


TEST_MAILBOX = "imaptest"


class NotRun(Exception):
    """The script needs something this runner or the server does not have."""


class Failed(AssertionError):
    pass


# ------------------------------------------------------------ tokenizing

class Lit(str):
    """A string token (quoted or literal), distinct from an atom."""


def tokenize(text):
    """IMAP-ish text → nested lists of atoms (str) and strings (Lit)."""
    pos = 0
    stack = [[]]
    n = len(text)
    while pos < n:
        c = text[pos]
        if c in " \r\n":
            pos += 1
        elif c == "(":
            stack.append([])
            pos += 1
        elif c in "[]":
            stack[-1].append(c)  # a response code "[...]" at the start of a token
            pos += 1
        elif c == ")":
            if len(stack) > 1:
                done = stack.pop()
                stack[-1].append(done)
            pos += 1
        elif c == '"':
            pos += 1
            out = []
            while pos < n and text[pos] != '"':
                if text[pos] == "\\" and pos + 1 < n:
                    pos += 1
                out.append(text[pos])
                pos += 1
            pos += 1
            stack[-1].append(Lit("".join(out)))
        elif c in "{~" and re.match(r"~?\{\d+\+?\}\r\n", text[pos:pos + 25]):
            # A literal, or a literal8 "~{n}" (RFC 3516): the same string.
            m = re.match(r"~?\{(\d+)\+?\}\r\n", text[pos:])
            size = int(m.group(1))
            start = pos + m.end()
            stack[-1].append(Lit(text[start:start + size]))
            pos = start + size
        else:
            # An atom; "BODY[HEADER.FIELDS (A B)]<0>" is one atom up to the
            # bracket that closes its section.
            end = pos
            while end < n and text[end] not in ' \r\n()"]':
                if text[end] == "[":
                    close = text.find("]", end)
                    end = n if close < 0 else close
                end += 1
            if end == pos:
                end = pos + 1
            stack[-1].append(text[pos:end])
            pos = end
    while len(stack) > 1:
        done = stack.pop()
        stack[-1].append(done)
    return stack[0]


# ------------------------------------------------------------ matching

class Matcher:
    def __init__(self, variables):
        self.vars = variables

    def atom(self, exp, got):
        if isinstance(got, list):
            return exp == "$"
        if exp == "$":
            return True
        if re.fullmatch(r"\$\d+", exp):
            return got.isdigit()
        m = re.fullmatch(r"\$(\{)?([A-Za-z_][A-Za-z0-9_]*)(?(1)\})", exp)
        if m and not isinstance(exp, Lit):
            name = m.group(2)
            if name in self.vars:
                return str(self.vars[name]).lower() == got.lower()
            self.vars[name] = got
            return True
        exp = self.expand(exp)
        if exp.lower() == "nil" and not isinstance(exp, Lit):
            return got.upper() == "NIL" and not isinstance(got, Lit)
        if isinstance(exp, Lit) or isinstance(got, Lit):
            # imaptest compares strings as C strings (strcasecmp): what
            # follows a NUL is not compared (append-binary relies on it).
            want, have = str(exp).split("\0", 1)[0], str(got).split("\0", 1)[0]
            return want.replace("\r\n", "\n").lower() == have.replace("\r\n", "\n").lower()
        return exp.lower() == str(got).lower()

    def expand(self, s):
        def sub(m):
            name = m.group(2) or m.group(3)
            if name in self.vars:
                return str(self.vars[name])
            return m.group(0)
        # "$$" is a "$" that starts no variable. (Split on it rather than
        # stand it in with a placeholder: a literal8 may hold any octet.)
        out = "$".join(re.sub(r"\$(\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))", sub, piece)
                       for piece in s.split("$$"))
        return type(s)(out) if isinstance(s, Lit) else out

    def seq(self, exp, got, mode="ordered", parent=None):
        # Explicit directives at the start of a list ($!unordered, $!ordered,
        # $!noextra, $!extra) override the defaults.
        directives = []
        while exp and isinstance(exp[0], str) and not isinstance(exp[0], Lit) and exp[0].startswith("$!"):
            directives.append(exp[0].lower())
            exp = exp[1:]
        # "$!ban=e": `e` must not be among the extra elements.
        bans = [d[len("$!ban="):] for d in directives if d.startswith("$!ban=")]
        if bans and any(isinstance(g, str) and g.lower() in bans for g in got):
            return False
        directives = [d for d in directives if not d.startswith("$!ban=")]
        if directives:
            if "$!unordered" in directives:
                mode = "unordered" if "$!noextra" not in directives else "unordered-noextra"
            else:
                mode = "ordered"
        if mode == "unordered-noextra":
            return len(exp) == len(got) and self.seq(exp, got, "unordered")
        if mode == "flags":
            want = [e for e in exp if not (isinstance(e, str) and e.lower() == "\\recent")]
            have = [g for g in got if not (isinstance(g, str) and g.lower() == "\\recent")]
            if len(want) != len(have):
                return False
            remaining = list(have)
            for e in want:
                for i, g in enumerate(remaining):
                    if self.value(e, g):
                        del remaining[i]
                        break
                else:
                    return False
            return True
        if mode == "unordered":
            remaining = list(got)
            for e in exp:
                for i, g in enumerate(remaining):
                    if self.value(e, g):
                        del remaining[i]
                        break
                else:
                    return False
            return True
        if mode == "pairs":
            pairs = {}
            for i in range(0, len(got) - 1, 2):
                pairs.setdefault(str(got[i]).lower(), got[i + 1])
            for i in range(0, len(exp) - 1, 2):
                key = str(exp[i]).lower()
                if key not in pairs:
                    return False
                sub = "flags" if key == "flags" else "ordered"
                if isinstance(exp[i + 1], list) and isinstance(pairs[key], list):
                    if not self.seq(exp[i + 1], pairs[key], sub):
                        return False
                elif not self.value(exp[i + 1], pairs[key]):
                    return False
            return len(exp) % 2 == 0
        if len(exp) != len(got):
            return False
        return all(self.value(e, g) for e, g in zip(exp, got))

    def value(self, exp, got):
        if isinstance(exp, list):
            return isinstance(got, list) and self.seq(exp, got)
        return self.atom(exp, got)

    def response(self, exp, got):
        """A whole untagged response (after '*')."""
        if not exp or not got:
            return False
        # "n FETCH (...)", "STATUS box (...)", "LIST (flags) sep name"
        if len(exp) >= 3 and isinstance(exp[1], str) and exp[1].lower() == "fetch":
            return (len(got) >= 3 and self.value(exp[0], got[0]) and str(got[1]).lower() == "fetch"
                    and isinstance(got[2], list) and isinstance(exp[2], list) and self.seq(exp[2], got[2], "pairs"))
        if str(exp[0]).lower() == "status" and len(exp) == 3 and len(got) == 3:
            return (str(got[0]).lower() == "status" and self.value(exp[1], got[1]) and isinstance(got[2], list)
                    and self.seq(exp[2], got[2], "pairs"))
        if str(exp[0]).lower() in ("list", "lsub") and len(exp) == 4 and len(got) == 4:
            return (str(got[0]).lower() == str(exp[0]).lower() and isinstance(got[1], list)
                    and self.seq(exp[1], got[1], "unordered")
                    and self.value(exp[2], got[2]) and self.value(exp[3], got[3]))
        snapshot = dict(self.vars)
        if str(exp[0]).upper() in ("OK", "NO", "BAD", "BYE", "PREAUTH") and len(got) > len(exp):
            got = got[:len(exp)]  # the human-readable text after the expected part is free
        ok = self.seq(exp, got)
        if not ok:
            self.vars.clear()
            self.vars.update(snapshot)
        return ok


# ------------------------------------------------------------ the script

def expand_literals(lines):
    """Join "{{{" ... "}}}" blocks into one line with inline literals, as
    imaptest's test-parser.c does: a block's lines joined with LF (explicit
    CRs are in the file; strings are compared with CRLF folded to LF), the
    line end before "}}}" dropped. "~{{{" is a literal8 ("~{n}", RFC 3516
    §4.3): sent as one in a command; in a reply it matches a literal or a
    literal8 alike, as in imaptest, where "~" only makes the block keep its
    bytes exactly. A "}}}" line that ends in "{{{" again starts the next
    literal of the same command (MULTIAPPEND, CATENATE)."""
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("{{{"):
            out.append(line)
            i += 1
            continue
        text = ""
        head = line.rstrip()[:-3]
        while True:
            marker = "~" if head.endswith("~") else ""
            if marker:
                head = head[:-1]
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("}}}"):
                body.append(lines[i])
                i += 1
            data = "\n".join(body)
            tail = lines[i][3:] if i < len(lines) else ""
            text += f"{head}{marker}{{{len(data)}}}\r\n{data}"
            if tail.rstrip().endswith("{{{"):
                head = tail.rstrip()[:-3]
                continue
            text += tail
            break
        out.append(text)
        i += 1
    return out


def preprocess(lines):
    out, stack = [], []
    for line in lines:
        s = line.strip()
        if s.startswith("!ifenv"):
            stack.append(False)
        elif s.startswith("!ifnenv"):
            stack.append(True)
        elif s == "!else" and stack:
            stack[-1] = not stack[-1]
        elif s == "!endif" and stack:
            stack.pop()
        elif all(stack):
            out.append(line)
    return out


class Step:
    def __init__(self, conn):
        self.conn = conn
        self.commands = []  # [tag, text, status or None, prefix]
        self.untagged = []
        self.banned = []

    def pending(self):
        return [c for c in self.commands if c[2] is None]


STATUS_WORDS = ("ok", "no", "bad", '""')


def parse_script(text):
    head, _, body = text.partition("\n\n")
    header = {}
    for line in head.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            header[k.strip().lower()] = v.strip()
    multi = int(header.get("connections", "1")) > 1
    raw = body.split("\n")
    lines = [l for l in expand_literals(preprocess(raw)) if l.strip() and not l.startswith("#")]
    steps = []
    step = None
    auto = 0
    for idx, line in enumerate(lines):
        if re.search(r"\$modseq\d", line, re.I):
            raise NotRun("uses ordered $modseqN variables")
        for d in re.findall(r"\$![^ )]*", line):
            if d.lower() not in ("$!unordered", "$!ordered", "$!noextra", "$!extra") and \
                    not d.lower().startswith("$!ban="):
                raise NotRun(f"uses the {d} directive")
        if line.startswith("* "):
            if step is None:
                raise NotRun("untagged reply before any command")
            step.untagged.append(line[2:])
            continue
        if line.startswith("! "):
            step.banned.append(line[2:])
            continue
        if line.startswith("? "):  # a reply that may or may not come
            continue
        conn = 1
        rest = line
        m = re.match(r"(\d+) (.*)", line)
        if multi and m:
            conn, rest = int(m.group(1)), m.group(2)
        words = rest.split(" ", 1)
        first = words[0].lower()
        # A result line for a pending command (method 2 or 3)?
        if step is not None and step.conn == conn:
            pend = step.pending()
            if first in STATUS_WORDS and pend and pend[-1][0].startswith("#auto"):
                pend[-1][2] = first.strip('"')
                pend[-1][3] = words[1] if len(words) > 1 else ""
                continue
            tagged = [c for c in pend if c[0].lower() == first]
            if tagged and len(words) > 1 and words[1].split(" ")[0].lower() in STATUS_WORDS:
                parts = words[1].split(" ", 1)
                tagged[0][2] = parts[0].lower().strip('"')
                tagged[0][3] = parts[1] if len(parts) > 1 else ""
                continue
        # A new command.
        if first in STATUS_WORDS and len(words) > 1:
            tag, text, status = None, words[1], first.strip('"')
        else:
            later = [l for l in lines[idx + 1:]]
            pattern = re.compile(rf"^(\d+ )?{re.escape(words[0])} (ok|no|bad|\"\")\b", re.I)
            if len(words) > 1 and any(pattern.match(l) for l in later):
                tag, text, status = words[0], words[1], None
            else:
                tag, text, status = None, rest, None
        if tag is None:
            auto += 1
            tag = f"#auto{auto}" if status is None else f"#m1-{auto}"
        if step is None or step.conn != conn or not step.pending() or step.untagged or tag.startswith("#"):
            step = Step(conn)
            steps.append(step)
        step.commands.append([tag, text, status, ""])
    for s in steps:
        for c in s.commands:
            if c[2] is None:
                raise NotRun(f"no result given for {c[1]!r}")
    return header, steps


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def mbox_date(line):
    """The INTERNALDATE imaptest gives a message: the date of its mbox
    "From " line ("From user@domain  Fri Feb 22 00:06:23 2008 [+0200]"), as
    an APPEND date-time ("22-Feb-2008 00:06:23 +0200"); None without one."""
    m = re.match(rb"From \S+\s+\w{3} (\w{3})\s+(\d{1,2}) (\d\d:\d\d:\d\d) (\d{4})(?: ([+-]\d{4}))?", line)
    if not m or m.group(1).decode() not in MONTHS:
        return None
    zone = (m.group(5) or b"+0000").decode()
    return f"{int(m.group(2)):02d}-{m.group(1).decode()}-{m.group(4).decode()} {m.group(3).decode()} {zone}"


def read_mbox_dates(path):
    """The INTERNALDATE of each message of read_mbox(path) (or None)."""
    return [mbox_date(line) for line in path.read_bytes().split(b"\n") if line.startswith(b"From ")]


def read_mbox(path):
    msgs, cur = [], None
    for line in path.read_bytes().split(b"\n"):
        if line.startswith(b"From "):
            if cur is not None:
                msgs.append(cur)
            cur = []
            continue
        if cur is not None:
            cur.append(line)
    if cur is not None:
        msgs.append(cur)
    # A message is everything up to the next "From " line (the blank line
    # before it included), as imaptest appends it; CRLF line endings.
    if msgs and msgs[-1] and msgs[-1][-1] == b"":
        msgs[-1].pop()  # the file's final newline
    return [b"\r\n".join(m) + b"\r\n" for m in msgs]


# ------------------------------------------------------------ the client

class Conn:
    def __init__(self, port, context):
        sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock = context.wrap_socket(sock) if context else sock
        self.buf = b""
        self.counter = 0
        self.read_response()

    def read_line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failed("connection closed by the server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_response(self):
        """One response line with its literals, as text (latin-1)."""
        out = b""
        while True:
            line = self.read_line()
            out += line
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return out.decode("latin-1")
            size = int(m.group(1))
            while len(self.buf) < size:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Failed("connection closed inside a literal")
                self.buf += chunk
            out += b"\r\n" + self.buf[:size]
            self.buf = self.buf[size:]

    def send_command(self, tag, text):
        """Send with synchronising literals; returns the tag used."""
        data = f"{tag} {text}".encode("latin-1")
        parts = re.split(rb"(~?\{\d+\}\r\n)", data)  # literals and literal8s
        self.sock.sendall(parts[0])
        i = 1
        while i < len(parts):
            self.sock.sendall(parts[i][:-2] + b"\r\n")
            cont = self.read_line()
            if not cont.startswith(b"+"):
                raise Failed(f"no continuation for literal: {cont!r}")
            self.sock.sendall(parts[i + 1])
            i += 2
        self.sock.sendall(b"\r\n")

    def run(self, tag, text):
        self.send_command(tag, text)
        untagged = []
        while True:
            r = self.read_response()
            if r.startswith(tag + " "):
                return untagged, r[len(tag) + 1:]
            if r.startswith("* "):
                untagged.append(r[2:])

    def next_tag(self):
        self.counter += 1
        return f"t{self.counter}"


def run_script(path, port, user, password, tls_context=None):
    """Run one script; raises NotRun or Failed, returns the number of commands."""
    path = Path(path)
    header, steps = parse_script(path.read_bytes().decode("latin-1"))
    mbox = path.with_name(path.name + ".mbox")
    if not mbox.exists():
        mbox = path.with_name("default.mbox")
    messages = read_mbox(mbox)
    dates = read_mbox_dates(mbox)
    state = header.get("state", "selected").lower()
    nconn = int(header.get("connections", "1"))
    conns = [Conn(port, tls_context) for _ in range(nconn)]
    # $mailbox_url: the mailbox as an IMAP URL path segment (imaptest's
    # mailbox_mutf7_to_url(): UTF-8, percent-encoded, ";" too).
    variables = {"mailbox": TEST_MAILBOX, "mailbox_url": urllib.parse.quote(TEST_MAILBOX, safe="/"),
                 "user": user, "username": user, "password": password, "domain": ""}
    try:
        tag, _ = conns[0].next_tag(), None
        untagged, result = conns[0].run(conns[0].next_tag(), "CAPABILITY")
        caps = set(" ".join(untagged).upper().split())
        for cap in header.get("capabilities", "").upper().split():
            if cap not in caps:
                raise NotRun(f"needs capability {cap}")
        if state != "nonauth":
            for c in conns:
                _, r = c.run(c.next_tag(), f'LOGIN "{user}" "{password}"')
                if not r.upper().startswith("OK"):
                    raise Failed(f"login: {r}")
            # "auth": no test mailboxes (deepest first, so parents go last).
            c = conns[0]
            listed, _ = c.run(c.next_tag(), f'LIST "" "{TEST_MAILBOX}*"')
            names = []
            for line in listed:
                tokens = tokenize(line)
                if len(tokens) >= 4 and str(tokens[0]).upper() == "LIST":
                    names.append(str(tokens[3]))
            for name in sorted(names, key=lambda n: -n.count("/")):
                c.run(c.next_tag(), f'DELETE "{name}"')
            if state != "auth":
                _, r = c.run(c.next_tag(), f"CREATE {TEST_MAILBOX}")
                if not r.upper().startswith("OK"):
                    raise Failed(f"create: {r}")
        next_message = [0]

        def append_text(args):
            # As imaptest: the INTERNALDATE is the mbox "From " line's date.
            index = next_message[0] % len(messages)
            msg = messages[index]
            next_message[0] += 1
            date = f' "{dates[index]}"' if index < len(dates) and dates[index] else ""
            return f"APPEND {args or TEST_MAILBOX}{date} {{{len(msg)}}}\r\n" + msg.decode("latin-1")

        if state in ("appended", "selected"):
            count = header.get("messages", "all")
            n = len(messages) if count == "all" else int(count)
            for _ in range(n):
                c = conns[0]
                _, r = c.run(c.next_tag(), append_text(""))
                if not r.upper().startswith("OK"):
                    raise Failed(f"append: {r}")
        if state == "selected":
            for c in conns:
                c.run(c.next_tag(), f"SELECT {TEST_MAILBOX}")
        count = 0
        for step in steps:
            matcher = Matcher(variables)
            c = conns[step.conn - 1]
            sent = []
            for cmd in step.commands:
                text = matcher.expand(cmd[1])
                words = text.split()
                # As imaptest's append_has_body(): an APPEND without a
                # literal and without CATENATE gets the next mbox message.
                if words and words[0].lower() == "append" and "{" not in text and \
                        not re.search(r"\bcatenate\s*\(", text, re.I):
                    text = append_text(" ".join(words[1:]))
                tag = c.next_tag() if cmd[0].startswith("#") else cmd[0]
                c.send_command(tag, text)
                sent.append((tag, cmd))
            untagged = []
            results = {}
            while len(results) < len(sent):
                r = c.read_response()
                if r.startswith("* "):
                    untagged.append(r[2:])
                    continue
                for tag, cmd in sent:
                    if r.startswith(tag + " "):
                        results[tag] = r[len(tag) + 1:]
            for tag, cmd in sent:
                count += 1
                got = results[tag]
                status = cmd[2]
                if status and not got.lower().startswith(status + " ") and got.lower() != status:
                    raise Failed(f"{path.name}: {cmd[1]!r}: want {status.upper()} {cmd[3]}, got {got!r}")
                want = matcher.expand(cmd[3]) if cmd[3] else ""
                if "$" in want:
                    # Variables in the tagged reply ("ok [appenduid $uidvalidity
                    # $uid]") bind or compare like those of untagged replies.
                    if not matcher.response(tokenize(f"{status} {cmd[3]}"), tokenize(got)):
                        raise Failed(f"{path.name}: {cmd[1]!r}: want {cmd[3]!r}, got {got!r}")
                elif want and not got.lower()[len(status) + 1:].startswith(want.lower()):
                    raise Failed(f"{path.name}: {cmd[1]!r}: want prefix {cmd[3]!r}, got {got!r}")
            parsed = [tokenize(u) for u in untagged]
            # $tag is the tag of the step's command (ESEARCH's "(TAG ...)"),
            # not a variable bound once.
            matcher.vars["tag"] = sent[0][0]
            for exp in step.untagged:
                want = tokenize(exp)
                if not any(matcher.response(want, g) for g in parsed):
                    raise Failed(f"{path.name}: {step.commands[0][1]!r}: no untagged reply matches {exp!r}; got {untagged!r}")
            for exp in step.banned:
                want = tokenize(exp)
                if any(Matcher(dict(variables)).response(want, g) for g in parsed):
                    raise Failed(f"{path.name}: {step.commands[0][1]!r}: banned reply {exp!r} present")
        return count
    finally:
        for c in conns:
            try:
                c.sock.close()
            except OSError:
                pass
