"""The man page, the shell completions and --help agree with each other and
are installed by `meson install`; every setting's spellings (from the
binary's own settings table) are in README.md's and the man page's tables."""
import json
import os
import re
import shutil
import subprocess

import pytest

from lab import REPO, peersock_bin

MAN = REPO / "docs" / "peersock.1"
README = REPO / "README.md"
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


def settings_table(tmp_path):
    """{name: {"flags": [...], "environment": [...], "file": ["[ice] stun", ...], ...}} for every setting:
    `peersock --print-config --json` (the settings table, plus --config, the code and --code-words),
    without the environment's or the user's config file's influence."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERSOCK_")}
    r = subprocess.run([peersock_bin(), "--print-config", "--json", "--config", str(tmp_path / "absent.conf")],
                       capture_output=True, text=True, timeout=10, env=env)
    assert r.returncode == 0, r.stderr
    table = json.loads(r.stdout)
    assert {"relay", "stun", "turn", "turn-password", "relay-policy", "congestion", "code"} <= table.keys(), table
    return table


def readme_options_rows():
    """The cells (flag, environment, config file key) of each row of README's options table."""
    text = README.read_text()
    section = text.split("\n## Options and configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append([c.replace("\\|", "|").replace("`", "") for c in cells])
    assert rows and rows[0][:3] == ["flag", "environment", "config file key"], rows[:1]
    return [r[:3] for r in rows[2:]]  # without the header and the |---| line


def man_configuration_rows():
    """The cells (flag, environment, config file key) of each line of the man page's CONFIGURATION table."""
    man = MAN.read_text()
    section = man.split("\n.SH CONFIGURATION\n", 1)[1].split("\n.SH ", 1)[0]
    table = section.split("\n.TS\n", 1)[1].split("\n.TE\n", 1)[0]
    lines = table.replace("\\-", "-").splitlines()
    assert lines[0].endswith(".") and lines[1].split("\t") == ["flag", "environment", "config file key"], lines[:2]
    return [(line.split("\t") + ["", ""])[:3] for line in lines[2:]]


def has_word(cell, word):
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", cell) is not None


def has_key(cell, file_key):
    section, key = re.fullmatch(r"(\[[a-z]+\]) ([a-z-]+)", file_key).groups()
    return section in cell and has_word(cell, key)


@pytest.mark.deadline(30)
@pytest.mark.parametrize("doc", ["README.md", "docs/peersock.1"])
def test_every_setting_is_in_the_options_tables(doc, tmp_path, peersock_binary):
    rows = readme_options_rows() if doc == "README.md" else man_configuration_rows()
    help_flags = help_options()
    for name, s in settings_table(tmp_path).items():
        spellings = [(0, f, has_word) for f in s["flags"]] + [(1, e, has_word) for e in s["environment"]] + \
                    [(2, k, has_key) for k in s["file"]]
        assert spellings, f"{name}: no flag, variable or config file key in --print-config --json"
        for column, spelling, found in spellings:
            assert any(found(row[column], spelling) for row in rows), \
                f"{spelling} ({name}) is not in the {['flag', 'environment', 'config file key'][column]} column " \
                f"of {doc}'s options table"
        # The first flag, variable and key of a setting share one row.
        first = [next(((c, sp, f) for c, sp, f in spellings if c == col), None) for col in range(3)]
        first = [x for x in first if x is not None]
        assert any(all(found(row[c], sp) for c, sp, found in first) for row in rows), \
            f"{name}: {', '.join(sp for _, sp, _ in first)} are not on one row of {doc}'s options table"
        for flag in s["flags"]:
            assert flag in help_flags, f"{flag} ({name}) is not in --help"


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
