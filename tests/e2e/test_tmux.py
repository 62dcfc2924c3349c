"""peersock used as a person would, in a terminal (tmux): type the code at the
prompt with Tab completion of the nameplate and the words, watch the status
line, use the tunnel, press Ctrl-C."""
import re
import shlex

import pytest

import lab as labmod

from lab import (CODE_RE, LISTEN_PORT, TARGET_PORT, peersock_bin, scaled)
from tmuxpane import TmuxPane


def pane_command(lab, args):
    """The shell command for the pane: peersock inside the test's namespace,
    with the test's relay and no STUN/TURN, and a clean environment."""
    env = lab.peer_env()
    keep = {k: env[k] for k in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "LC_ALL", "PATH") if k in env}
    argv = ["ip", "netns", "exec", lab.ns.name, "env", *[f"{k}={v}" for k, v in keep.items()],
            peersock_bin(), "--relay", lab.relay_url, "--stun", "", "--turn", "", *args]
    return shlex.join(argv)


@pytest.mark.deadline(90)
def test_prompt_with_tab_completion_and_status_line(lab):
    nbytes = 1 << 20
    target = lab.helper("target server", ["server", "--port", str(TARGET_PORT), "--bytes", str(nbytes),
                                          "--timeout", str(int(scaled(80)))])
    target.wait_event("listening", scaled(15), what="the target server to listen")
    gen = lab.peersock("peersock connect", ["connect", f"127.0.0.1:{TARGET_PORT}"])
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    nameplate, *words = code.split("-")
    lab.note(f"code {code}")

    pane = TmuxPane(lab, pane_command(lab, ["listen", str(LISTEN_PORT), "-"]))
    try:
        pane.wait_screen(r"Enter the connection code \(Tab completes\):\s*$", scaled(15), "the code prompt")

        # Tab on the empty line completes the nameplate: it is the only one
        # claimed on this mailbox server, and the list comes from the server.
        pane.send_keys("Tab")
        pane.wait_screen(rf"Tab completes\): {re.escape(nameplate)}-$", scaled(10),
                         "the nameplate completed by Tab")

        # Each word: its first three letters and Tab when they are unique in
        # the word list; otherwise Tab twice lists the candidates (checked
        # once), then the fourth letter (unique in BIP-39) and Tab. A
        # three-letter word ("act", also the start of "action") is typed
        # whole, with its dash.
        wordlist = set(labmod.wordlist())
        listed_once = False
        typed = f"{nameplate}-"
        for i, word in enumerate(words):
            want = typed + word + "-"
            screen_re = rf"Tab completes\): {re.escape(want)}$"
            if len(word) == 3:
                pane.type(word + "-")
            elif sum(1 for w in wordlist if w.startswith(word[:3])) == 1:
                pane.type(word[:3])
                pane.send_keys("Tab")
            else:
                pane.type(word[:3])
                if not listed_once:
                    pane.send_keys("Tab", "Tab")
                    others = sorted(w for w in wordlist if w.startswith(word[:3]) and w != word)
                    pane.wait_screen(rf"(?<![a-z-]){re.escape(others[0])}(?![a-z-])", scaled(5),
                                     f"the candidates for {word[:3]!r} listed after two Tabs")
                    listed_once = True
                pane.type(word[3])
                pane.send_keys("Tab")
            pane.wait_screen(screen_re, scaled(5), f"word {i + 1} ({word}) completed")
            typed = want
        pane.send_keys("Enter")

        # The status line reaches "connected" (the permanent lines say more).
        pane.wait_screen(r"^authenticated; forwarding connections", scaled(30), "the authenticated line")
        pane.wait_screen(r"^connected, direct.*\| sent .*\| received .*\| \d+ connections?", scaled(10),
                         "the status line in state connected")

        client = lab.helper("tcp client", ["client", "--port", str(LISTEN_PORT), "--bytes", str(nbytes),
                                           "--connect-timeout", str(int(scaled(10))), "--timeout", str(int(scaled(60)))])
        done = client.wait_event("done", scaled(60), what="the transfer through the tunnel")
        lab.check(done.get("sent") == nbytes and done.get("recv") == nbytes,
                  f"transfer incomplete: {done}")
        # The counters on the status line reach the megabyte sent each way.
        pane.wait_screen(r"sent 1\.0 MiB .*received 1\.0 MiB", scaled(10),
                         "the status line counting 1.0 MiB each way")

        pane.send_keys("C-c")
        rc = pane.wait_exit(scaled(10), "Ctrl-C must end peersock")
        lab.check(rc == 130, f"peersock exited with status {rc} after Ctrl-C, expected 130")
        screen = pane.screen()
        lab.check(re.search(r"^Sent 1\.0 MiB, received 1\.0 MiB in ", screen, re.MULTILINE) is not None,
                  "no closing summary line after Ctrl-C:\n" + screen)
    finally:
        pane.close()


