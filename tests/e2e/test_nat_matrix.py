"""NAT traversal across real Linux NAT (tests/netlab): the NAT-type matrix,
TURN fallback (UDP and TCP), same-LAN, relay flags, bounded ICE failure, and
a killed peer / cut link detected by the survivor.

One lab (wan with mailbox server and coturn) per module; each test adds its
own NAT routers and hosts and removes them afterwards. Every NAT type is
checked by the lab's probe before peersock runs on it.

The matrix test writes docs/nat-matrix.md when every row of it ran (a -k
subset does not overwrite the file) at time scale 1 (not in the sanitizer
pass). Setup time = from starting the second
peer to the first forwarded byte arriving at either side; it is reported, not
asserted.
"""
import datetime
import itertools
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "netlab"))
import netlab as nl  # noqa: E402
from lab import (CODE_RE, EXIT_NO_PATH, EXIT_PEER_GONE, SESSION_FINISHERS, SESSION_ROWS, Pump, check_same, mib,  # noqa: E402
                 scaled)

REPO = Path(__file__).resolve().parent.parent.parent
MATRIX_DOC = REPO / "docs" / "nat-matrix.md"
TYPES = ("none", "cone", "restricted", "symmetric")
RELAYED_PAIRS = ({"restricted", "symmetric"}, {"symmetric"})
DIRECT_RE = re.compile(r"connected directly \((udp|tcp), (\S+) \u2194 (\S+)\)(?:, rtt ([\d.]+) ms)?")
RELAY_RE = re.compile(r"connected via (?:the peer's )?TURN relay (\S+) \(([^)]*)\)(?:, rtt ([\d.]+) ms)?")
PATH_RE = re.compile(r"connected (directly|via)")
NO_PATH_NO_TURN = "no network path to the peer (tried: host, srflx; no TURN server configured)"

_rows = {}      # matrix results, (alice nat, bob nat) -> dict
_extra = {}     # other scenarios for the doc, name -> dict


def nat_bytes():
    """Transfer size each way: PEERSOCK_E2E_NAT_MIB, default 16 MiB, never more
    than PEERSOCK_E2E_BIG_MIB."""
    big = float(os.environ.get("PEERSOCK_E2E_BIG_MIB", "64"))
    return int(min(float(os.environ.get("PEERSOCK_E2E_NAT_MIB", "16")), big) * (1 << 20))


def expected_path(a, b):
    return "relayed" if {a, b} in RELAYED_PAIRS else "direct"


@pytest.fixture(scope="module")
def netlab(peersock_binary):
    with nl.started(scaled(30)) as lab:
        yield lab


@pytest.fixture
def sites(netlab, deadline):
    netlab.mark()
    made = []

    def make(letter, nat, hosts, late_drop=False, backend="nft"):
        site = netlab.add_site(letter, nat, hosts, late_drop, backend)
        made.append(letter)
        return site

    try:
        yield make
    finally:
        deadline.disarm()
        for letter in made:
            netlab.remove_site(letter)


def path_line(lab, p, timeout):
    return p.wait_line(PATH_RE, timeout, what="the 'connected ...' path line").string


def parse_path(line):
    m = DIRECT_RE.search(line)
    if m:
        return dict(kind="direct", transport=m.group(1), local=m.group(2), remote=m.group(3),
                    rtt=m.group(4), line=line)
    m = RELAY_RE.search(line)
    if m:
        return dict(kind="relayed", server=m.group(1), detail=m.group(2), rtt=m.group(3), line=line)
    return dict(kind="unknown", line=line)


def transfer(lab, alice, bob, nbytes, *, alice_args=(), bob_args=(), stun=True, turn=True, by_name=False):
    """stdio-a on alice (prints the code), stdio-b on bob; both send nbytes at
    once. Returns (alice path, bob path, setup seconds)."""
    gen = lab.peersock(alice, "peersock stdio-a (alice)", ["stdio-a"], stdio=True, stun=stun, turn=turn,
                       by_name=by_name, extra=alice_args)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    t0 = time.monotonic()
    cons = lab.peersock(bob, "peersock stdio-b (bob)", ["stdio-b", code], stdio=True, stun=stun, turn=turn,
                        by_name=by_name, extra=bob_args)
    pa, pb = Pump(gen, nbytes, 11), Pump(cons, nbytes, 22)
    limit = scaled(90 + 4 * nbytes / (1 << 20))
    ra, rb = pa.wait(limit), pb.wait(limit)
    for p in (gen, cons):
        rc = p.wait_exit(scaled(20), what="stdio peers exit after both directions are delivered")
        lab.check(rc == 0, f"{p.name} exited with status {rc}, expected 0")
    check_same(lab, "alice", ra, "bob", rb, nbytes)
    firsts = [t for t in (pa.first_byte, pb.first_byte) if t is not None]
    setup = min(firsts) - t0 if firsts else None
    return parse_path(path_line(lab, gen, 1)), parse_path(path_line(lab, cons, 1)), setup


