"""The configurations shown to users in README.md and docs/gmail.md are valid:
`hikyaku check-config` accepts every ```toml block, and refuses a broken one with
FILE:LINE:COL."""
import re
import subprocess

import pytest

from conftest import HIKYAKU_BIN, ROOT

DOCS = [ROOT / "README.md", ROOT / "docs" / "gmail.md"]


def toml_blocks(path):
    text = path.read_text()
    return re.findall(r"```toml\n(.*?)```", text, re.S)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_configuration_is_valid(doc, tmp_path):
    blocks = toml_blocks(doc)
    assert blocks, f"no toml block in {doc}"
    # README shows the [srs] table after [[forward]]; TOML allows it.
    config = tmp_path / "hikyaku.toml"
    config.write_text("\n".join(blocks))
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
