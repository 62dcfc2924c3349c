"""Data through the tunnel: every opener/acceptor combination, both code orientations.

opener   = `listen PORT` (a TCP client connects to it) or `stdio-b` (our stdin/stdout)
acceptor = `connect HOST:PORT` (forwards to a target server) or `stdio-a`
Both ends of the tunnel send seeded random data at the same time, then
half-close; each end hashes what it sent and what it received.
"""
import re

import pytest

from lab import (AUTH_RE, LISTEN_PORT, TARGET_PORT, Pump, check_same, mib, scaled, big_bytes)

OPENER_SEED, ACCEPTOR_SEED = 202, 101


def transfer_timeout(nbytes):
    # generous: 60 s plus 3 s per MiB (64 MiB -> ~4 min) before the time scale
    return scaled(60 + 3 * nbytes / (1 << 20))


def tunnel_transfer(lab, opener, acceptor, generator, nbytes, older_consumer=None):
    """older_consumer: a protocol version (PEERSOCK_PROTOCOL) for the side
    that types the code; both sides must then log that they speak it."""
    assert opener in ("listen", "stdio-b") and acceptor in ("connect", "stdio-a")
    assert generator in ("opener", "acceptor")
    xfer = transfer_timeout(nbytes)
    lab.note(f"{opener} <-> {acceptor}, {generator} generates the code, {mib(nbytes)} each way, "
             f"transfer deadline {xfer:.0f}s")

    target = None
    if acceptor == "connect":
        target = lab.helper("target server", [
            "server", "--port", str(TARGET_PORT), "--bytes", str(nbytes), "--seed", str(ACCEPTOR_SEED),
            "--once", "--timeout", str(int(xfer + scaled(120)))])
        target.wait_event("listening", scaled(15), what="the target server to listen")
        acc_args = ["connect", f"127.0.0.1:{TARGET_PORT}"]
    else:
        acc_args = ["stdio-a"]
    opn_args = ["listen", str(LISTEN_PORT)] if opener == "listen" else ["stdio-b"]
    opn_name, acc_name = f"peersock {opener}", f"peersock {acceptor}"
    cons_env = None
    if older_consumer is not None:
        cons_env = {"PEERSOCK_PROTOCOL": str(older_consumer)}
        acc_args, opn_args = ["--debug=ice", *acc_args], ["--debug=ice", *opn_args]

    client = None

    def start_client(_code=None):
        nonlocal client
        client = lab.helper("tcp client", [
            "client", "--port", str(LISTEN_PORT), "--bytes", str(nbytes), "--seed", str(OPENER_SEED),
            "--connect-timeout", str(int(scaled(30))), "--timeout", str(int(xfer + scaled(120)))])

    if generator == "opener":
        # listen binds before rendezvous: the client connects before the other
        # peer even starts, i.e. before authentication; its data must be
        # forwarded once the tunnel is up.
        opn, acc, code = lab.start_pair(opn_name, opn_args, acc_name, acc_args,
                                        gen_stdio=opener == "stdio-b", cons_stdio=acceptor == "stdio-a",
                                        between=start_client if opener == "listen" else None, cons_env=cons_env)
    else:
        acc, opn, code = lab.start_pair(acc_name, acc_args, opn_name, opn_args,
                                        gen_stdio=acceptor == "stdio-a", cons_stdio=opener == "stdio-b",
                                        cons_env=cons_env)
        if opener == "listen":
            start_client()

    opn_pump = Pump(opn, nbytes, OPENER_SEED) if opener == "stdio-b" else None
    acc_pump = Pump(acc, nbytes, ACCEPTOR_SEED) if acceptor == "stdio-a" else None
    peers = [opn, acc]
    tcp_peers = [p for p in peers if p.name in ("peersock listen", "peersock connect")]
    # listen<->connect keep serving new connections; opposite a stdio peer,
    # the tunnel ends when the stdio side has delivered everything and left.
    tunnel_stays_up = len(tcp_peers) == 2

    def end_result(helper, pump):
        if pump is not None:
            return None if pump.t_send.is_alive() or pump.t_recv.is_alive() else pump.summary()
        return helper.event("done")

    def results():
        o, a = end_result(client, opn_pump), end_result(target, acc_pump)
        return (o, a) if o is not None and a is not None else None

    def problem():
        for p in peers:
            rc = p.returncode
            if rc is not None and (rc != 0 or (p in tcp_peers and tunnel_stays_up)):
                return f"{p.name} exited with status {rc}"
        for h in (client, target):
            if h is None:
                continue
            for bad in ("timeout", "connect_failed"):
                e = h.event(bad)
                if e:
                    return f"{h.name} reported {e}"
            if h.returncode not in (None, 0):
                return f"{h.name} exited with status {h.returncode}"
        return None

    o_res, a_res = lab.wait_for(results, xfer, f"{mib(nbytes)} each way through the tunnel", fail_if=problem)
    check_same(lab, f"{opener} end", o_res, f"{acceptor} end", a_res, nbytes)

    for p in peers:
        if p in tcp_peers and tunnel_stays_up:
            lab.check(p.returncode is None, f"{p.name} exited ({p.returncode}) after the tunneled "
                                            f"connection ended; it should keep serving")
        elif p in tcp_peers:
            rc = p.wait_exit(scaled(30), what="the listen/connect side must exit once its stdio peer has left")
            lab.check(rc == 0, f"{p.name} exited with status {rc}, expected 0")
        else:
            rc = p.wait_exit(scaled(30), what="stdio mode must exit once both directions are finished")
            lab.check(rc == 0, f"{p.name} exited with status {rc}, expected 0")
    for p in peers:
        lab.check(p.find(AUTH_RE) is not None, f"{p.name} never printed an 'authenticated' line")
    if older_consumer is not None:
        # Each side logs the version the other announced: the generator sees
        # the older one, the consumer ours (and both then use the older).
        gen, cons = (opn, acc) if generator == "opener" else (acc, opn)
        lab.check(gen.find(re.compile(rf"peer protocol version {older_consumer}\b")) is not None,
                  f"{gen.name} did not see protocol version {older_consumer} from its peer")