# Ordered pairs: alice generates the code (QUIC server, ICE controlling), so
# cone x symmetric and symmetric x cone exercise different roles.
MATRIX = list(itertools.product(TYPES, repeat=2))


@pytest.mark.deadline(300)
@pytest.mark.parametrize("a_nat,b_nat", MATRIX, ids=[f"{a}-x-{b}" for a, b in MATRIX])
@pytest.mark.parametrize("backend", nl.NAT_BACKENDS)
def test_nat_matrix(netlab, sites, a_nat, b_nat, backend):
    a = sites("a", a_nat, ["alice"], backend=backend)
    b = sites("b", b_nat, ["bob"], backend=backend)
    a.verify()
    b.verify()
    want = expected_path(a_nat, b_nat)
    nbytes = nat_bytes()
    netlab.note(f"alice behind {a_nat}, bob behind {b_nat} ({backend}): expect {want}, {mib(nbytes)} each way")
    pa, pb, setup = transfer(netlab, a.hosts[0], b.hosts[0], nbytes)
    _rows[(a_nat, b_nat, backend)] = dict(path=pa, peer_path=pb, setup=setup, expected=want)
    for who, p in (("alice", pa), ("bob", pb)):
        netlab.check(p["kind"] == want, f"{who}: expected a {want} path, got: {p['line']}")
        netlab.check(p.get("rtt") is not None, f"{who}: the path line has no rtt: {p['line']}")
    if want == "direct":
        # The addresses named are the public ones (or prflx), never the relay.
        netlab.check(nl.SERVICE_IP not in pa["line"], f"direct path names the TURN server: {pa['line']}")


@pytest.mark.deadline(300)
def test_udp_blocked_uses_turn_over_tcp(netlab, sites):
    a = sites("a", "udp-blocked", ["alice"])
    b = sites("b", "restricted", ["bob"])
    a.verify()
    b.verify()
    nbytes = nat_bytes()
    pa, pb, setup = transfer(netlab, a.hosts[0], b.hosts[0], nbytes)
    _extra["udp-blocked \u00d7 restricted"] = dict(path=pa, setup=setup, expected="relayed (TURN over TCP)")
    print(f"udp-blocked setup: {setup:.2f} s")  # cited in src/ice/agent.cpp (pytest -s shows it)
    netlab.check(pa["kind"] == "relayed" and "over tcp" in pa["line"],
                 f"alice (UDP blocked) must use TURN over TCP, got: {pa['line']}")
    netlab.check(pb["kind"] == "relayed", f"bob must see a relayed path, got: {pb['line']}")


@pytest.mark.deadline(300)
def test_turn_server_given_by_name(netlab, sites):
    """STUN/TURN given as a host name (resolved asynchronously) still relay."""
    a = sites("a", "symmetric", ["alice"])
    b = sites("b", "symmetric", ["bob"])
    pa, pb, setup = transfer(netlab, a.hosts[0], b.hosts[0], 1 << 20, by_name=True)
    netlab.check(pa["kind"] == "relayed", f"alice: expected a relayed path, got: {pa['line']}")


@pytest.mark.deadline(300)
def test_same_lan_uses_host_candidates(netlab, sites):
    a = sites("a", "restricted", ["alice", "alice2"])
    nbytes = nat_bytes()
    alice, alice2 = a.hosts
    # STUN and TURN are configured, yet the LAN path must win.
    pa, pb, setup = transfer(netlab, alice, alice2, nbytes)
    _extra["same LAN (behind restricted)"] = dict(path=pa, setup=setup, expected="direct, host candidates")
    netlab.check(pa["kind"] == "direct", f"same-LAN peers must connect directly, got: {pa['line']}")
    netlab.check(pa["local"] == f"{alice.ip}:{pa['local'].rsplit(':', 1)[1]}"
                 and pa["remote"].startswith(alice2.ip + ":"),
                 f"same-LAN path must use the LAN addresses {alice.ip} and {alice2.ip}: {pa['line']}")


