"""Interop: our `peersock` (ngtcp2 QUIC) against an honest peer built on
OpenSSL 3.5's own QUIC stack (`psk-attacker peer`, tests/tools/attacker.cpp
with tests/tools/ossl_quic), speaking protocol version 2.

Every test runs in both code orientations, so both QUIC roles (the code
generator is the QUIC server), and every test requires that both sides
authenticated -- SMP binds the secret to the TLS exporter, so authentication
proves the two QUIC stacks derived the same exporter -- and that peersock saw
protocol version 2 from the OpenSSL peer.

stdio: one `peersock stdio-a|stdio-b` against the OpenSSL peer in the other
stdio mode sends big_bytes() (64 MiB) of seeded random data each way at once.
Both sides must deliver every byte (equal SHA-256) and exit 0 after the v2
stream-0 'D' exchange. The ping on stream 0 ('P'/'Q') must have worked both
ways too: each side measured an RTT.

listen/connect: `peersock listen` against the OpenSSL peer's `--mode connect`,
and `peersock connect` against its `--mode listen`, with a real TCP target
and TCP clients (tcp_sink_source.py). Two connections run through the tunnel
at once: one moves big_bytes() each way at the same time; the other
half-closes first (the target sends big_bytes() and its FIN, only then does
the client send 4 MiB). Every byte must arrive (SHA-256 at the TCP ends), the
OpenSSL peer must have finished both streams with a FIN each way and received
peersock's 'D' for each. The side running `listen` is then stopped with
SIGTERM and closes with code 0; the other must exit 0 on that close. A second
test sends 120 connections of random sizes through each pairing.
"""
import json
import re
import signal
import subprocess

import pytest

from lab import (AUTH_RE, CODE_RE, HELPER, LISTEN_PORT, PYTHON, TARGET_PORT, Pump, big_bytes, check_same, mib, peer_env,
                 scaled)
from test_attacks import attacker_bin
from test_data_plane import match_many

OURS_SEED, OSSL_SEED = 303, 404
PEER_VERSION = 2  # what the OpenSSL peer announces and implements


def transfer_timeout(nbytes):
    # as test_tunnel.py: 60 s plus 3 s per MiB before the time scale
    return scaled(60 + 3 * nbytes / (1 << 20))


def ossl_events(proc, name):
    """The OpenSSL peer's JSON events (on stderr: its stdout is the data)."""
    out = []
    for line in proc.lines("stderr"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict) and e.get("event") == name:
            out.append(e)
    return out


def start_ossl_peer(lab, mode, code, timeout):
    argv = [attacker_bin(), "peer", "--relay", lab.relay_url, "--mode", mode, "--protocol", str(PEER_VERSION),
            "--timeout", str(int(timeout))]
    argv += ["--code", code] if code else ["--generate"]
    return lab.start(f"openssl peer {mode}", argv, stdin=subprocess.PIPE, stdout="pipe", env=peer_env(lab.home))


