"""README command 1: `scripts/run.sh demo` (scripts/demo.sh) runs the real
thing on one machine -- two network namespaces of its own, Debian's mailbox
server, a web server behind `peersock connect`, curl through `peersock
listen` -- prints each step, the path line and the rate, ends with `demo ok`
and exit 0, and leaves nothing behind. And scripts/run.sh itself is quiet
when the build is up to date."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lab import REPO, peersock_bin, scaled

DEMO = REPO / "scripts" / "demo.sh"
RUN = REPO / "scripts" / "run.sh"


def demo_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERSOCK_")}
    env.update(DEMO_TIMEOUT=str(int(scaled(30))), **extra)
    return env


def leftovers():
    """Namespaces, veth ends and temporary directories of demo runs."""
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return (re.findall(r"psk-demo-\d+-\w+", ns) + re.findall(r"pskd[ab]\d+", links)
            + [str(p) for p in Path("/tmp").glob("peersock-demo.*")])


def check_demo_output(r):
    out = r.stdout
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{out}\nstderr:\n{r.stderr}"
    lines = out.splitlines()
    assert lines and lines[-1] == "demo ok", f"last line is not 'demo ok':\n{out}"
    for step in range(1, 7):
        assert re.search(rf"^demo: {step}/6 ", out, re.M), f"step {step}/6 not printed:\n{out}"
    # The path is the direct one over the demo's own link.
    assert re.search(r"^demo: path: connected directly \(udp, 192\.0\.2\.2:\d+ \u2194 192\.0\.2\.1:\d+\)", out, re.M), \
        f"no direct path line between the two namespaces:\n{out}"
    assert re.search(r"^demo: rate: 64 MiB in [\d.]+ s: [\d.]+ MiB/s", out, re.M), f"no rate line:\n{out}"
    assert re.search(r"^    \| authenticated; forwarding connections to 127\.0\.0\.1:8080", out, re.M), \
        f"bob's peersock lines are not shown:\n{out}"


@pytest.mark.deadline(180)
def test_demo_script_runs_the_real_thing_and_cleans_up(environment_ok, peersock_binary):
    before = leftovers()
    r = subprocess.run(["bash", str(DEMO)], capture_output=True, text=True, timeout=scaled(150),
                       env=demo_env(PEERSOCK_BIN=peersock_binary), stdin=subprocess.DEVNULL)
    check_demo_output(r)
    assert leftovers() == before, f"the demo left {set(leftovers()) - set(before)} behind"


@pytest.mark.deadline(600)
def test_readme_command_1_runs_the_demo(environment_ok, peersock_binary):
    """`scripts/run.sh demo` exactly as README.md says (it builds first if needed)."""
    readme = (REPO / "README.md").read_text()
    assert re.search(r"^scripts/run\.sh demo\s+# 1\. ", readme, re.M), "README's command 1 is not scripts/run.sh demo"
    if os.environ.get("PEERSOCK_BIN") and Path(os.environ["PEERSOCK_BIN"]).resolve() != REPO / "build" / "peersock":
        pytest.skip("run.sh runs build/peersock, not the binary under test")
    before = leftovers()
    r = subprocess.run([str(RUN), "demo"], capture_output=True, text=True, timeout=scaled(550),
                       env=demo_env(), stdin=subprocess.DEVNULL, cwd="/")
    check_demo_output(r)
    assert leftovers() == before, f"the demo left {set(leftovers()) - set(before)} behind"


@pytest.mark.deadline(60)
def test_demo_says_it_needs_root(environment_ok):
    if not shutil.which("setpriv"):
        pytest.skip("no setpriv to run it as another user")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(RUN), "demo"],
                       capture_output=True, text=True, timeout=30, env=demo_env(), stdin=subprocess.DEVNULL, cwd="/")
    assert r.returncode != 0 and r.stdout == "", r
    assert re.fullmatch(r"run\.sh: the demo needs root .*sudo scripts/run\.sh demo.*\n", r.stderr), r.stderr


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