@pytest.mark.deadline(300)
def test_same_lan_with_100ms_rtt_on_one_host(netlab, sites):
    """Per-host impairment: alice's own link adds 100 ms RTT to everything,
    the LAN path included (setup time recorded, not asserted)."""
    a = sites("a", "restricted", ["alice", "alice2"])
    alice, alice2 = a.hosts
    alice.impair(rtt_ms=100)
    pa, pb, setup = transfer(netlab, alice, alice2, 1 << 20)
    _extra["same LAN, +100 ms RTT on alice's link, 1 MiB"] = dict(path=pa, setup=setup, expected="direct, host candidates")
    netlab.check(pa["kind"] == "direct" and pa["remote"].startswith(alice2.ip + ":"),
                 f"same-LAN peers must connect directly over the LAN, got: {pa['line']}")
    netlab.check(pa["rtt"] is not None and float(pa["rtt"]) >= 95, f"the rtt must show the added 100 ms: {pa['line']}")


@pytest.mark.deadline(300)
def test_force_relay_relays_even_when_direct_works(netlab, sites):
    a = sites("a", "cone", ["alice"])
    b = sites("b", "none", ["bob"])
    nbytes = min(nat_bytes(), 4 << 20)
    pa, pb, setup = transfer(netlab, a.hosts[0], b.hosts[0], nbytes,
                             alice_args=["--force-relay"], bob_args=["--force-relay"])
    _extra["cone \u00d7 none with --force-relay"] = dict(path=pa, setup=setup, expected="relayed")
    for who, p in (("alice", pa), ("bob", pb)):
        netlab.check(p["kind"] == "relayed", f"{who}: --force-relay must relay, got: {p['line']}")


@pytest.mark.deadline(300)
def test_restricted_routers_with_late_drop_still_connect(netlab, sites):
    """Routers that drop unsolicited packets in the filter table (typical
    Linux firewalls) keep a conntrack entry of the peer's first punching
    packet, which can take the mapping the host needs: hole punching may
    fail. Whatever the path, the connection must work (TURN fallback); the
    path is recorded, not asserted."""
    a = sites("a", "restricted", ["alice"], late_drop=True)
    b = sites("b", "restricted", ["bob"], late_drop=True)
    a.verify()
    b.verify()
    pa, pb, setup = transfer(netlab, a.hosts[0], b.hosts[0], 1 << 20)
    _extra["restricted × restricted, routers drop unsolicited packets late (Linux firewall style), 1 MiB"] = \
        dict(path=pa, setup=setup, expected="connects (direct or relayed)")


# +rtt_ms on every crossing of wan's edge: peer to peer and peer to server
# each gain rtt_ms, a path through the relay twice that. The last row gives
# a relayed path of 100 ms RTT.
DELAYED = [("restricted", "restricted", 100), ("symmetric", "symmetric", 100), ("symmetric", "symmetric", 50)]


@pytest.mark.deadline(300)
@pytest.mark.parametrize("a_nat,b_nat,rtt_ms", DELAYED, ids=[f"{a}-x-{b}-{r}ms" for a, b, r in DELAYED])
def test_nat_with_added_rtt(netlab, sites, a_nat, b_nat, rtt_ms):
    """Setup time with more RTT on every path (measured, not asserted; the
    goal is 1.5 s)."""
    a = sites("a", a_nat, ["alice"])
    b = sites("b", b_nat, ["bob"])
    netlab.impair(rtt_ms=rtt_ms)
    try:
        pa, pb, setup = transfer(netlab, a.hosts[0], b.hosts[0], 1 << 20)
    finally:
        netlab.clear_impairment()
    want = expected_path(a_nat, b_nat)
    print(f"{a_nat} x {b_nat}, +{rtt_ms} ms: setup {setup:.2f} s, {pa['line']}")  # pytest -s
    on_path = 2 * rtt_ms if want == "relayed" else rtt_ms
    _extra[f"{a_nat} × {b_nat}, +{rtt_ms} ms RTT ({on_path} ms on the {want} path), 1 MiB"] = dict(
        path=pa, setup=setup, expected=want)
    netlab.check(pa["kind"] == want, f"alice: expected a {want} path, got: {pa['line']}")
    netlab.check(pa["rtt"] is not None and float(pa["rtt"]) >= on_path - 5,
                 f"alice: the rtt must show the added {on_path} ms: {pa['line']}")


