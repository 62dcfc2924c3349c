"""Pairing: a code session with --remember leaves a pairing on each side
(separate data directories, as on two machines); `peersock peers` lists
and forgets them.

The real binary and the real mailbox server in the lab namespace; stdio
sessions with seeded random data checked both ways.
"""
import json
import os
import re
import stat
import shlex
import subprocess
import time

import pytest

from lab import AUTH_RE, Pump, big_bytes, check_same, peersock_bin, scaled

A_SEED, B_SEED = 301, 302
REMEMBERED_RE = re.compile(r"remembered the other side as (\S+)")


def data_home(lab, who):
    d = os.path.join(lab.tmpdir, f"data-{who}")
    os.makedirs(d, exist_ok=True)
    return d


def side_env(lab, who):
    return {"XDG_DATA_HOME": data_home(lab, who)}


def pairing_file(lab, who, name):
    return os.path.join(data_home(lab, who), "peersock", "peers", name)


def read_pairing(lab, who, name):
    with open(pairing_file(lab, who, name)) as f:
        fields = {}
        for line in f.read().splitlines()[1:]:
            k, _, v = line.partition(" ")
            fields[k] = v
        return fields


def peers_cmd(lab, who, *args):
    """`peersock peers ARGS` with this side's data directory."""
    env = {**lab.peer_env(), **side_env(lab, who)}
    return subprocess.run([peersock_bin(), "peers", *args], env=env, capture_output=True, text=True, timeout=30)


def stdio_pair(lab, gen_args, cons_args, nbytes, gen_env=None, cons_env=None):
    """stdio-a (generates the code) <-> stdio-b; both exit 0 with every byte
    checked both ways. Returns (a, b)."""
    a, b, _ = lab.start_pair("peersock stdio-a (alice)", ["stdio-a", *gen_args],
                             "peersock stdio-b (bob)", ["stdio-b", *cons_args],
                             gen_stdio=True, cons_stdio=True, gen_env=gen_env, cons_env=cons_env)
    return finish_stdio(lab, a, b, nbytes)


def finish_stdio(lab, a, b, nbytes):
    pa, pb = Pump(a, nbytes, A_SEED), Pump(b, nbytes, B_SEED)

    def done():
        if any(t.is_alive() for t in (pa.t_send, pa.t_recv, pb.t_send, pb.t_recv)):
            return None
        return pa.summary(), pb.summary()

    def problem():
        for p in (a, b):
            if p.returncode not in (None, 0):
                return f"{p.name} exited with status {p.returncode}"
        return None

    ra, rb = lab.wait_for(done, scaled(120), "the stdio transfer both ways", fail_if=problem)
    check_same(lab, a.name, ra, b.name, rb, nbytes)
    for p in (a, b):
        rc = p.wait_exit(scaled(30), what="the stdio side to exit after the transfer")
        lab.check(rc == 0, f"{p.name} exited with status {rc}")
    return a, b


@pytest.mark.deadline(180)
def test_remember_stores_one_private_pairing_on_each_side(lab):
    a, b = stdio_pair(lab, ["--remember", "bob", "--label", "alice-laptop"],
                      ["--remember", "alice", "--label", "bob-desktop"], 1 << 20,
                      gen_env=side_env(lab, "a"), cons_env=side_env(lab, "b"))
    for p, name in ((a, "bob"), (b, "alice")):
        m = p.find(REMEMBERED_RE)
        lab.check(m is not None and m.group(1) == name, f"{p.name} did not say it remembered the other side as {name}")
        lab.check(p.find(AUTH_RE) is not None, f"{p.name}: no authenticated line")
    fa, fb = read_pairing(lab, "a", "bob"), read_pairing(lab, "b", "alice")
    lab.check(len(fa["secret"]) == 64 and fa["secret"] == fb["secret"],
              "the two sides did not derive the same pairing secret")
    lab.check(fa["label"] == "bob-desktop" and fb["label"] == "alice-laptop",
              f"labels: alice stored {fa['label']!r}, bob stored {fb['label']!r}")
    for who, name in (("a", "bob"), ("b", "alice")):
        path = pairing_file(lab, who, name)
        lab.check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, f"{path} is not mode 0600")
        lab.check(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700, f"{path}'s directory is not 0700")
        lab.check(os.listdir(os.path.dirname(path)) == [name], f"other files next to {path}")

    listed = peers_cmd(lab, "a")
    lab.check(listed.returncode == 0 and re.search(r"^bob\s+bob-desktop\s", listed.stdout, re.M),
              f"peersock peers: {listed.stdout!r} {listed.stderr!r}")
    as_json = json.loads(peers_cmd(lab, "b", "--json").stdout)
    lab.check([p["name"] for p in as_json] == ["alice"] and as_json[0]["forgotten"] is None, f"json: {as_json}")


