"""Shell completion as a person uses it: an interactive bash and zsh in tmux
load data/completion/*, and Tab completes peersock's subcommands and options.
(No network is involved; the lab only provides the failure report.)"""
import shutil

import pytest

from lab import REPO, scaled
from tmuxpane import TmuxPane

BASH_FILE = REPO / "data" / "completion" / "peersock.bash"
ZSH_DIR = REPO / "data" / "completion"


def shell_pane(lab, command):
    return TmuxPane(lab, command, env={"PS1": "$ ", "PROMPT": "$ ", "HOME": lab.home, "TERM": "xterm"})


@pytest.mark.deadline(60)
def test_bash_completes_subcommands_and_options(ns_lab):
    if not shutil.which("bash"):
        pytest.skip("no bash")
    pane = shell_pane(ns_lab, "bash --norc --noprofile -i")
    try:
        pane.wait_screen(r"^\$\s*$", scaled(10), "the bash prompt")
        pane.type(f"source {BASH_FILE} && complete -p peersock")
        pane.send_keys("Enter")
        pane.wait_screen(r"^complete -F _peersock peersock$", scaled(10), "the completion being registered")
        # Typing before the next prompt is drawn puts the echo in front of it.
        pane.wait_screen(r"^\$\s*$", scaled(10), "the next bash prompt")
        pane.type("peersock lis")
        pane.send_keys("Tab")
        # 'listen' and 'listen-unix' share the prefix: Tab stops at 'listen'.
        pane.wait_screen(r"^\$ peersock listen\s*$", scaled(10), "Tab completing 'lis' to 'listen'")
        pane.type(" 5900 ")
        pane.send_keys("Tab")
        pane.wait_screen(r"^\$ peersock listen 5900 -\s*$", scaled(10), "Tab offering '-' for the code")
        pane.send_keys("C-u")
        pane.type("peersock --code-w")
        pane.send_keys("Tab")
        pane.wait_screen(r"^\$ peersock --code-words\s*$", scaled(10), "Tab completing an option")
        pane.type("1")
        pane.send_keys("C-u")
        pane.type("peersock --debug=ice,fo")
        pane.send_keys("Tab")
        pane.wait_screen(r"^\$ peersock --debug=ice,forward$", scaled(10), "Tab completing a --debug layer list")
        # Right after the '=' (bash makes the '=' a word of its own): Tab
        # twice lists the layers.
        pane.send_keys("C-u")
        pane.type("peersock listen 5900 --debug=")
        pane.send_keys("Tab")
        pane.send_keys("Tab")
        pane.wait_screen(r"^all\s+auth\s+forward\s+ice\s+quic\s+rendezvous\s+session\s*$", scaled(10),
                         "Tab twice after '--debug=' listing the layers")
        pane.wait_screen(r"^\$ peersock listen 5900 --debug=$", scaled(10), "the line kept after the listing")
        pane.type("ren")
        pane.send_keys("Tab")
        pane.wait_screen(r"^\$ peersock listen 5900 --debug=rendezvous$", scaled(10), "Tab completing the layer")
    finally:
        pane.close()


@pytest.mark.deadline(60)
def test_zsh_completes_subcommands_and_options(ns_lab):
    if not shutil.which("zsh"):
        pytest.fail("zsh is not installed (scripts/setup.sh installs it)", pytrace=False)
    pane = shell_pane(ns_lab, "zsh -f -i")
    try:
        pane.wait_screen(r"^\$\s*$", scaled(10), "the zsh prompt")
        pane.type(f"fpath=({ZSH_DIR} $fpath); autoload -Uz compinit; compinit -u -D; print -r -- comp=$_comps[peersock]")
        pane.send_keys("Enter")
        pane.wait_screen(r"^comp=_peersock$", scaled(10), "_peersock registered for peersock")
        pane.wait_screen(r"^\$\s*$", scaled(10), "the next zsh prompt")
        pane.type("peersock stdio-")
        pane.send_keys("Tab")
        # two candidates: zsh lists them with their descriptions
        pane.wait_screen(r"stdio-a\s+-- connect stdin/stdout", scaled(10), "the stdio-a/stdio-b choices with descriptions")
        pane.type("b ")
        pane.send_keys("Tab")
        pane.wait_screen(r"^\$ peersock stdio-b -\s*$", scaled(10), "'-' offered for the code")
        pane.send_keys("C-u")
        pane.type("peersock --pri")
        pane.send_keys("Tab")
        pane.wait_screen(r"^\$ peersock --print-config\s*$", scaled(10), "Tab completing an option")
        # Options after the subcommand and its arguments, too.
        pane.send_keys("C-u")
        pane.type("peersock listen 5900 --js")
        pane.send_keys("Tab")
        pane.wait_screen(r"^\$ peersock listen 5900 --json\s*$", scaled(10), "Tab completing an option after the subcommand")
        pane.send_keys("C-u")
        pane.type("peersock stdio-b --debug=fo")
        pane.send_keys("Tab")
        # (_values adds the ',' for the next layer; typing a space removes it)
        pane.wait_screen(r"^\$ peersock stdio-b --debug=forward,?\s*$", scaled(10),
                         "Tab completing a --debug layer after the subcommand")
    finally:
        pane.close()
