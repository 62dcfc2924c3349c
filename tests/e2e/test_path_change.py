"""A tunnel that survives a change of path (tests/netlab): in the middle of a
stdio stream that runs both ways, alice's router forgets its NAT mappings
(conntrack flush: a router's reboot, a carrier NAT's timeout), or alice's
host gets a new address, or alice moves to another network behind another
NAT. The old path is dead for good; both sides say they are reconnecting,
run an ICE restart through the mailbox they kept open (docs/protocol.md
§2.11), report the new path, deliver every byte and exit 0 -- without a
new code. Also: the mailbox server restarting during the session costs
nothing, and a restart still works afterwards.
"""
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "netlab"))
from lab import SESSION_ROWS, Pump, check_same, scaled  # noqa: E402
# The same lab fixture, pacing and stream size as the outage tests.
from test_outage import BACK_RE, RATE_MBIT, RECONNECTING_RE, STREAM_BYTES, netlab, start_pair, wait_flowing  # noqa: E402,F401

PATH_LINE_RE = re.compile(r"^connected (directly|via) .*")


@pytest.fixture
def sites(netlab, deadline):
    """Makes the sites a test asks for; removes them afterwards."""
    made = []

    def make(letter, nat, hosts):
        site = netlab.add_site(letter, nat, hosts)
        made.append(letter)
        return site

    netlab.mark()
    try:
        yield make
    finally:
        deadline.disarm()
        for letter in reversed(made):
            netlab.remove_site(letter)


def path_lines(p):
    return [line for line in p.lines() if PATH_LINE_RE.match(line)]


def stream_through_a_change(netlab, a, b, change, scenario):
    """Starts the pair and a stream both ways, applies `change` once 1 MiB
    has arrived each way, then checks the reconnect, the new path line and
    every byte; the result is a row of docs/nat-matrix.md named `scenario`."""
    for h in (a.hosts[0], b.hosts[0]):
        h.rate(RATE_MBIT)
    gen, cons = start_pair(netlab, a, b)
    pa, pb = Pump(gen, STREAM_BYTES, 51), Pump(cons, STREAM_BYTES, 52)
    wait_flowing(netlab, (pa, pb), 1 << 20)
    before = {p.name: path_lines(p) for p in (gen, cons)}
    change()
    changed_at = time.monotonic()
    for p in (gen, cons):
        p.wait_line(RECONNECTING_RE, scaled(15), what="the 'reconnecting' line after the change")
    back = 0.0
    for p in (gen, cons):
        m = p.wait_line(BACK_RE, scaled(30), what="the 'answers again' line after the ICE restart")
        back = time.monotonic() - changed_at
        took = f"{p.name}: {m.string} ({back:.1f} s after the change)"
        netlab.note(took)
        print(took)  # the numbers in docs/protocol.md §2.11 (pytest -s shows them)
    ra, rb = pa.wait(scaled(120)), pb.wait(scaled(120))
    for p in (gen, cons):
        rc = p.wait_exit(scaled(20), what="stdio peers exit after both directions are delivered")
        netlab.check(rc == 0, f"{p.name} exited with status {rc}, expected 0")
    check_same(netlab, "alice", ra, "bob", rb, STREAM_BYTES)
    for p in (gen, cons):
        after = path_lines(p)
        # One more per restart that connected: usually one, two when the
        # first carried QUIC only after the next had begun (seen under ASan).
        netlab.check(len(after) > len(before[p.name]), f"{p.name}: no path line for the new path, got {after}")
        netlab.note(f"{p.name}: {after[0]!r} -> {after[-1]!r}")
        errors = [line for line in p.lines() if line.startswith("peersock:")]
        netlab.check(not errors, f"{p.name}: error lines {errors}")
    SESSION_ROWS[scenario] = dict(nats=f"{a.nat} × {b.nat}", expected="same session, both exit 0",
                                  result=f"every byte; new path `{path_lines(gen)[-1]}`", time=back)
    return gen, cons


@pytest.mark.deadline(240)
@pytest.mark.parametrize("nats,relayed", [(("symmetric", "cone"), False), (("symmetric", "symmetric"), True)],
                         ids=["direct", "relayed"])
def test_nat_rebinding_keeps_the_session(netlab, sites, nats, relayed):
    a = sites("a", nats[0], ["alice"])
    b = sites("b", nats[1], ["bob"])
    gen, _ = stream_through_a_change(netlab, a, b, a.rebind,
                                     f"NAT rebinding (conntrack flush on router A), {'relayed' if relayed else 'direct'}")
    first, last = path_lines(gen)[0], path_lines(gen)[-1]
    # "via TURN relay" (ours) or "via the peer's TURN relay".
    netlab.check(("TURN relay" in first) == relayed, f"unexpected first path {first!r}")
    if not relayed:
        # The symmetric NAT's new mapping is a new public port.
        netlab.check(first != last, f"the path line did not change: {first!r}")


@pytest.mark.deadline(240)
def test_new_host_address_keeps_the_session(netlab, sites):
    a = sites("a", "restricted", ["alice"])
    b = sites("b", "restricted", ["bob"])
    stream_through_a_change(netlab, a, b, lambda: a.hosts[0].change_address(50),
                            "alice's host address changes (10.0.1.10 to 10.0.1.50)")


@pytest.mark.deadline(240)
def test_moving_to_another_network_keeps_the_session(netlab, sites):
    a = sites("a", "restricted", ["alice"])
    b = sites("b", "cone", ["bob"])
    c = sites("c", "symmetric", [])
    gen, _ = stream_through_a_change(netlab, a, b, lambda: a.hosts[0].move_to(c),
                                     "alice moves to another network (site c, symmetric NAT)")
    last = path_lines(gen)[-1]
    # Site c's router faces wan as 192.0.2.130: alice's new public address.
    netlab.check("192.0.2.130:" in last or "TURN relay" in last, f"alice's new path is not from site c: {last!r}")


@pytest.mark.deadline(300)
def test_mailbox_server_restart_during_the_session_costs_nothing(netlab, sites):
    """The mailbox is kept for restarts: when its server goes away and comes
    back, both sides reconnect to it quietly, the stream goes on, and a
    rebinding afterwards is still survived."""
    a = sites("a", "symmetric", ["alice"])
    b = sites("b", "cone", ["bob"])

    def relay_restart_then_rebind():
        netlab.restart_mailbox()
        # Both sides back on the mailbox (their debug log would say so; the
        # user-facing output says nothing): give the 0.5 s backoff its round.
        # The rebinding below needs the mailbox, so it proves the reconnect.
        a.rebind()

    gen, cons = stream_through_a_change(netlab, a, b, relay_restart_then_rebind,
                                        "the mailbox server restarts, then router A rebinds")
    for p in (gen, cons):
        # Debug lines (PEERSOCK_E2E_DEBUG) start with a timestamp; the rest
        # is what the user sees.
        noisy = [line for line in p.lines() if "rendezvous" in line.lower() and not line.startswith("[")
                 and not line.startswith("Contacting")]
        netlab.check(noisy == [], f"{p.name}: the relay's restart was not quiet: {noisy}")