@pytest.mark.deadline(300)
def test_nat_with_loss(netlab, sites):
    """2 % loss on every crossing of wan's edge (about 4 % per round trip) and
    40 ms more RTT: ICE, QUIC and auth retransmit; the data arrives intact."""
    a = sites("a", "restricted", ["alice"])
    b = sites("b", "cone", ["bob"])
    netlab.impair(rtt_ms=40, loss_percent=2)
    try:
        pa, pb, setup = transfer(netlab, a.hosts[0], b.hosts[0], 1 << 20)
    finally:
        netlab.clear_impairment()
    _extra["restricted × cone, +40 ms RTT, 2 % loss per crossing, 1 MiB"] = dict(path=pa, setup=setup,
                                                                                   expected="direct")
    netlab.check(pa["kind"] == "direct", f"alice: expected a direct path, got: {pa['line']}")


@pytest.mark.deadline(120)
@pytest.mark.parametrize("how", ["no-turn-server", "no-relay-flag"])
def test_no_path_fails_in_bounded_time(netlab, sites, how):
    a = sites("a", "symmetric", ["alice"])
    b = sites("b", "restricted", ["bob"])
    kw = dict(turn=False) if how == "no-turn-server" else dict(extra=["--no-relay"])
    gen = netlab.peersock(a.hosts[0], "peersock stdio-a (alice)", ["stdio-a"], stdio=True, **kw)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    t0 = time.monotonic()
    cons = netlab.peersock(b.hosts[0], "peersock stdio-b (bob)", ["stdio-b", code], stdio=True, **kw)
    want = NO_PATH_NO_TURN if how == "no-turn-server" else \
        "no network path to the peer (tried: host, srflx; TURN disabled by --no-relay)"
    for p in (gen, cons):
        rc = p.wait_exit(scaled(45) - (time.monotonic() - t0), what="ICE failure must end both sides within 45 s")
        netlab.check(rc == EXIT_NO_PATH, f"{p.name} exited with {rc}, expected {EXIT_NO_PATH} (no network path)")
        netlab.check(p.find(re.escape("peersock: " + want)) is not None, f"{p.name}: no line {want!r}")
    _extra[f"symmetric \u00d7 restricted, {how}"] = dict(
        path=dict(kind="failed", line=want), setup=time.monotonic() - t0, expected="exit 4 (no path)")


def _connected_pair(netlab, a, b, extra=()):
    gen = netlab.peersock(a.hosts[0], "peersock stdio-a (alice)", ["stdio-a"], stdio=True, extra=extra)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    cons = netlab.peersock(b.hosts[0], "peersock stdio-b (bob)", ["stdio-b", code], stdio=True, extra=extra)
    # Data flows both ways before the failure.
    for src, dst in ((gen, cons), (cons, gen)):
        src.proc.stdin.write(b"ping\n")
        src.proc.stdin.flush()
    for p in (gen, cons):
        line = p.proc.stdout.readline()
        netlab.check(line == b"ping\n", f"{p.name}: expected the peer's first line, got {line!r}")
        path_line(netlab, p, scaled(10))
    return gen, cons


@pytest.mark.deadline(150)
@pytest.mark.parametrize("failure", ["peer-killed", "link-cut"])
def test_dead_peer_is_detected_within_30s(netlab, sites, failure):
    a = sites("a", "restricted", ["alice"])
    b = sites("b", "restricted", ["bob"])
    # --reconnect-timeout 0: QUIC's idle timeout decides, as before path
    # resumption (test_outage.py covers the default).
    gen, cons = _connected_pair(netlab, a, b, extra=("--reconnect-timeout", "0"))
    t0 = time.monotonic()
    if failure == "peer-killed":
        cons.signal(signal.SIGKILL)
        survivors = [gen]
    else:
        nl.run(["ip", "-n", b.hosts[0].ns.name, "link", "set", "eth0", "down"])
        survivors = [gen, cons]
    for p in survivors:
        rc = p.wait_exit(30 - (time.monotonic() - t0) + 2, what=f"{failure}: detected within 30 s")
        took = time.monotonic() - t0
        netlab.note(f"{p.name} noticed after {took:.1f}s")
        netlab.check(rc == EXIT_PEER_GONE, f"{p.name} exited with {rc}, expected {EXIT_PEER_GONE} (peer gone)")
        netlab.check(p.find(r"peersock: connection to the peer lost") is not None,
                     f"{p.name}: no 'connection to the peer lost' line")
        _extra[f"detect {failure} ({p.name.split('(')[1].rstrip(')')})"] = dict(
            path=dict(kind="lost", line="connection to the peer lost"), setup=took, expected="exit 5 within 30 s")