ORIENTATIONS = [pytest.param("opener", id="opener-generates-code"),
                pytest.param("acceptor", id="acceptor-generates-code")]


@pytest.mark.deadline(600)
@pytest.mark.parametrize("generator", ORIENTATIONS)
def test_listen_connect_64mib_each_way(lab, generator):
    tunnel_transfer(lab, "listen", "connect", generator, big_bytes())


@pytest.mark.deadline(600)
@pytest.mark.parametrize("generator", ORIENTATIONS)
def test_stdio_64mib_each_way(lab, generator):
    tunnel_transfer(lab, "stdio-b", "stdio-a", generator, big_bytes())


@pytest.mark.deadline(240)
@pytest.mark.parametrize("generator", ORIENTATIONS)
@pytest.mark.parametrize("opener,acceptor", [
    pytest.param("listen", "stdio-a", id="listen-to-stdio-a"),
    pytest.param("stdio-b", "connect", id="stdio-b-to-connect"),
])
def test_mixed_modes_4mib(lab, opener, acceptor, generator):
    tunnel_transfer(lab, opener, acceptor, generator, 4 << 20)


# The two mode pairs the older-peer tests run in.
LISTEN_AND_STDIO = [
    pytest.param("listen", "connect", id="listen-connect"),
    pytest.param("stdio-b", "stdio-a", id="stdio"),
]


@pytest.mark.deadline(300)
@pytest.mark.parametrize("opener,acceptor", LISTEN_AND_STDIO)
@pytest.mark.parametrize("generator", ORIENTATIONS)
def test_peer_speaking_protocol_2_interoperates(lab, opener, acceptor, generator):
    """A peer from before per-stream credit (it announces "v":2): both sides
    fall back to v2 (no 'C' frames on stream 0) and the data still arrives
    complete both ways, with a clean half-close and exit 0 in stdio mode."""
    tunnel_transfer(lab, opener, acceptor, generator, 8 << 20, older_consumer=2)


@pytest.mark.deadline(300)
@pytest.mark.parametrize("opener,acceptor", LISTEN_AND_STDIO)
@pytest.mark.parametrize("generator", ORIENTATIONS)
def test_peer_speaking_protocol_6_interoperates(lab, opener, acceptor, generator):
    """A release before v7, where the QUIC client starts SMP once its
    handshake is done: both sides run SMP the v6 way and the data arrives
    complete both ways."""
    tunnel_transfer(lab, opener, acceptor, generator, 8 << 20, older_consumer=6)
