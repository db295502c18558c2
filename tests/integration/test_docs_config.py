"""The configurations shown to users in README.md, docs/gmail.md and docs/gateway.md are valid:
`hikyaku check-config` accepts every ```toml block once the files it names exist (and
names each one missing before; the system user it names is swapped for `nobody`), and refuses a broken one with FILE:LINE:COL."""
import re
import subprocess

import pytest

from conftest import HIKYAKU_BIN, ROOT

DOCS = [ROOT / "README.md", ROOT / "docs" / "gmail.md", ROOT / "docs" / "gateway.md"]
# The path values of a configuration (config.cpp's path_value keys).
FILE_VALUE = re.compile(r'^(\s*(?:cert|key|secret_file|dkim_key|public_suffix_list|password_file)\s*=\s*)"([^"]+)"',
                        re.M)


def toml_blocks(path):
    text = path.read_text()
    return re.findall(r"```toml\n(.*?)```", text, re.S)


def one_document(blocks):
    """The blocks as the one configuration file they describe. A later block
    that shows a table again ("[delivery]" with more keys, in the section
    that explains them) adds its keys to that table; [[arrays]] repeat."""
    sections = []  # [header line or "", lines]
    where = {}
    for block in blocks:
        current = None
        for line in block.splitlines():
            header = re.match(r"^\[([^\[\]]+)\]\s*(#.*)?$", line)
            if header or line.startswith("[[") or current is None:
                name = header.group(1).strip() if header else None
                if name is not None and name in where:
                    current = where[name]
                    continue
                current = [line if (header or line.startswith("[[")) else "", []]
                sections.append(current)
                if name is not None:
                    where[name] = current
                if header or line.startswith("[["):
                    continue
            current[1].append(line)
    return "\n".join("\n".join(([h] if h else []) + body) for h, body in sections) + "\n"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_configuration_is_valid(doc, tmp_path):
    blocks = toml_blocks(doc)
    assert blocks, f"no toml block in {doc}"
    # README shows the [srs] table after [[forward]]; TOML allows it.
    config = tmp_path / "hikyaku.toml"
    # The documented system user (user = "hikyaku") is made on install, not
    # here: check-config is pointed at one every Debian system has.
    text = re.sub(r'^user = "[^"]*"', 'user = "nobody"', one_document(blocks), flags=re.M)
    config.write_text(text)
    # check-config also wants every file the configuration names (keys,
    # certificates, secrets): first it names each one missing here...
    r = subprocess.run([HIKYAKU_BIN, "check-config", "--config", str(config)],
                       capture_output=True, text=True, timeout=30)
    named = FILE_VALUE.findall(text)
    assert named, "the documented configuration names its key files"
    if r.returncode != 0:
        errors = [l for l in r.stderr.splitlines() if ": cannot read " in l]
        assert errors and len(errors) + 1 == len(r.stderr.splitlines()), r.stderr
    # ...then, with those files in place (paths moved under tmp_path), it is ok.
    files = tmp_path / "files"

    def existing(m):
        path = files / m.group(2).lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
        path.chmod(0o600)  # a relay password file must not be world-readable
        return f'{m.group(1)}"{path}"'
    config.write_text(FILE_VALUE.sub(existing, text))
    r = subprocess.run([HIKYAKU_BIN, "check-config", "--config", str(config)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_check_config_reports_position(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('hostname = "mx.example.test"\n[limits]\nrecipients = "many"\n')
    r = subprocess.run([HIKYAKU_BIN, "check-config", "--config", str(config)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"{config}:3:14: limits.recipients: expected an integer" in r.stderr