@pytest.mark.deadline(60)
def test_prompt_reports_typo_and_keeps_the_line(lab):
    pane = TmuxPane(lab, pane_command(lab, ["listen", str(LISTEN_PORT), "--join"]))
    try:
        pane.wait_screen(r"Enter the connection code \(Tab completes\):\s*$", scaled(15), "the code prompt")
        pane.type("7-notaword-zoo")
        pane.send_keys("Enter")
        pane.wait_screen(r"'notaword' is not a code word", scaled(5), "the error under the prompt")
        pane.wait_screen(r"Tab completes\): 7-notaword-zoo$", scaled(5), "the line kept for correcting")
        # Ctrl-W removes the last word, Ctrl-U the rest; Ctrl-C cancels with 130.
        pane.send_keys("C-w")
        pane.wait_screen(r"Tab completes\): 7-notaword-$", scaled(5), "Ctrl-W deleting one word")
        pane.send_keys("C-c")
        rc = pane.wait_exit(scaled(10), "Ctrl-C at the prompt")
        lab.check(rc == 130, f"exit status {rc} after Ctrl-C at the prompt, expected 130")
    finally:
        pane.close()


@pytest.mark.deadline(60)
def test_generating_side_status_line_counts_while_waiting(lab):
    pane = TmuxPane(lab, pane_command(lab, ["connect", f"127.0.0.1:{TARGET_PORT}"]))
    try:
        pane.wait_screen(r"^Connection code: (\d+-[a-z-]+)$", scaled(15), "the code line")
        pane.wait_screen(rf"^On the other side run: peersock --relay {re.escape(lab.relay_url)} listen {TARGET_PORT} "
                         rf"--join$", scaled(5), "the command for the other side (our relay, never the code)")
        # The status line is redrawn every second: its counter moves on.
        pane.wait_screen(r"^waiting for the other side\.\.\. 0s$", scaled(10), "the waiting status line")
        pane.wait_screen(r"^waiting for the other side\.\.\. [2-9]s$", scaled(10), "the status line counting")
        pane.send_keys("C-c")
        rc = pane.wait_exit(scaled(10), "Ctrl-C while waiting")
        lab.check(rc == 130, f"exit status {rc} after Ctrl-C, expected 130")
        lab.check(re.search(r"waiting for the other side\.\.\. \d+s\n\[exit", pane.screen()) is None,
                  "the status line was left on the screen:\n" + pane.screen())
    finally:
        pane.close()


@pytest.mark.deadline(60)
@pytest.mark.parametrize("flag", [None, "--status"])
def test_stdio_status_line_only_on_request(lab, flag):
    """stdio-a/stdio-b may be an ssh ProxyCommand whose stderr is ssh's own
    terminal: no redrawn line there unless --status asks for it."""
    args = ([flag] if flag else []) + ["stdio-a"]
    pane = TmuxPane(lab, pane_command(lab, args) + " < /dev/null > /dev/null")
    try:
        pane.wait_screen(r"^Connection code: \d+-[a-z-]+$", scaled(15), "the code line")
        if flag:
            pane.wait_screen(r"^waiting for the other side\.\.\. [1-9]s$", scaled(10), "the status line, counting")
        else:
            pane.wait_screen(r"^Waiting for the other side\.\.\.$", scaled(10), "the plain 'Waiting' line")
            lab.check(re.search(r"waiting for the other side\.\.\. \d+s", pane.screen()) is None,
                      "a status line was drawn for stdio without --status:\n" + pane.screen())
        pane.send_keys("C-c")
        lab.check(pane.wait_exit(scaled(10), "Ctrl-C") == 130, "not exit 130 after Ctrl-C")
    finally:
        pane.close()


@pytest.mark.deadline(120)
def test_readme_tar_example_ends_by_itself(lab, tmp_path):
    """README: `tar c photos | peersock stdio-a` and, at a terminal,
    `peersock stdio-b CODE | tar x`. The receiver's stdin is the terminal: it
    sends nothing (EOF at once, as --recv-only), so both sides end with exit
    0 as soon as the data is written -- nobody presses Ctrl-D."""
    import hashlib
    import os
    import tarfile
    src = tmp_path / "photos"
    src.mkdir()
    rng = __import__("random").Random(7)
    want = {}
    for i in range(5):
        data = rng.randbytes(700_000 + i * 1000)
        (src / f"img{i}.jpg").write_bytes(data)
        want[f"img{i}.jpg"] = hashlib.sha256(data).hexdigest()
    archive = tmp_path / "photos.tar"
    with tarfile.open(archive, "w") as t:
        t.add(src, arcname="photos")
    dst = tmp_path / "out"
    dst.mkdir()
    os.chmod(tmp_path, 0o755)

    sender = lab.peersock("peersock stdio-a (tar c)", ["stdio-a"], stdio=True)
    code = sender.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    import threading

    def feed():  # as `tar c photos |`: the pipe takes more once the tunnel is up
        try:
            sender.proc.stdin.write(archive.read_bytes())
        finally:
            sender.proc.stdin.close()
    threading.Thread(target=feed, daemon=True).start()
    receiver = (f"( {pane_command(lab, ['stdio-b', code])}; echo \"[peersock exit $?]\" >&2 ) "
                f"| tar x -C {shlex.quote(str(dst))}")
    pane = TmuxPane(lab, receiver)
    try:
        m = pane.wait_screen(r"\[peersock exit (\d+)\]", scaled(60),
                             "the receiving peersock to end by itself (stdin is the terminal)")
        lab.check(m.group(1) == "0", f"the receiving peersock exited with {m.group(1)}:\n{pane.screen()}")
        lab.check(pane.wait_exit(scaled(10), "tar x") == 0, "tar x failed:\n" + pane.screen())
        # stdin is the terminal: progress was shown, and the summary has the average rate.
        lab.check(re.search(r"^Sent 0 B, received 3\.\d MiB in \S+ \(average [\d.]+ [KMG]?i?B/s\)\.$", pane.screen(),
                            re.MULTILINE) is not None, "no summary with the average rate:\n" + pane.screen())
        rc = sender.wait_exit(scaled(10), what="the sending side must end once the data is delivered")
        lab.check(rc == 0, f"the sending peersock exited with {rc}")
        got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (dst / "photos").iterdir()}
        lab.check(got == want, f"the extracted files differ: {sorted(got)} vs {sorted(want)}")
    finally:
        pane.close()