@pytest.mark.deadline(120)
def test_remember_refuses_an_existing_name_before_contacting_anyone(lab):
    stdio_pair(lab, ["--remember", "bob"], ["--remember", "alice"], 1024,
               gen_env=side_env(lab, "a"), cons_env=side_env(lab, "b"))
    before = open(pairing_file(lab, "a", "bob")).read()
    p = lab.peersock("peersock stdio-a again", ["stdio-a", "--remember", "bob"], env=side_env(lab, "a"))
    rc = p.wait_exit(scaled(15), what="a clash of pairing names is found at once")
    lab.check(rc == 2, f"exit status {rc}, expected 2")
    lab.check(p.find(r"a pairing of that name exists already") is not None, "no clear line about the name")
    lab.check(p.find(r"Connection code") is None, "it made a code although it could not pair")
    lab.check(open(pairing_file(lab, "a", "bob")).read() == before, "the existing pairing changed")


@pytest.mark.deadline(120)
def test_forgotten_pairing_is_listed_as_forgotten_and_keeps_no_secret(lab):
    stdio_pair(lab, ["--remember", "bob"], [], 1024, gen_env=side_env(lab, "a"))
    lab.check(not os.path.exists(os.path.join(data_home(lab, "b"), "peersock")),
              "the side without --remember stored something")
    r = peers_cmd(lab, "a", "forget", "bob")
    lab.check(r.returncode == 0 and "forgot bob" in r.stdout, f"forget: {r.stdout!r} {r.stderr!r}")
    fields = read_pairing(lab, "a", "bob")
    lab.check("secret" not in fields and int(fields["forgotten"]) > 0, f"after forget: {fields}")
    listed = peers_cmd(lab, "a").stdout
    lab.check(re.search(r"^bob\s.*forgotten", listed, re.M) is not None, f"list: {listed!r}")
    again = peers_cmd(lab, "a", "forget", "bob")
    lab.check(again.returncode == 2 and "no pairing called 'bob'" in again.stderr, f"forget twice: {again.stderr!r}")


@pytest.mark.deadline(120)
def test_the_original_peer_cannot_pair(lab):
    """A peer that speaks protocol 1 (as the original does) is refused by the
    side that wants to remember it, before authentication; nothing is stored."""
    a, b, _ = lab.start_pair("peersock stdio-a (alice)", ["stdio-a", "--remember", "bob"],
                             "peersock stdio-b (old)", ["stdio-b"], gen_stdio=True, cons_stdio=True,
                             gen_env=side_env(lab, "a"), cons_env={"PEERSOCK_PROTOCOL": "1"})
    rc = a.wait_exit(scaled(60), what="the remembering side to refuse an original peer")
    lab.check(rc == 8, f"exit status {rc}, expected 8")
    lab.check(a.find(r"the other side runs the original peersock, which cannot pair") is not None,
              "no clear line about the original")
    lab.check(a.find(AUTH_RE) is None, "it authenticated first")
    lab.check(not os.path.exists(pairing_file(lab, "a", "bob")), "a pairing was stored")
    b.wait_exit(scaled(60), what="the other side to end too")


# ---- --peer: sessions without a code ---------------------------------------

def pair(lab):
    """A code session with --remember on both sides: alice (stdio-a, data
    directory "a") remembers bob as "bob", bob remembers her as "alice"."""
    stdio_pair(lab, ["--remember", "bob"], ["--remember", "alice"], 1024,
               gen_env=side_env(lab, "a"), cons_env=side_env(lab, "b"))


def peer_pair(lab, nbytes, first="a", env=None):
    """stdio-a --peer bob (alice) and stdio-b --peer alice (bob), `first`
    started first; no code anywhere. Returns (a, b) after the transfer."""
    env = env or {}
    starts = {
        "a": lambda: lab.peersock("peersock stdio-a --peer bob", ["stdio-a", "--peer", "bob"], stdio=True,
                                  env={**side_env(lab, "a"), **env}),
        "b": lambda: lab.peersock("peersock stdio-b --peer alice", ["stdio-b", "--peer", "alice"], stdio=True,
                                  env={**side_env(lab, "b"), **env}),
    }
    procs = {first: starts[first]()}
    procs[first].wait_line(r"Waiting for the other side of the pairing", scaled(20), what="the waiting line")
    other = "b" if first == "a" else "a"
    procs[other] = starts[other]()
    a, b = procs["a"], procs["b"]
    finish_stdio(lab, a, b, nbytes)
    for p in (a, b):
        lab.check(p.find(r"Connection code") is None, f"{p.name} printed a code")
        lab.check(p.find(AUTH_RE) is not None, f"{p.name}: no authenticated line")
        lab.check("PEERSOCK_CODE" not in " ".join(p.argv), "a code in the command line")
    return a, b