@pytest.mark.deadline(600)
@pytest.mark.parametrize("generator", ["ours", "openssl"], ids=["peersock-generates", "openssl-generates"])
@pytest.mark.parametrize("ours_mode", ["stdio-a", "stdio-b"])
def test_stdio_against_openssl_quic_peer(lab, ours_mode, generator):
    ossl_mode = "stdio-b" if ours_mode == "stdio-a" else "stdio-a"
    nbytes = big_bytes()
    xfer = transfer_timeout(nbytes)
    lab.note(f"peersock {ours_mode} <-> OpenSSL peer {ossl_mode}, {generator} generates the code "
             f"(QUIC server), {mib(nbytes)} each way, transfer deadline {xfer:.0f}s")
    # --debug=ice: peersock logs the version the peer announced.
    ours_args = ["--debug=ice", ours_mode]
    if generator == "ours":
        ours = lab.peersock(f"peersock {ours_mode}", ours_args, stdio=True)
        code = ours.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
        ossl = start_ossl_peer(lab, ossl_mode, code, xfer + scaled(60))
    else:
        ossl = start_ossl_peer(lab, ossl_mode, None, xfer + scaled(60))
        code = ossl.wait_line(CODE_RE, scaled(20), what="the OpenSSL peer's 'Connection code:' line").group(1)
        ours = lab.peersock(f"peersock {ours_mode}", [*ours_args, code], stdio=True)
    lab.note(f"connection code: {code}")

    ours_pump, ossl_pump = Pump(ours, nbytes, OURS_SEED), Pump(ossl, nbytes, OSSL_SEED)
    peers = [ours, ossl]

    def finished():
        return all(not (p.t_send.is_alive() or p.t_recv.is_alive()) for p in (ours_pump, ossl_pump))

    def problem():
        for p in peers:
            if p.returncode not in (None, 0):
                return f"{p.name} exited with status {p.returncode}"
        return None

    lab.wait_for(finished, xfer, f"{mib(nbytes)} each way between peersock and the OpenSSL peer", fail_if=problem)
    check_same(lab, f"peersock {ours_mode}", ours_pump.summary(), f"openssl {ossl_mode}", ossl_pump.summary(), nbytes)

    for p in peers:
        rc = p.wait_exit(scaled(30), what="stdio mode must exit once both directions are finished")
        lab.check(rc == 0, f"{p.name} exited with status {rc}, expected 0")
    lab.check(ours.find(AUTH_RE) is not None, f"{ours.name} never printed an 'authenticated' line")
    lab.check(ossl_events(ossl, "authenticated"), f"{ossl.name} never authenticated")
    # The v2 end of a stdio run: each side said 'D' and saw the other's.
    lab.check(ossl_events(ossl, "peer_done"), f"{ossl.name} never got peersock's 'D' on stream 0")
    done = ossl_events(ossl, "done")
    lab.check(done and done[0].get("clean") and done[0].get("sent") == nbytes and done[0].get("received") == nbytes,
              f"{ossl.name}: its summary does not report a clean end with {nbytes} bytes each way: {done}")
    lab.check(ours.find(re.compile(rf"peer protocol version {PEER_VERSION}\b")) is not None,
              f"{ours.name} did not see protocol version {PEER_VERSION} from the OpenSSL peer")
    # Stream 0 pings: the client pings after auth, the server answers and pings back.
    lab.check(ours.find(r"connected directly .*rtt [\d.]+ ms") is not None,
              f"{ours.name}: the path line has no RTT (no 'Q' for its 'P' on stream 0)")
    lab.check(ossl_events(ossl, "rtt"), f"{ossl.name} measured no RTT (no 'Q' for its 'P' on stream 0)")


# ---- listen / connect --------------------------------------------------------

SMALL_BYTES = 4 << 20  # the second connection's upstream; it runs alongside the big one
SERVER_SEED, BIG_SEED, SMALL_SEED = 505, 606, 707


def start_ossl_tcp_peer(lab, mode, target, code, timeout):
    """`psk-attacker peer --mode listen PORT | connect HOST:PORT`: events on stdout."""
    argv = [attacker_bin(), "peer", "--relay", lab.relay_url, "--mode", mode, target,
            "--protocol", str(PEER_VERSION), "--timeout", str(int(timeout))]
    argv += ["--code", code] if code else ["--generate"]
    return lab.start(f"openssl peer {mode}", argv, env=peer_env(lab.home))


def start_tcp_pair(lab, ours_mode, generator, ossl_timeout):
    """peersock listen|connect and the OpenSSL peer in the other mode, the
    code from `generator` ("ours" or "openssl"), both authenticated -- SMP
    over the TLS exporter succeeded on each side, so the two QUIC stacks
    derived the same exporter. Returns (ours, ossl, alive) where alive() is
    a fail_if for lab.wait_for."""
    ossl_mode = "connect" if ours_mode == "listen" else "listen"
    target = f"127.0.0.1:{TARGET_PORT}"
    ours_args = ["--debug=ice", *(["listen", str(LISTEN_PORT)] if ours_mode == "listen" else ["connect", target])]
    ossl_target = target if ossl_mode == "connect" else str(LISTEN_PORT)
    if generator == "ours":
        ours = lab.peersock(f"peersock {ours_mode}", ours_args)
        code = ours.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
        ossl = start_ossl_tcp_peer(lab, ossl_mode, ossl_target, code, ossl_timeout)
    else:
        ossl = start_ossl_tcp_peer(lab, ossl_mode, ossl_target, None, ossl_timeout)
        code = ossl.wait_line(CODE_RE, scaled(20), what="the OpenSSL peer's 'Connection code:' line").group(1)
        ours = lab.peersock(f"peersock {ours_mode}", [*ours_args, code])
    lab.note(f"connection code: {code}")

    def alive():
        for p in (ours, ossl):
            if p.returncode is not None:
                return f"{p.name} exited with status {p.returncode}"
        return None

    ours.wait_line(AUTH_RE, scaled(60), what="peersock's 'authenticated' line")
    lab.wait_for(lambda: ossl.event("authenticated"), scaled(60), "the OpenSSL peer to authenticate", fail_if=alive)
    return ours, ossl, alive


