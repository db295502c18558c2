"""The fault injector of tests/faultinject (an LD_PRELOAD shim, see the header
of faultinject.c) as pytest fixtures.

    faultinject_lib      the shim, compiled once per test session with cc
    faults               a Faults object for one test; faults are off at the
                         start and turned off at the end

A test starts the server with `env=faults.env()` (LD_PRELOAD and the control
file's name), then turns faults on and off while the server runs:

    faults.on("fdatasync", "EIO", prefix=hk.data_dir / "spool")
    ...                                  # every matching call now fails
    faults.off()

Every injected failure is reported on the server's stderr (its log) as
`faultinject: CALL PATH: STRERROR`; `faults.injected(hk)` counts those lines.
"""
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, asan_options

SOURCE = ROOT / "tests" / "faultinject" / "faultinject.c"


@pytest.fixture(scope="session")
def faultinject_lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("faultinject") / "libfaultinject.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(SOURCE),
                    "-ldl"], check=True, capture_output=True)
    return out


class Faults:
    """The control file of one server: present = faults on, with its settings."""

    def __init__(self, lib, directory):
        self.lib = Path(lib)
        self.control = Path(directory) / "faults.on"

    def env(self):
        # Under the ASan stage the shim comes before the sanitizer's runtime
        # in the library list; ASan refuses to start then unless told that
        # this is meant (the shim only wraps I/O calls, never malloc).
        return {"LD_PRELOAD": str(self.lib), "FAULTINJECT_CONTROL": str(self.control),
                "ASAN_OPTIONS": asan_options("verify_asan_link_order=0")}

    def on(self, calls, errno="EIO", prefix=None, after=0, times=0):
        """Fail `calls` (a name or a list: write, pwrite, fdatasync, fsync,
        rename, link, openat) with `errno` under `prefix`, after `after`
        matching calls succeeded, `times` times (0: every time)."""
        if isinstance(calls, str):
            calls = [calls]
        assert prefix is not None and Path(prefix).is_absolute()
        text = (f"calls={','.join(calls)}\nerrno={errno}\nprefix={prefix}\n"
                f"after={after}\ntimes={times}\n")
        # Written whole, then renamed: the shim never reads half a file.
        tmp = self.control.with_suffix(".tmp")
        tmp.write_text(text)
        os.rename(tmp, self.control)

    def off(self):
        self.control.unlink(missing_ok=True)

    @staticmethod
    def injected(hk, call=None):
        """How many failures were injected into `hk` (of `call`, if given)."""
        tag = f"faultinject: {call} " if call else "faultinject: "
        return sum(1 for line in hk.log_text().splitlines() if line.startswith(tag))


@pytest.fixture
def faults(faultinject_lib, tmp_path):
    f = Faults(faultinject_lib, tmp_path)
    yield f
    f.off()