@pytest.mark.deadline(400)
def test_three_sessions_by_pairing_then_forgetting_ends_both_sides(lab):
    pair(lab)
    created = read_pairing(lab, "a", "bob")
    for i, first in enumerate(("a", "b", "a")):
        lab.note(f"session {i + 1} by pairing, {'alice' if first == 'a' else 'bob'} first")
        peer_pair(lab, big_bytes(), first=first)
    used = read_pairing(lab, "a", "bob")
    lab.check(int(used["last-used"]) >= int(created["created"]) and used["secret"] == created["secret"],
              f"after three sessions: {used}")

    r = peers_cmd(lab, "b", "forget", "alice")
    lab.check(r.returncode == 0, f"forget: {r.stderr!r}")
    a = lab.peersock("peersock stdio-a --peer bob", ["stdio-a", "--peer", "bob"], env=side_env(lab, "a"))
    a.wait_line(r"Waiting for the other side of the pairing", scaled(20), what="the waiting line")
    b = lab.peersock("peersock stdio-b --peer alice (forgotten)", ["stdio-b", "--peer", "alice"],
                     env=side_env(lab, "b"))
    for p, why in ((b, r"was forgotten here"), (a, r"the other side has forgotten the pairing bob")):
        rc = p.wait_exit(scaled(5), what="a forgotten pairing ends the attempt on both sides within 5 s")
        lab.check(rc == 3, f"{p.name} exited {rc}, expected 3")
        lab.check(p.find(why) is not None, f"{p.name}: no line matching {why!r}")
    # The forgetting side keeps nothing that could authenticate.
    lab.check("secret" not in read_pairing(lab, "b", "alice"), "the forgotten pairing kept its secret")


@pytest.mark.deadline(120)
def test_peer_needs_a_known_pairing_and_no_code(lab):
    p = lab.peersock("peersock --peer nobody", ["stdio-b", "--peer", "nobody"], env=side_env(lab, "a"))
    rc = p.wait_exit(scaled(10), what="an unknown pairing fails at once")
    lab.check(rc == 2 and p.find(r"no pairing called 'nobody'") is not None, f"exit {rc}: {p.text()}")
    pair(lab)
    p = lab.peersock("peersock --peer with a code", ["stdio-b", "--peer", "alice", "1-abandon-zoo-lab-name"],
                     env=side_env(lab, "b"))
    rc = p.wait_exit(scaled(10), what="a code and --peer together fail at once")
    lab.check(rc == 2 and p.find(r"give a code or --peer, not both") is not None, f"exit {rc}: {p.text()}")
    p = lab.peersock("peersock --serve stdio", ["stdio-a", "--peer", "bob", "--serve"], env=side_env(lab, "a"))
    rc = p.wait_exit(scaled(10), what="--serve with stdio-a fails at once")
    lab.check(rc == 2 and p.find(r"--serve is for connect and connect-unix") is not None, f"exit {rc}: {p.text()}")


# ---- --serve: ssh by pairing ------------------------------------------------

def peer_ssh_config(lab, s):
    """The README's `Host *.peer` snippet (with this test's relay)."""
    path = os.path.join(s.dir, "ssh_config_peer")
    relay = shlex.quote(lab.relay_url)
    with open(path, "w") as f:
        f.write(f"""Host *.peer
    ProxyCommand sh -c 'exec "$0" --relay {relay} --stun "" --turn "" -q stdio-b --peer "${{1%%.peer}}"' {shlex.quote(peersock_bin())} %h
    HostKeyAlias peersock-e2e-host
    User root
    IdentityFile {s.user_key}
    IdentitiesOnly yes
    UserKnownHostsFile {s.dir}/known_hosts
    StrictHostKeyChecking accept-new
    BatchMode yes
    GlobalKnownHostsFile /dev/null
""")
    return path