@pytest.mark.deadline(600)
@pytest.mark.parametrize("generator", ["ours", "openssl"], ids=["peersock-generates", "openssl-generates"])
@pytest.mark.parametrize("ours_mode", ["listen", "connect"])
def test_tcp_against_openssl_quic_peer(lab, ours_mode, generator):
    ossl_mode = "connect" if ours_mode == "listen" else "listen"
    nbytes = big_bytes()
    # Two connections at once through the tunnel: "big" moves nbytes each way
    # at the same time; "half" half-closes first: the target sends nbytes and
    # its FIN, and only after that EOF does the client send SMALL_BYTES.
    xfer = transfer_timeout(2 * nbytes)
    lab.note(f"peersock {ours_mode} <-> OpenSSL peer {ossl_mode}, {generator} generates the code (QUIC server); "
             f"two connections at once: {mib(nbytes)} each way, and {mib(nbytes)} down then {mib(SMALL_BYTES)} up; "
             f"transfer deadline {xfer:.0f}s")
    server = lab.helper("target server", ["server", "--port", str(TARGET_PORT), "--bytes", str(nbytes),
                                          "--seed", str(SERVER_SEED), "--timeout", str(int(xfer + scaled(120)))])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    ours, ossl, alive = start_tcp_pair(lab, ours_mode, generator, xfer + scaled(120))

    client_timeout = str(int(xfer + scaled(60)))
    # "half" reads nothing until told to, so it is open at the target (and
    # unfinished) when "big" arrives: the two run through the tunnel at once.
    half = lab.start("tcp client half-close", [PYTHON, "-u", str(HELPER), "client", "--port", str(LISTEN_PORT),
                                               "--bytes", str(SMALL_BYTES), "--seed", str(SMALL_SEED), "--after-eof",
                                               "--pause-read", "--timeout", client_timeout], stdin=subprocess.PIPE)

    def accepted():
        return len([e for e in server.events() if e.get("event") == "accepted"])

    lab.wait_for(lambda: accepted() >= 1, scaled(30), "the first connection to reach the target", fail_if=alive)
    big = lab.helper("tcp client big", ["client", "--port", str(LISTEN_PORT), "--bytes", str(nbytes),
                                        "--seed", str(BIG_SEED), "--timeout", client_timeout])
    lab.wait_for(lambda: accepted() >= 2, scaled(30), "the second connection to reach the target", fail_if=alive)
    half.proc.stdin.write(b"go\n")
    half.proc.stdin.flush()
    results = {}
    for c in (big, half):
        results[c.name] = lab.wait_for(lambda c=c: c.event("done") or c.event("timeout"), xfer,
                                       f"{c.name} to finish", fail_if=alive)
    lab.wait_for(lambda: len([e for e in server.events() if e.get("event") == "done"]) >= 2, scaled(60),
                 "the target server to finish both connections", fail_if=alive)
    order = [e.get("event") for e in server.events() if e.get("event") in ("accepted", "done")]
    lab.check(order[:2] == ["accepted", "accepted"],
              f"a connection finished before the other one reached the target (not concurrent): {order}")
    server_done = [e for e in server.events() if e.get("event") == "done"]
    for c, up in ((big, nbytes), (half, SMALL_BYTES)):
        r = results[c.name]
        lab.check(r["event"] == "done" and not r["send_error"] and not r["recv_error"], f"{c.name}: {r}")
        lab.check(r["sent"] == up and r["recv"] == nbytes, f"{c.name}: sent {r['sent']} of {up}, received "
                  f"{r['recv']} of {nbytes}")
        # The server's view of the same connection: the one that received what this client sent.
        s = [e for e in server_done if e["recv_sha256"] == r["sent_sha256"] and e["recv"] == up]
        lab.check(len(s) == 1, f"{c.name} upstream: no target connection received its {mib(up)} intact "
                  f"(sha256 {r['sent_sha256'][:16]}...; server saw {[(e['recv'], e['recv_sha256'][:16]) for e in server_done]})")
        lab.check(r["recv_sha256"] == s[0]["sent_sha256"],
                  f"{c.name} downstream: received sha256 {r['recv_sha256'][:16]}... differs from what the target sent")

    # The OpenSSL peer finished both connections cleanly (both FINs), each
    # with the byte counts the TCP ends saw, and got peersock's 'D' for each.
    # Its 'conn_done' follows the TCP end's own 'done' (it needs that end's
    # close and the QUIC FIN both), so wait for it rather than read it now.
    def ossl_conns():
        return [e for e in ossl.events() if e.get("event") == "conn_done"]
    lab.wait_for(lambda: len(ossl_conns()) >= 2 or ossl.event("conn_reset"), scaled(30),
                 "the OpenSSL peer to finish both connections", fail_if=alive)
    conns = ossl_conns()
    lab.check(len(conns) == 2 and not ossl.event("conn_reset"),
              f"{ossl.name}: expected 2 clean connections: {conns}, resets {ossl.event('conn_reset')}")
    # Its socket is the target's (connect) or the client's (listen).
    up_key, down_key = ("received", "sent") if ossl_mode == "connect" else ("sent", "received")
    lab.check(sorted(e[up_key] for e in conns) == sorted([nbytes, SMALL_BYTES])
              and [e[down_key] for e in conns] == [nbytes, nbytes], f"{ossl.name}: byte counts {conns}")
    lab.wait_for(lambda: max([e.get("count", 0) for e in ossl.events() if e.get("event") == "peer_done"], default=0)
                 >= 2, scaled(30), "peersock's 'D' on stream 0 for both connections", fail_if=alive)

    # The end: the side that runs `listen` here is stopped by a signal and
    # closes with code 0; the other one must take that as a normal end.
    if ours_mode == "listen":
        ours.signal(signal.SIGTERM)
        lab.check(ours.wait_exit(scaled(20)) == 130, f"{ours.name} should exit 130 after SIGTERM")
        rc = ossl.wait_exit(scaled(20), what="peersock closed the connection with code 0")
        lab.check(rc == 0, f"{ossl.name} exited with status {rc} after peersock's close, expected 0")
    else:
        ossl.signal(signal.SIGTERM)
        rc = ossl.wait_exit(scaled(20), what="SIGTERM: close with code 0, then exit")
        lab.check(rc == 0, f"{ossl.name} exited with status {rc} after SIGTERM, expected 0")
        rc = ours.wait_exit(scaled(20), what="the OpenSSL peer closed the connection with code 0")
        lab.check(rc == 0, f"{ours.name} exited with status {rc} after the peer's close, expected 0")
    done = ossl.event("done")
    lab.check(done and done.get("clean") and done.get("connections") == 2 and done.get("connections_clean") == 2,
              f"{ossl.name}: its summary does not report a clean end with 2 clean connections: {done}")
    lab.check(ours.find(re.compile(rf"peer protocol version {PEER_VERSION}\b")) is not None,
              f"{ours.name} did not see protocol version {PEER_VERSION} from the OpenSSL peer")


