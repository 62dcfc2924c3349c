"""Reusable lab for peersock end-to-end tests.

A Lab owns one fresh network namespace (only `lo`, up), optionally a
magic-wormhole mailbox server inside it, and every process a test starts in it
(peersock peers, tcp_sink_source.py helpers). All traffic stays inside that
namespace. Lab.close() kills everything and deletes the namespace; the pytest
fixtures in conftest.py call it also when a test fails.

Every wait has a deadline; on failure Lab.fail() raises AssertionError with the
message followed by a report of every process (command, exit status, stderr and
stdout tails) and the mailbox log.
"""
import hashlib
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
HELPER = HERE / "tcp_sink_source.py"
PYTHON = "/usr/bin/python3"
TWISTD = "/usr/bin/twistd3"
WORDLIST = REPO / "data" / "bip39-english.txt"

CODE_RE = re.compile(r"Connection code: (\d+-[a-z-]+)")
AUTH_RE = re.compile(r"authenticated", re.IGNORECASE)
ERROR_LINE_RE = re.compile(r"^peersock: ")

NS_PREFIX = "psk-e2e-"

# docs/nat-matrix.md is written once at the end of a session (conftest's
# pytest_sessionfinish runs SESSION_FINISHERS), so that the modules that run
# after the matrix can add rows to it: the outage and path-change tests put
# theirs in SESSION_ROWS, name -> dict(nats, expected, result, time).
SESSION_FINISHERS = []
SESSION_ROWS = {}

# Exit codes of the CLI contract.
EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_MISMATCH, EXIT_NO_PATH = 0, 1, 2, 3, 4
EXIT_PEER_GONE, EXIT_RENDEZVOUS, EXIT_LOCAL_SOCKET, EXIT_PROTOCOL = 5, 6, 7, 8

MAILBOX_PORT = 4000   # ports are per namespace: fixed numbers cannot collide
TARGET_PORT = 5000
LISTEN_PORT = 6000
CLOSED_PORT = 4001


def time_scale():
    try:
        return max(0.1, float(os.environ.get("PEERSOCK_E2E_TIME_SCALE", "1")))
    except ValueError:
        return 1.0


def scaled(seconds):
    return seconds * time_scale()


def big_bytes():
    """Size of the big transfers (default 64 MiB; PEERSOCK_E2E_BIG_MIB overrides)."""
    return int(float(os.environ.get("PEERSOCK_E2E_BIG_MIB", "64")) * (1 << 20))


def peersock_bin():
    b = os.environ.get("PEERSOCK_BIN")
    if b:
        return str(Path(b).resolve())
    return str(REPO / os.environ.get("BUILD_DIR", "build") / "peersock")


def mib(n):
    return f"{n / (1 << 20):g} MiB"


def peer_env(home):
    """Environment for a peer: no PEERSOCK_* settings leak in from the caller
    (except PEERSOCK_BIN), and HOME/XDG dirs point at the test's own home, so
    no user config file is read."""
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("PEERSOCK_") and k != "PEERSOCK_BIN":
            del env[k]
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"), LC_ALL="C.UTF-8")
    return env


def stop_all(procs):
    """SIGTERM every process first, give them one common grace period of
    3 s, then stop (kill) whatever is left."""
    for p in procs:
        if p.returncode is None:
            p.signal(signal.SIGTERM)
    deadline = time.monotonic() + 3
    for p in procs:
        try:
            p.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        p.stop(grace=0.5)


class LabError(AssertionError):
    pass


def _run(argv, check=True, timeout=30):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


# ---------------------------------------------------------------- namespaces

_counter = itertools.count(1)


