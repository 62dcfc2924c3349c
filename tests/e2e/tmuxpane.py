"""A terminal for end-to-end tests: one tmux pane on a private tmux server.

The test types with send_keys and reads the screen with capture-pane, as a
person would. Every wait polls the screen with a deadline; nothing sleeps a
fixed time. The tmux server (own socket, -L psk-tmux-PID-N) is killed by
close(), which the test calls in a finally block.
"""
import itertools
import os
import re
import shlex
import subprocess
import time

_counter = itertools.count(1)


class TmuxPane:
    def __init__(self, lab, command, *, env=None, width=160, height=40):
        self.lab = lab
        self.socket = f"psk-tmux-{os.getpid()}-{next(_counter)}"
        self.command = command
        self.closed = False
        env_prefix = ""
        if env:
            env_prefix = "env " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + " "
        # A shell runs the command and prints its exit status on the screen,
        # then keeps the pane open, so the test reads the last screen and the
        # status from the screen. (tmux's own pane-death detection sometimes
        # left the exited command as a zombie, unnoticed, under load.)
        # The shell traps (not ignores: that would be inherited) SIGINT, so
        # that Ctrl-C typed in the pane ends only the command.
        wrapped = f"trap true INT; {env_prefix}{command}; echo \"[exit status $?]\"; exec sleep 3600"
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                   "sh", "-c", wrapped)
        lab.notes.append(f"tmux -L {self.socket}: {command}")
        self._last_screen = ""

    def _tmux(self, *args, check=True):
        r = subprocess.run(["tmux", "-L", self.socket, *args], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        if check and r.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {r.stderr.strip()}")
        return r.stdout

    def send_keys(self, *keys, literal=False):
        args = ["send-keys", "-t", "t"] + (["-l"] if literal else []) + list(keys)
        self._tmux(*args)

    def type(self, text):
        self.send_keys(text, literal=True)

    def screen(self):
        self._last_screen = self._tmux("capture-pane", "-p", "-t", "t")
        return self._last_screen

    def dead_status(self):
        """The command's exit status once it has ended, else None."""
        m = re.search(r"\[exit status (\d+)\]$", self.screen(), re.MULTILINE)  # after a "^C" echo, too
        return int(m.group(1)) if m else None

    def wait_screen(self, pattern, timeout, what):
        """Poll the screen until `pattern` matches it; return the match."""
        rx = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.screen())
            if m:
                return m
            if time.monotonic() >= deadline:
                self.lab.fail(f"tmux: waited {timeout:.0f}s for {what} (/{rx.pattern}/); screen:\n"
                              + self._last_screen)
            time.sleep(0.05)

    def wait_exit(self, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            st = self.dead_status()
            if st is not None:
                return st
            if time.monotonic() >= deadline:
                self.lab.fail(f"tmux: the command did not exit within {timeout:.0f}s ({what}); screen:\n"
                              + self.screen())
            time.sleep(0.05)

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.lab.notes.append("last tmux screen:\n" + self.screen())
        except Exception:
            pass
        self._tmux("kill-server", check=False)
