"""scripts/run.sh (README command 1) is quiet when the build is up to date."""
import os
import re
import subprocess

import pytest

from lab import REPO

RUN = REPO / "scripts" / "run.sh"


@pytest.mark.deadline(600)
def test_run_sh_is_quiet_when_the_build_is_up_to_date(peersock_binary):
    """No set-up or meson/ninja chatter: at most one 'building...' line when
    something had to be built, and nothing at all the second time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERSOCK_")}
    version = re.compile(r"peersock \d+\.\d+\.\d+ \(QUIC: ngtcp2 .*\)\n")
    first = subprocess.run([str(RUN), "--version"], capture_output=True, text=True, timeout=550, env=env,
                           stdin=subprocess.DEVNULL, cwd="/")
    assert first.returncode == 0, first
    assert first.stderr in ("", "run.sh: building...\n"), f"run.sh printed more than one line:\n{first.stderr}"
    assert version.fullmatch(first.stdout), first.stdout
    second = subprocess.run([str(RUN), "--version"], capture_output=True, text=True, timeout=60, env=env,
                            stdin=subprocess.DEVNULL, cwd="/")
    assert second.returncode == 0 and second.stderr == "", f"run.sh is not quiet when up to date:\n{second.stderr}"
    assert version.fullmatch(second.stdout), second.stdout