def _fmt_setup(s):
    return "-" if s is None else f"{s:.2f} s"


def write_matrix_doc():
    if len(_rows) != len(MATRIX) * len(nl.NAT_BACKENDS):
        return  # a subset ran: keep the committed table
    if scaled(1) != 1:
        return  # a slowed-down run (sanitizers): its timings are not the reference
    lines = [
        "# NAT matrix",
        "",
        "Generated by `tests/e2e/test_nat_matrix.py` (do not edit by hand) on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{mib(nat_bytes())} each way per pair.",
        "",
        "The lab (`tests/netlab/`) is real Linux NAT in network namespaces: coturn and the",
        "mailbox server on 203.0.113.10, alice behind router A (203.0.113.2), bob behind",
        "router B (198.51.100.2). Each router's NAT type is verified by a probe first.",
        "Every pair runs twice: routers built with nftables, and with iptables",
        "(`MASQUERADE --random-fully` for symmetric; `netlab.nat_iptables`).",
        "Setup time: from starting the second peer to the first forwarded byte, on a",
        "shared 2-core machine without added delay (noisy; not asserted).",
        "",
        "| alice | bob | expected | path (as alice reports it, nftables) | setup time | iptables: path | setup time |",
        "|---|---|---|---|---|---|---|",
    ]
    for a, b in MATRIX:
        r, i = _rows[(a, b, "nft")], _rows[(a, b, "iptables")]
        lines.append(f"| {a} | {b} | {r['expected']} | `{r['path']['line'].strip()}` | {_fmt_setup(r['setup'])} "
                     f"| {i['path']['kind']} | {_fmt_setup(i['setup'])} |")
    if _extra:
        lines += ["", "Other scenarios:", "", "| scenario | expected | result | time |", "|---|---|---|---|"]
        for name, r in _extra.items():
            lines.append(f"| {name} | {r['expected']} | `{r['path']['line'].strip()}` | {_fmt_setup(r['setup'])} |")
    lines += ["", "`time` is the setup time for transfers, the time to exit for failures.", ""]
    if SESSION_ROWS:
        lines += ["Sessions through outages and path changes (`tests/e2e/test_outage.py`,",
                  "`tests/e2e/test_path_change.py`), in the same run: a stdio stream both ways, paced",
                  "to 8 Mbit/s, every byte checked. `time`: from the path's return (outages) or",
                  "the change (path changes) until both sides answer again; for exits, from the",
                  "start of the outage to the exit.",
                  "", "| scenario | alice × bob | expected | result | time |", "|---|---|---|---|---|"]
        for name, r in SESSION_ROWS.items():
            lines.append(f"| {name} | {r['nats']} | {r['expected']} | {r['result']} | {_fmt_setup(r['time'])} |")
        lines.append("")
    try:
        MATRIX_DOC.write_text("\n".join(lines))
    except OSError as e:
        print(f"cannot write {MATRIX_DOC}: {e}", file=sys.stderr)


SESSION_FINISHERS.append(write_matrix_doc)  # at the end of the session: conftest.py


@pytest.mark.deadline(90)
def test_silent_rendezvous_server_times_out(netlab, sites):
    """A mailbox address whose packets vanish (no refusal, no ICMP): the
    rendezvous connect timeout ends the run with exit 6, no hang."""
    a = sites("a", "restricted", ["alice"])
    argv = [nl.e2e.peersock_bin(), "--relay", "ws://203.0.113.99:4000/v1", "--stun", "", "--turn", "", "stdio-a"]
    p = a.hosts[0].start("peersock stdio-a (alice)", argv, env=netlab.peer_env())
    t0 = time.monotonic()
    rc = p.wait_exit(scaled(30), what="an unanswering rendezvous server must fail within 30 s")
    netlab.check(rc == 6, f"{p.name} exited with {rc}, expected 6 (rendezvous server unreachable)")
    netlab.check(p.find(r"^peersock: ") is not None, f"{p.name}: no 'peersock: ...' error line")
    _extra["rendezvous server silent (packets dropped)"] = dict(
        path=dict(kind="failed", line=p.find(r"^peersock: ").string), setup=time.monotonic() - t0,
        expected="exit 6 after the connect timeout")
