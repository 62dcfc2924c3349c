"""The man page, the shell completions and --help agree with each other and
are installed by `meson install`."""
import os
import re
import shutil
import subprocess

import pytest

from lab import REPO, peersock_bin

MAN = REPO / "docs" / "peersock.1"
BASH = REPO / "data" / "completion" / "peersock.bash"
ZSH = REPO / "data" / "completion" / "_peersock"


def help_options():
    out = subprocess.run([peersock_bin(), "--help"], capture_output=True, text=True, timeout=10).stdout
    opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", out))
    assert len(opts) > 10, out
    return opts


@pytest.mark.deadline(30)
def test_man_page_renders_without_warnings():
    if not shutil.which("groff"):
        pytest.fail("groff is not installed (scripts/setup.sh installs groff-base)", pytrace=False)
    r = subprocess.run(["groff", "-t", "-man", "-Tutf8", "-ww", str(MAN)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    text = re.sub(r".\x08", "", r.stdout)  # bold and underline are overstrikes
    assert "EXIT STATUS" in text and "PEERSOCK_CODE" in text, text


@pytest.mark.deadline(30)
def test_every_option_is_documented_and_completed(peersock_binary):
    man = MAN.read_text().replace("\\-", "-")
    bash, zsh = BASH.read_text(), ZSH.read_text()
    for opt in sorted(help_options()):
        assert opt in man, f"{opt} (in --help) is not in docs/peersock.1"
        assert opt in bash, f"{opt} (in --help) is not completed by {BASH.name}"
        assert opt in zsh, f"{opt} (in --help) is not completed by {ZSH.name}"
    for code in range(0, 9):
        assert re.search(rf"^\.B {code}$", man, re.M), f"exit status {code} missing from the man page"
    readme = (REPO / "README.md").read_text()
    for var in ("PEERSOCK_RELAY", "PEERSOCK_STUN", "PEERSOCK_TURN", "PEERSOCK_TURN_USER", "PEERSOCK_TURN_PASSWORD",
                "PEERSOCK_CODE", "PEERSOCK_CONFIG", "PEERSOCK_PROTOCOL"):
        assert var in readme and var in man, f"{var} is not documented in README.md and the man page"


@pytest.mark.deadline(120)
def test_meson_install_puts_man_page_and_completions_in_place(tmp_path, peersock_binary):
    build = REPO / os.environ.get("BUILD_DIR", "build")
    if not (build / "build.ninja").exists():
        pytest.skip(f"no meson build directory at {build}")
    r = subprocess.run(["meson", "install", "-C", str(build), "--no-rebuild", "--destdir", str(tmp_path), "--quiet"],
                       capture_output=True, text=True, timeout=100)
    assert r.returncode == 0, r.stdout + r.stderr
    found = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    for suffix in ("share/man/man1/peersock.1", "share/bash-completion/completions/peersock",
                   "share/zsh/vendor-completions/_peersock", "bin/peersock"):
        assert any(f.endswith(suffix) for f in found), f"meson install did not install {suffix}: {sorted(found)}"
