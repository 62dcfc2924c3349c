"""A tunnel that survives an outage (tests/netlab): alice's router drops
everything it forwards for 30 or 60 s in the middle of a stdio stream that
runs both ways, then forwards again. Both sides say that they are
reconnecting, say when the other side answers again, deliver every byte and
exit 0. An outage longer than --reconnect-timeout ends both sides with exit 5
and one line; a killed peer is given up on after the default timeout.

The path is direct (restricted x cone) and stays the same: the router keeps
its NAT mappings through the outage. Address changes need an ICE restart and
are not covered here.
"""
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "netlab"))
import netlab as nl  # noqa: E402
from lab import CODE_RE, EXIT_PEER_GONE, SESSION_ROWS, Pump, check_same, scaled  # noqa: E402

RECONNECTING_RE = r"^No answer from the other side for \d+ s; reconnecting for up to (\d+) s\.\.\.$"
BACK_RE = r"^The other side answers again \(after ([\d.]+) s of silence\)\.$"
PATH_RE = re.compile(r"connected (directly|via)")
# Both hosts send at most this much (tbf on their LAN links): the stream
# below takes long enough that the outage hits it in the middle.
RATE_MBIT = 8
STREAM_BYTES = 12 << 20


@pytest.fixture(scope="module")
def netlab(peersock_binary):
    with nl.started(scaled(30)) as lab:
        yield lab


@pytest.fixture
def pair_sites(netlab, deadline):
    """alice behind a restricted NAT, bob behind a cone: a direct path."""
    netlab.mark()
    a = netlab.add_site("a", "restricted", ["alice"])
    try:
        b = netlab.add_site("b", "cone", ["bob"])
    except BaseException:
        netlab.remove_site("a")
        raise
    try:
        yield a, b
    finally:
        deadline.disarm()
        for letter in ("a", "b"):
            netlab.remove_site(letter)


def start_pair(netlab, a, b, extra=()):
    if os.environ.get("PEERSOCK_E2E_DEBUG"):  # by hand: both sides' --debug log in the failure report
        extra = (*extra, "--debug")
    gen = netlab.peersock(a.hosts[0], "peersock stdio-a (alice)", ["stdio-a"], stdio=True, extra=extra)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    cons = netlab.peersock(b.hosts[0], "peersock stdio-b (bob)", ["stdio-b", code], stdio=True, extra=extra)
    for p in (gen, cons):
        p.wait_line(PATH_RE, scaled(30), what="the path line")
    return gen, cons


def wait_flowing(netlab, pumps, at_least):
    deadline = time.monotonic() + scaled(60)
    while min(p.recv for p in pumps) < at_least:
        if time.monotonic() > deadline:
            netlab.fail(f"the stream did not start: received {[p.recv for p in pumps]} bytes")
        for p in pumps:
            if p.proc.returncode is not None:
                netlab.fail(f"{p.proc.name} exited with {p.proc.returncode} before the outage")
        time.sleep(0.05)


@pytest.mark.deadline(420)
@pytest.mark.parametrize("seconds", [30, 60])
def test_stream_survives_an_outage(netlab, pair_sites, seconds):
    a, b = pair_sites
    for h in (a.hosts[0], b.hosts[0]):
        h.rate(RATE_MBIT)
    gen, cons = start_pair(netlab, a, b)
    pa, pb = Pump(gen, STREAM_BYTES, 31), Pump(cons, STREAM_BYTES, 32)
    wait_flowing(netlab, (pa, pb), 1 << 20)
    before = (pa.recv, pb.recv)
    a.outage(True)
    t0 = time.monotonic()
    try:
        # The outage itself is the scenario: both sides notice it and say so
        # while it lasts (the wait below is its length, not a guess).
        for p in (gen, cons):
            m = p.wait_line(RECONNECTING_RE, scaled(15), what="the 'reconnecting' line during the outage")
            netlab.check(m.group(1) == "60", f"{p.name}: the default reconnect timeout is not 60 s: {m.string!r}")
        netlab.check(gen.returncode is None and cons.returncode is None, "a side exited during the outage")
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        during = (pa.recv, pb.recv)
    finally:
        a.outage(False)
    back_at = time.monotonic()
    netlab.note(f"outage of {back_at - t0:.1f} s; received before {before}, at its end {during}")
    for p in (gen, cons):
        m = p.wait_line(BACK_RE, scaled(20), what="the 'answers again' line after the outage")
        back = time.monotonic() - back_at
        netlab.note(f"{p.name}: {m.string} ({back:.1f} s after the path came back)")
    ra, rb = pa.wait(scaled(120)), pb.wait(scaled(120))
    for p in (gen, cons):
        rc = p.wait_exit(scaled(20), what="stdio peers exit after both directions are delivered")
        netlab.check(rc == 0, f"{p.name} exited with status {rc}, expected 0")
    check_same(netlab, "alice", ra, "bob", rb, STREAM_BYTES)
    SESSION_ROWS[f"{seconds} s outage (router A drops everything)"] = dict(
        nats=f"{a.nat} × {b.nat}", expected="same session, both exit 0", result="every byte", time=back)