@pytest.mark.deadline(600)
def test_serve_ten_ssh_sessions_in_a_row_and_three_at_once(lab):
    from test_ssh import SSHD_PORT, SshSetup
    s = SshSetup(lab)
    s.start_sshd()
    # The server remembers the laptop as "laptop", the laptop the server as "server".
    stdio_pair(lab, ["--remember", "laptop"], ["--remember", "server"], 1024,
               gen_env=side_env(lab, "a"), cons_env=side_env(lab, "b"))
    server = lab.peersock("peersock connect --serve", ["connect", f"127.0.0.1:{SSHD_PORT}", "--peer", "laptop",
                                                       "--serve"], env=side_env(lab, "a"))
    server.wait_line(r"Serving the pairing laptop", scaled(20), what="the serving line")
    config = peer_ssh_config(lab, s)
    env = {**lab.peer_env(), **side_env(lab, "b")}

    for i in range(10):
        p = lab.start(f"ssh {i + 1}", ["ssh", "-F", config, "server.peer", f"echo through-pairing-{i}"], env=env)
        rc = p.wait_exit(scaled(60), what=f"ssh session {i + 1} by pairing")
        lab.check(rc == 0 and p.lines("stdout") == [f"through-pairing-{i}"],
                  f"ssh {i + 1}: exit {rc}, output {p.lines('stdout')}, stderr {p.text()[-500:]}")
    at_once = [lab.start(f"ssh at once {i}", ["ssh", "-F", config, "server.peer",
                                              f"sleep 2; echo at-once-{i}"], env=env) for i in range(3)]
    for i, p in enumerate(at_once):
        rc = p.wait_exit(scaled(90), what=f"concurrent ssh session {i}")
        lab.check(rc == 0 and p.lines("stdout") == [f"at-once-{i}"], f"ssh at once {i}: exit {rc}, {p.text()[-500:]}")
    lab.check(server.returncode is None, "the serving process exited")
    lab.wait_for(lambda: len([l for l in server.lines() if re.search(r"session \d+ ended \(exit 0\)", l)]) == 13,
                 scaled(30), "13 sessions ended with exit 0 in the server's log")
    server.signal(15)
    rc = server.wait_exit(scaled(20), what="the serving process to stop on SIGTERM")
    lab.check(rc == 130, f"the serving process exited {rc} on SIGTERM, expected 130")


# ---- what the relay sees -----------------------------------------------------

class RelayWatcher:
    """Samples the mailbox server's database (which holds every open mailbox
    and its messages) every 50 ms, and notes in which pairing window each
    mailbox id and message body was seen."""

    def __init__(self, lab, window_seconds):
        import sqlite3
        import threading
        self.db = os.path.join(lab.tmpdir, "relay.sqlite")
        self.window = window_seconds
        self.ids, self.bodies = {}, {}  # window -> set
        self._stop = threading.Event()

        def run():
            while not self._stop.is_set():
                try:
                    con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1)
                    ids = [r[0] for r in con.execute("SELECT id FROM mailboxes")]
                    bodies = [r[0] for r in con.execute("SELECT body FROM messages")]
                    con.close()
                except sqlite3.Error:
                    ids, bodies = [], []
                w = int(time.time()) // self.window
                self.ids.setdefault(w, set()).update(ids)
                self.bodies.setdefault(w, set()).update(bodies)
                self._stop.wait(0.05)

        self._t = threading.Thread(target=run, daemon=True)
        self._t.start()

    def stop(self):
        self._stop.set()
        self._t.join(5)


@pytest.mark.deadline(300)
def test_the_relay_sees_no_secret_and_no_id_common_to_two_windows(lab):
    window = 8
    pair(lab)
    secret = read_pairing(lab, "a", "bob")["secret"]
    mailbox_key = read_pairing(lab, "a", "bob")["mailbox-key"]
    watcher = RelayWatcher(lab, window)
    env = {"PEERSOCK_PAIRING_WINDOW": str(window)}
    seen_windows = []
    try:
        for _ in range(2):
            # Start right after a boundary, so that the session fits in one window.
            lab.wait_for(lambda: (time.time() % window) < 1.0, window + 2, "the start of a pairing window")
            seen_windows.append(int(time.time()) // window)
            peer_pair(lab, 1 << 20, first="a", env=env)
            lab.check(int(time.time()) // window == seen_windows[-1], "a session took longer than its window")
            lab.wait_for(lambda: int(time.time()) // window != seen_windows[-1], window + 2, "the next window")
    finally:
        watcher.stop()
    w1, w2 = seen_windows
    ids1, ids2 = watcher.ids.get(w1, set()), watcher.ids.get(w2, set())
    lab.check(len(ids1) > 0 and len(ids2) > 0, f"the relay's database showed no mailboxes: {watcher.ids}")
    lab.check(not (ids1 & ids2), f"mailbox ids common to two windows: {ids1 & ids2}")
    everything = " ".join(str(x) for s in (*watcher.ids.values(), *watcher.bodies.values()) for x in s)
    lab.check(secret not in everything and mailbox_key not in everything, "the relay saw the pairing's secret or key")
    bodies1, bodies2 = watcher.bodies.get(w1, set()), watcher.bodies.get(w2, set())
    lab.check(not (bodies1 & bodies2), "a message body common to two windows")
    # The sessions' ice bodies went sealed (the PAKE on the ticket's code):
    # no ufrag, password or candidate list in clear.
    clear = [b for s in watcher.bodies.values() for b in s if '"u":' in b or '"c":[' in b]
    lab.check(not clear, f"an ice body in clear: {clear[:1]}")