class Netns:
    """A fresh network namespace with only lo (up)."""

    def __init__(self):
        self.name = f"{NS_PREFIX}{os.getpid()}-{next(_counter)}-{os.urandom(3).hex()}"
        _run(["ip", "netns", "add", self.name])
        self.alive = True
        try:
            _run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        except Exception:
            self.delete()
            raise

    def exec_argv(self, argv):
        return ["ip", "netns", "exec", self.name, *argv]

    def pids(self):
        r = _run(["ip", "netns", "pids", self.name], check=False)
        return [int(p) for p in r.stdout.split() if p.isdigit()]

    def links(self):
        return _run(["ip", "-n", self.name, "-o", "link"]).stdout

    def delete(self):
        if not self.alive:
            return
        kill_netns_pids(self.name)
        _run(["ip", "netns", "del", self.name], check=False)
        self.alive = False


def kill_netns_pids(name):
    r = _run(["ip", "netns", "pids", name], check=False)
    for p in r.stdout.split():
        try:
            os.kill(int(p), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def netns_exists(name):
    return os.path.exists(f"/run/netns/{name}")


def cleanup_stale_namespaces():
    """Delete psk-e2e-PID-* namespaces whose creating process no longer exists
    (left behind by a run that was killed). Namespaces of live runs are kept."""
    r = _run(["ip", "netns", "list"], check=False)
    removed = []
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(re.escape(NS_PREFIX) + r"(\d+)-", name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
            continue
        kill_netns_pids(name)
        _run(["ip", "netns", "del", name], check=False)
        removed.append(name)
    return removed


# ---------------------------------------------------------------- processes

class Proc:
    """A process started inside the lab's namespace. stderr (and stdout when
    stdout='lines') are read line by line by background threads, so waits can
    match lines with deadlines and reports can show them."""

    def __init__(self, lab, name, argv, *, stdin=subprocess.DEVNULL, stdout="lines", cwd=None, env=None):
        self.lab = lab
        self.name = name
        self.argv = list(argv)
        self.cond = threading.Condition()
        self.out = {"stdout": [], "stderr": []}  # lists of (monotonic time, line)
        self.eof = {"stdout": stdout != "lines", "stderr": False}
        self.started = time.monotonic()
        self.ended = None
        self._stdout_mode = stdout
        self.proc = subprocess.Popen(
            lab.ns.exec_argv(self.argv), stdin=stdin,
            stdout={"lines": subprocess.PIPE, "pipe": subprocess.PIPE, "devnull": subprocess.DEVNULL}[stdout],
            stderr=subprocess.PIPE, cwd=cwd or lab.tmpdir, env=env, start_new_session=True)
        self._readers = [threading.Thread(target=self._reader, args=("stderr", self.proc.stderr), daemon=True)]
        if stdout == "lines":
            self._readers.append(threading.Thread(target=self._reader, args=("stdout", self.proc.stdout), daemon=True))
        for t in self._readers:
            t.start()

    def _reader(self, stream, f):
        for raw in iter(f.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self.cond:
                self.out[stream].append((time.monotonic(), line))
                self.cond.notify_all()
        with self.cond:
            self.eof[stream] = True
            self.cond.notify_all()

    # -- inspection
    @property
    def pid(self):
        return self.proc.pid

    @property
    def returncode(self):
        return self.proc.poll()

    def lines(self, stream="stderr"):
        with self.cond:
            return [l for _, l in self.out[stream]]

    def text(self, stream="stderr"):
        return "\n".join(self.lines(stream))

    def events(self):
        """stdout lines parsed as JSON (helpers)."""
        evs = []
        for l in self.lines("stdout"):
            try:
                evs.append(json.loads(l))
            except ValueError:
                pass
        return evs

    def find(self, pattern, stream="stderr"):
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        for l in self.lines(stream):
            m = rx.search(l)
            if m:
                return m
        return None

    # -- waiting
    def wait_line(self, pattern, timeout, stream="stderr", what=None):
        """Wait until a line of `stream` matches; return the re.Match. Fails
        (with the lab report) at the deadline or when the stream ends first."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                lines = self.out[stream]
                for _, l in lines[seen:]:
                    m = rx.search(l)
                    if m:
                        return m
                seen = len(lines)
                if self.eof[stream]:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 1.0))
        why = "its output ended (process exited?)" if self.eof[stream] else f"{timeout:.0f}s passed"
        self.lab.fail(f"{self.name}: waited for {what or repr(rx.pattern)} on {stream}, but {why}")

    def event(self, name):
        """The first stdout JSON event with this name, or None."""
        for e in self.events():
            if e.get("event") == name:
                return e
        return None

    def wait_event(self, event, timeout, what=None):
        m = self.wait_line(r'"event": "%s"' % re.escape(event), timeout, stream="stdout",
                           what=what or f"event {event!r}")
        return json.loads(m.string)

    def wait_exit(self, timeout, what=None):
        """Wait for the process to exit; return its exit status."""
        try:
            rc = self.proc.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            self.lab.fail(f"{self.name}: did not exit within {timeout:.1f}s" + (f" ({what})" if what else ""))
        self._drain()
        return rc

    def _drain(self):
        if self.ended is None:
            self.ended = time.monotonic()
        for t in self._readers:
            t.join(timeout=2)

    # -- stopping
    def signal(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace=3.0):
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for f in (self.proc.stdin, self.proc.stdout if self._stdout_mode == "pipe" else None):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        self._drain()

    def describe(self, tail=60):
        rc = self.proc.poll()
        status = "running" if rc is None else f"exit {rc}" + (f" (signal {-rc})" if rc < 0 else "")
        parts = [f"--- {self.name} [{status}]: {shlex.join(self.argv)}"]
        for stream in ("stderr", "stdout"):
            lines = self.lines(stream)
            if stream == "stdout" and self._stdout_mode != "lines":
                continue
            if not lines:
                parts.append(f"    ({stream}: empty)")
                continue
            if len(lines) > tail:
                parts.append(f"    ({stream}: {len(lines) - tail} earlier lines omitted)")
            parts.append(f"    {stream}:")
            parts.extend("    | " + l for l in lines[-tail:])
        return "\n".join(parts)


class Pump:
    """Feeds N seeded random bytes into a process's stdin while reading its
    stdout until EOF, both at the same time, hashing both directions.
    hold: a threading.Event; stdin is closed only once it is set (a peer
    without half-close ends the session at its stdin's EOF)."""

    def __init__(self, proc, nbytes, seed, hold=None):
        self.hold = hold
        sys.path.insert(0, str(HERE))
        from tcp_sink_source import chunks
        self._chunks = chunks
        self.proc, self.nbytes, self.seed = proc, nbytes, seed
        self.sent = self.recv = 0
        self.first_byte = None  # monotonic time of the first byte read (setup-time measurements)
        self.send_error = self.recv_error = None
        self.sent_hash, self.recv_hash = hashlib.sha256(), hashlib.sha256()
        self.t_send = threading.Thread(target=self._send, daemon=True)
        self.t_recv = threading.Thread(target=self._recv, daemon=True)
        self.t_send.start()
        self.t_recv.start()

    def _send(self):
        f = self.proc.proc.stdin
        try:
            for c in self._chunks(self.seed, self.nbytes):
                f.write(c)
                self.sent_hash.update(c)
                self.sent += len(c)
            f.flush()
            if self.hold is not None:
                self.hold.wait()
        except (OSError, ValueError) as e:
            self.send_error = f"{type(e).__name__}: {e}"
        finally:
            try:
                f.close()
            except OSError:
                pass

    def _recv(self):
        f = self.proc.proc.stdout
        try:
            while True:
                b = f.read1(1 << 20)
                if not b:
                    break
                if self.first_byte is None:
                    self.first_byte = time.monotonic()
                self.recv_hash.update(b)
                self.recv += len(b)
        except (OSError, ValueError) as e:
            self.recv_error = f"{type(e).__name__}: {e}"

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        for t, what in ((self.t_send, "writing stdin"), (self.t_recv, "reading stdout to EOF")):
            t.join(timeout=max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                self.proc.lab.fail(f"{self.proc.name}: {what} did not finish within {timeout:.0f}s "
                                   f"(sent {self.sent}/{self.nbytes} bytes, received {self.recv} bytes)")
        return self.summary()

    def summary(self):
        return dict(sent=self.sent, sent_sha256=self.sent_hash.hexdigest(),
                    recv=self.recv, recv_sha256=self.recv_hash.hexdigest(),
                    send_error=self.send_error, recv_error=self.recv_error)


# ---------------------------------------------------------------- the lab

class Lab:
    def __init__(self, on_close=None):
        self.tmpdir = tempfile.mkdtemp(prefix="peersock-e2e-")
        self.procs = []
        self.mailbox = None
        self.relay_url = None
        self.notes = []
        self._on_close = on_close
        self.closed = False
        self.home = os.path.join(self.tmpdir, "home")
        os.makedirs(self.home)
        self.ns = Netns()

    # -- reporting
    def note(self, text):
        self.notes.append(text)

    def report(self):
        parts = [f"=== lab: netns {self.ns.name}, tmpdir {self.tmpdir}, relay {self.relay_url}"]
        parts.extend(f"note: {n}" for n in self.notes)
        for p in self.procs:
            if p is not self.mailbox:
                parts.append(p.describe())
        if self.mailbox is not None:
            parts.append(self.mailbox.describe(tail=25))
        return "\n".join(parts)

    def fail(self, message):
        raise LabError(message + "\n" + self.report())

    def check(self, cond, message):
        if not cond:
            self.fail(message)

    # -- processes
    def start(self, name, argv, **kw):
        p = Proc(self, name, argv, **kw)
        self.procs.append(p)
        return p

    def peer_env(self):
        return peer_env(self.home)

    def peersock(self, name, args, *, relay=None, stdio=False, env=None, prefix=()):
        """Start build/peersock with the test's relay and no STUN/TURN.
        stdio=True gives binary stdin/stdout pipes (for Pump); env adds
        variables (e.g. PEERSOCK_PROTOCOL) to the clean peer environment;
        prefix is a command that execs peersock (a umask, setpriv ...)."""
        argv = [peersock_bin(), "--relay", relay or self.relay_url or f"ws://127.0.0.1:{CLOSED_PORT}/v1",
                "--stun", "", "--turn", "", *args]
        extra = os.environ.get("PEERSOCK_E2E_EXTRA_ARGS")
        if extra:
            argv[1:1] = shlex.split(extra)
        argv = [*prefix, *argv]
        penv = {**self.peer_env(), **(env or {})}
        if stdio:
            return self.start(name, argv, stdin=subprocess.PIPE, stdout="pipe", env=penv)
        return self.start(name, argv, env=penv)

    def helper(self, name, args):
        return self.start(name, [PYTHON, "-u", str(HELPER), *args])

    def wait_port(self, port, timeout, what):
        p = self.helper(f"wait-port {port}", ["wait-port", "--port", str(port), "--timeout", str(timeout)])
        rc = p.wait_exit(timeout + 10, what=f"waiting for {what}")
        if rc != 0:
            self.fail(f"{what}: port 127.0.0.1:{port} in {self.ns.name} did not accept connections within {timeout:.0f}s")

    def start_mailbox(self, port=MAILBOX_PORT, timeout=None, motd=None):
        """Start the magic-wormhole mailbox server inside the namespace and wait
        (with a deadline, from inside the namespace) until it accepts connections.
        `motd`: the welcome carries this message of the day (the real server,
        patched at start-up by mailbox_with_motd.py: it has no option for it)."""
        timeout = timeout or scaled(30)
        db = os.path.join(self.tmpdir, "relay.sqlite" if port == MAILBOX_PORT else f"relay-{port}.sqlite")
        twistd = [TWISTD]
        env = None
        if motd is not None:
            twistd = [PYTHON, str(HERE / "mailbox_with_motd.py")]
            env = {**os.environ, "PEERSOCK_TEST_MOTD": motd}
        mailbox = self.start("mailbox" if port == MAILBOX_PORT else f"mailbox :{port}", [
            *twistd, "-n", "--pidfile=", "wormhole-mailbox",
            f"--port=tcp:{port}:interface=127.0.0.1", f"--channel-db={db}"], env=env)
        self.wait_port(port, timeout, "mailbox server")
        self.check(mailbox.returncode is None, "mailbox server exited right after starting")
        url = f"ws://127.0.0.1:{port}/v1"
        if port == MAILBOX_PORT:
            self.mailbox = mailbox
            self.relay_url = url
        return url

    def start_pair(self, gen_name, gen_args, cons_name, cons_args, *, gen_stdio=False, cons_stdio=False,
                   code_timeout=None, between=None, gen_env=None, cons_env=None):
        """Start the code-generating peer, wait for its `Connection code:` line,
        call between(code) if given, then start the other peer with that code
        appended. Returns (generator, consumer, code)."""
        gen = self.peersock(gen_name, gen_args, stdio=gen_stdio, env=gen_env)
        m = gen.wait_line(CODE_RE, code_timeout or scaled(20), what="the 'Connection code:' line")
        code = m.group(1)
        self.note(f"connection code from {gen_name}: {code}")
        if between:
            between(code)
        cons = self.peersock(cons_name, [*cons_args, code], stdio=cons_stdio, env=cons_env)
        return gen, cons, code

    def wait_for(self, cond, timeout, what, fail_if=None):
        """Poll cond() (every 50 ms) until it returns a true value, which is
        returned. fail_if() may return a message to fail at once (e.g. a peer
        died). Fails with the report at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            r = cond()
            if r:
                return r
            if fail_if is not None:
                msg = fail_if()
                if msg:
                    # let reader threads catch up, then look once more
                    for p in self.procs:
                        if p.returncode is not None:
                            p._drain()
                    r = cond()
                    if r:
                        return r
                    self.fail(f"while waiting for {what}: {msg}")
            if time.monotonic() >= deadline:
                self.fail(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.05)

    # -- teardown
    def close(self):
        if self.closed:
            return
        self.closed = True
        if self._on_close:
            self._on_close()
        stop_all(self.procs)
        self.ns.delete()
        if not os.environ.get("PEERSOCK_E2E_KEEP_TMP"):
            import shutil
            shutil.rmtree(self.tmpdir, ignore_errors=True)


# ---------------------------------------------------------------- helpers

def wordlist():
    return WORDLIST.read_text().split()


def wrong_words_code(code):
    """Same nameplate, four valid words that differ from the code's at every position."""
    nameplate, *words = code.split("-")
    pool = [w for w in wordlist() if w not in words]
    return "-".join([nameplate, *pool[:len(words) or 4]])


def check_same(lab, a_name, a, b_name, b, nbytes):
    """a sent to b and b sent to a: both directions complete and hashes equal."""
    for n, r in ((a_name, a), (b_name, b)):
        lab.check(r.get("send_error") is None and r.get("recv_error") is None,
                  f"{n}: I/O error during transfer: send={r.get('send_error')} recv={r.get('recv_error')}")
        lab.check(r["sent"] == nbytes, f"{n}: sent {r['sent']} of {nbytes} bytes")
    for src_n, src, dst_n, dst in ((a_name, a, b_name, b), (b_name, b, a_name, a)):
        lab.check(dst["recv"] == src["sent"],
                  f"{src_n} -> {dst_n}: {dst_n} received {dst['recv']} bytes, {src_n} sent {src['sent']}")
        lab.check(dst["recv_sha256"] == src["sent_sha256"],
                  f"{src_n} -> {dst_n}: sha256 differs (sent {src['sent_sha256']}, received {dst['recv_sha256']})")