@pytest.mark.deadline(240)
def test_outage_longer_than_the_reconnect_timeout_ends_both_sides(netlab, pair_sites):
    """A 90 s outage with --reconnect-timeout 60: both sides give up after
    5 s of silence and the 60 s of reconnecting, while the path is still
    dead, with one line each."""
    a, b = pair_sites
    gen, cons = start_pair(netlab, a, b, extra=("--reconnect-timeout", "60"))
    pa, pb = Pump(gen, 1 << 30, 41), Pump(cons, 1 << 30, 42)  # more than can arrive before the outage
    wait_flowing(netlab, (pa, pb), 1 << 20)
    a.outage(True)
    t0 = time.monotonic()
    try:
        for p in (gen, cons):
            # The outage lasts 90 s: a side still running then has not given up.
            rc = p.wait_exit(90 - (time.monotonic() - t0), what="giving up after the reconnect timeout")
            took = time.monotonic() - t0
            netlab.note(f"{p.name} gave up after {took:.1f} s")
            netlab.check(rc == EXIT_PEER_GONE, f"{p.name} exited with {rc}, expected {EXIT_PEER_GONE}")
            # 5 s of silence before "reconnecting", then the 60 s; the check runs every 0.25 s.
            netlab.check(took >= 64.5, f"{p.name} gave up after {took:.1f} s, before 5 + 60 s of silence")
            errors = [line for line in p.lines() if line.startswith("peersock:")]
            netlab.check(errors == ["peersock: connection to the peer lost (no answer for 65 s)"],
                         f"{p.name}: expected one error line, got {errors}")
            SESSION_ROWS[f"90 s outage with --reconnect-timeout 60 ({'alice' if p is gen else 'bob'})"] = dict(
                nats=f"{a.nat} × {b.nat}", expected="exit 5 after 65 s", result=f"exit {rc}: `{errors[0]}`",
                time=took)
    finally:
        a.outage(False)


@pytest.mark.deadline(150)
def test_killed_peer_is_given_up_on_after_the_default_timeout(netlab, pair_sites):
    a, b = pair_sites
    gen, cons = start_pair(netlab, a, b)
    cons.signal(signal.SIGKILL)
    t0 = time.monotonic()
    gen.wait_line(RECONNECTING_RE, scaled(15), what="the 'reconnecting' line")
    # 5 s of silence, then 60 s of reconnecting; the check runs every 0.25 s.
    rc = gen.wait_exit(scaled(68) - (time.monotonic() - t0), what="giving up after 65 s of silence")
    took = time.monotonic() - t0
    netlab.note(f"{gen.name} gave up after {took:.1f} s")
    netlab.check(rc == EXIT_PEER_GONE, f"{gen.name} exited with {rc}, expected {EXIT_PEER_GONE}")
    netlab.check(took >= 64, f"{gen.name} gave up after {took:.1f} s, before 65 s of silence")
    netlab.check(gen.find(re.escape("peersock: connection to the peer lost (no answer for 65 s)")) is not None,
                 f"{gen.name}: no 'connection to the peer lost' line")
    SESSION_ROWS["bob killed (SIGKILL), default timeout (alice)"] = dict(
        nats=f"{a.nat} × {b.nat}", expected="exit 5 after 65 s of silence", result=f"exit {rc}", time=took)


@pytest.mark.deadline(300)
@pytest.mark.parametrize("seconds", [30, 60])
def test_interactive_ssh_session_survives_an_outage(lab, seconds):
    """An ssh session through the tunnel (both peers in one namespace, on
    127.0.0.1): a command answers, UDP is dropped for 30 or 60 s, and the
    same session answers the next command once it is back."""
    import subprocess
    from test_ssh import SshSetup
    s = SshSetup(lab)
    s.start_sshd()
    acc, host = s.tunnel("interactive")
    ssh = lab.start("ssh session", ["ssh", "-F", s.ssh_config, host,
                                    "while read -r line; do echo \"got $line\"; done"],
                    stdin=subprocess.PIPE, env=lab.peer_env())

    def ask(word, timeout):
        ssh.proc.stdin.write(f"{word}\n".encode())
        ssh.proc.stdin.flush()
        ssh.wait_line(rf"^got {word}$", timeout, stream="stdout", what=f"the session's answer to {word!r}")

    ask("before", scaled(60))
    drop = ["ip", "netns", "exec", lab.ns.name, "iptables", "-I", "INPUT", "-i", "lo", "-p", "udp", "-j", "DROP"]
    subprocess.run(drop, check=True)
    t0 = time.monotonic()
    try:
        acc.wait_line(RECONNECTING_RE, scaled(15), what="the 'reconnecting' line during the outage")
        # Typed during the outage: it waits and is answered afterwards.
        ssh.proc.stdin.write(b"during\n")
        ssh.proc.stdin.flush()
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        lab.check(ssh.returncode is None and acc.returncode is None, "ssh or the tunnel exited during the outage")
    finally:
        subprocess.run([*drop[:5], "-D", *drop[6:]], check=True)
    acc.wait_line(BACK_RE, scaled(20), what="the 'answers again' line after the outage")
    ssh.wait_line(r"^got during$", scaled(20), stream="stdout", what="the answer to what was typed during the outage")
    ask("after", scaled(20))
    ssh.proc.stdin.close()
    lab.check(ssh.wait_exit(scaled(20), what="ssh to end") == 0, "ssh did not exit 0")
    s.tunnel_done(acc)
