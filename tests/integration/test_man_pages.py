"""The man pages hikyaku(8) and hikyaku.toml(5) stay complete and render cleanly.

* Every subcommand `hikyaku --help` lists (and every subcommand of those, as
  their own --help lists them) has a SYNOPSIS line in man/hikyaku.8.
* Every key the configuration loader accepts — the key lists of the
  check_keys() calls in src/config/config.cpp, which refuse every other key —
  is documented under its table in man/hikyaku.toml.5 (a `.TP` item whose tag
  is `.B key`), and every key documented there is one the loader accepts. A
  key added to the loader without its man entry fails here.
* `groff -man -Tutf8 -ww` renders both without a warning.
* `cmake --install` puts them in share/man/man8 and man5 beside bin/hikyaku.
"""
import re
import shutil
import subprocess
from pathlib import Path

from conftest import HIKYAKU_BIN, ROOT, require_programs

MAN8 = ROOT / "man" / "hikyaku.8"
MAN5 = ROOT / "man" / "hikyaku.toml.5"
CONFIG_CPP = ROOT / "src" / "config" / "config.cpp"

# check_keys() calls whose table path is a variable, not a literal: which man
# section documents them, by the keys they accept. A new such call must be
# added here (and to the man page).
VARIABLE_PATH_SECTIONS = {
    frozenset({"allow", "deny"}): "[access.LISTENER]",
    frozenset({"sender", "user", "password_file"}): "[[route.account]]",
    frozenset({"user", "password_file", "mechanisms"}): "route.auth",
}
# Tables that are arrays of tables ([[name]]) in TOML.
ARRAY_TABLES = {"domain", "mailbox", "address", "forward", "route", "tls.certificate"}


def unescape(text):
    """Man source to plain words: no font macros, escapes or quotes."""
    text = text.replace("\\-", "-").replace("\\(dq", '"').replace("\\&", "").replace("\\c", "")
    text = re.sub(r"^\.(B|I|BR|BI|IB|RB|RI|IR)\s+", "", text, flags=re.M)
    return text.replace('"', "")