@pytest.mark.deadline(90)
def test_send_only_reads_a_terminal(lab):
    """--send-only: the side sends what is typed at its terminal even though
    stdin is one, and ends its run once the typed input ends (Ctrl-D)."""
    receiver = lab.peersock("peersock stdio-b", ["stdio-b"], stdio=True)
    receiver.proc.stdin.close()  # a pipe at EOF: it sends nothing either way
    code = receiver.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    pane = TmuxPane(lab, pane_command(lab, ["--send-only", "stdio-a", code]) + " > /dev/null")
    try:
        pane.wait_screen(r"authenticated", scaled(30), "authentication")
        pane.type("hello through the tunnel")
        pane.send_keys("Enter")
        pane.send_keys("C-d")
        lab.check(pane.wait_exit(scaled(20), "the sender after Ctrl-D") == 0, "sender not exit 0:\n" + pane.screen())
        rc = receiver.wait_exit(scaled(20), what="the receiver")
        lab.check(rc == 0, f"receiver exited with {rc}")
        out = receiver.proc.stdout.read()
        lab.check(b"hello through the tunnel" in out, f"the receiver wrote {out!r}")
    finally:
        pane.close()


@pytest.mark.deadline(90)
def test_stdio_data_on_the_terminal_is_not_overdrawn(lab):
    """stdout is the terminal: the status line is erased before the first
    byte reaches it and not drawn again, so the program's output stays as
    it was written (no `148.3 MiB/s2147483648`)."""
    sender = lab.peersock("peersock stdio-a", ["stdio-a"], stdio=True)
    code = sender.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    pane = TmuxPane(lab, pane_command(lab, ["stdio-b", code]))
    try:
        pane.wait_screen(r"authenticated", scaled(30), "authentication")
        lines = [f"line {i} of the program's own output" for i in range(1, 6)]
        sender.proc.stdin.write(("\n".join(lines) + "\n").encode())
        sender.proc.stdin.close()
        lab.check(pane.wait_exit(scaled(20), "the receiver") == 0, "receiver not exit 0:\n" + pane.screen())
        screen = pane.screen()
        for l in lines:
            lab.check(re.search(rf"^{re.escape(l)}$", screen, re.MULTILINE) is not None,
                      f"{l!r} is not a line of its own on the terminal:\n{screen}")
        stray = [l for l in screen.splitlines() if re.search(r"\d ?[KMG]?i?B/s", l) and not l.startswith("Sent ")]
        lab.check(not stray, f"a status line was left on screen: {stray}\n{screen}")
        lab.check(sender.wait_exit(scaled(20), what="the sender") == 0, "sender not exit 0")
    finally:
        pane.close()


@pytest.mark.deadline(90)
def test_status_line_says_when_the_peer_stops_answering(lab):
    """The peer dies (SIGKILL) during a download: the status line stops
    showing the last RTT, which would look healthy until the idle timeout,
    and says `no answer for N s` instead."""
    import signal
    target = lab.helper("target server", ["server", "--port", str(TARGET_PORT), "--bytes", str(1 << 30),
                                          "--timeout", str(int(scaled(80)))])
    target.wait_event("listening", scaled(15), what="the target server to listen")
    gen = lab.peersock("peersock connect", ["connect", f"127.0.0.1:{TARGET_PORT}"])
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    pane = TmuxPane(lab, pane_command(lab, ["listen", str(LISTEN_PORT), code]))
    try:
        pane.wait_screen(r"authenticated", scaled(30), "authentication")
        lab.helper("client", ["client", "--port", str(LISTEN_PORT), "--bytes", "0", "--timeout", str(int(scaled(80)))])
        pane.wait_screen(r"received [1-9][\d.]* [KMG]iB [1-9]", scaled(20), "the download running")
        gen.signal(signal.SIGKILL)
        pane.wait_screen(r"no answer for [1-9]\d* s", scaled(10), "the status line noticing the silence")
    finally:
        pane.close()