@pytest.mark.deadline(600)
@pytest.mark.parametrize("ours_mode", ["listen", "connect"])
def test_many_tcp_connections_against_openssl_quic_peer(lab, ours_mode):
    """120 connections started at once, random sizes up to 8 MiB each way
    (about 32 MiB in all per direction), through peersock and the OpenSSL
    peer. More than the 100 streams each side allows at first: the limit must
    be raised (MAX_STREAMS) as streams end. The side in `connect` mode
    generates the code."""
    count, total = 120, 32 << 20
    server = lab.helper("many server", ["mserver", "--port", str(TARGET_PORT), "--timeout", str(int(scaled(500)))])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    ours, ossl, alive = start_tcp_pair(lab, ours_mode, "ours" if ours_mode == "connect" else "openssl", scaled(500))
    deadline = scaled(90 + 4 * 2 * total / (1 << 20))
    client = lab.helper("many client", ["mclient", "--port", str(LISTEN_PORT), "--count", str(count),
                                        "--total-bytes", str(total), "--max-bytes", str(8 << 20),
                                        "--timeout", str(int(deadline))])
    lab.wait_for(lambda: client.event("summary") or client.event("timeout"), deadline,
                 f"{count} connections to finish", fail_if=alive)
    lab.wait_for(lambda: sum(1 for e in server.events() if e.get("event") in ("conn", "conn_failed")) >= count,
                 scaled(60), f"the target server to finish all {count} connections", fail_if=alive)
    match_many(lab, client, server, count)
    lab.wait_for(lambda: len([e for e in ossl.events() if e.get("event") == "conn_done"]) >= count, scaled(30),
                 f"the OpenSSL peer to finish all {count} streams cleanly", fail_if=alive)
    lab.check(not ossl.event("conn_reset"), f"{ossl.name} reset a stream: {ossl.event('conn_reset')}")
    ossl.signal(signal.SIGTERM)
    lab.check(ossl.wait_exit(scaled(20)) == 0, f"{ossl.name} should exit 0 after SIGTERM")
    lab.check(ours.wait_exit(scaled(20)) == 0, f"{ours.name} should exit 0 after the peer's close with code 0")