def help_subcommands(*path):
    r = subprocess.run([HIKYAKU_BIN, *path, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    names, in_list = [], False
    for line in r.stdout.splitlines():
        if line.strip().upper() == "SUBCOMMANDS:":
            in_list = True
            continue
        if in_list:
            m = re.match(r"^  (\S+)", line)
            if m:
                names.append(m.group(1))
            elif line.strip() == "" or not line.startswith(" "):
                in_list = False
    return names


def all_commands():
    """Every command path: ("serve",), ("user", "passwd"), ("check", "dns"), …"""
    out = []
    for name in help_subcommands():
        subs = help_subcommands(name)
        out.extend([(name, s) for s in subs] if subs else [(name,)])
    return out


def synopsis(man_text):
    m = re.search(r"^\.SH SYNOPSIS\n(.*?)^\.SH ", man_text, re.S | re.M)
    assert m, "no SYNOPSIS section"
    # One command per .br-separated block, its macro lines joined.
    blocks = m.group(1).split(".br\n")
    return [" ".join(unescape(b).split()) for b in blocks]


def test_every_subcommand_is_in_hikyaku_8():
    commands = all_commands()
    assert ("check", "dns") in commands and ("serve",) in commands, commands
    assert len(commands) >= 15, commands
    text = MAN8.read_text()
    lines = synopsis(text)
    commands_section = unescape(text.split(".SH COMMANDS", 1)[1].split(".SH SIGNALS", 1)[0])
    for path in commands:
        words = " ".join(path)
        assert any(line.startswith(f"hikyaku {words}") for line in lines), f"hikyaku {words}: not in SYNOPSIS"
        assert re.search(rf"^{re.escape(words)}\b", commands_section, re.M), f"hikyaku {words}: no COMMANDS entry"
    assert "--version" in " ".join(lines)


def loader_keys():
    """{section: {keys}} from the check_keys() calls of the loader."""
    source = CONFIG_CPP.read_text()
    calls = re.findall(r'check_keys\(\s*[^,]+,\s*("[^"]*"|\w+),\s*\{([^}]*)\}\s*\)', source)
    assert len(calls) >= 15, "the check_keys() calls moved: update this test"
    out = {}
    for path, body in calls:
        keys = set(re.findall(r'"([^"]+)"', body))
        assert keys, body
        if path.startswith('"'):
            table = path.strip('"')
            if table == "":
                section = "TOP LEVEL"
            elif table in ARRAY_TABLES:
                section = f"[[{table}]]"
            else:
                section = f"[{table}]"
        else:
            section = VARIABLE_PATH_SECTIONS.get(frozenset(keys))
            assert section, (f"check_keys(…, {path}, {sorted(keys)}): a table the test does not know; "
                             "add it to VARIABLE_PATH_SECTIONS and document it in man/hikyaku.toml.5")
        out.setdefault(section, set()).update(keys)
    return out


def man_keys():
    """{section: {keys}}: the `.B key` tags of `.TP` items under each .SH/.SS."""
    out, section, lines = {}, None, MAN5.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r'^\.S[HS] "?([^"]*)"?$', line)
        if m:
            section = m.group(1)
            continue
        if line == ".TP" and i + 1 < len(lines):
            tag = re.match(r"^\.B (\S+)$", lines[i + 1])
            if tag:
                out.setdefault(section, set()).add(tag.group(1).replace("\\-", "-"))
    return out


def test_every_configuration_key_is_in_hikyaku_toml_5():
    accepted = loader_keys()
    documented = man_keys()
    assert "hostname" in accepted["TOP LEVEL"] and "dkim_key" in accepted["[[domain]]"], accepted
    # A top-level key that is a table is documented by its own section.
    documented["TOP LEVEL"] = documented.get("TOP LEVEL", set()) | {
        key for key in accepted["TOP LEVEL"] if f"[{key}]" in documented or f"[[{key}]]" in documented}
    problems = []
    for section, keys in sorted(accepted.items()):
        for key in sorted(keys - documented.get(section, set())):
            problems.append(f"{section} {key}: accepted by the loader, missing from man/hikyaku.toml.5")
        for key in sorted(documented.get(section, set()) - keys):
            problems.append(f"{section} {key}: documented, but the loader refuses it")
    for section in sorted(set(documented) - set(accepted) - {"FILES"}):
        problems.append(f"{section}: a man section with keys the loader has no table for")
    assert not problems, "\n".join(problems)


def test_man_pages_render_without_warnings():
    require_programs("groff")
    for page in (MAN8, MAN5):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0 and r.stderr == "", f"{page.name}:\n{r.stderr}"
        out = subprocess.run(["groff", "-man", "-Tutf8", str(page)], capture_output=True, text=True, timeout=30)
        plain = re.sub(r".\x08", "", out.stdout)  # grotty's overstrike bold and underline
        assert "NAME" in plain and "SEE ALSO" in plain and len(plain) > 2000, plain[:500]


def test_cmake_install_puts_the_man_pages_beside_the_binary(tmp_path):
    build = Path(HIKYAKU_BIN).resolve().parents[2]
    if not (build / "cmake_install.cmake").exists() or shutil.which("cmake") is None:
        require_programs("cmake")
        raise AssertionError(f"{build} is not a CMake build directory (HIKYAKU_BIN={HIKYAKU_BIN})")
    r = subprocess.run(["cmake", "--install", str(build), "--prefix", str(tmp_path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "bin" / "hikyaku").is_file()
    assert (tmp_path / "share" / "man" / "man8" / "hikyaku.8").read_text() == MAN8.read_text()
    assert (tmp_path / "share" / "man" / "man5" / "hikyaku.toml.5").read_text() == MAN5.read_text()
