"""Interop: our `peersock` (ngtcp2 QUIC) against an honest peer built on
OpenSSL 3.5's own QUIC stack (`psk-attacker peer`, tests/tools/attacker.cpp
with tests/tools/ossl_quic), speaking protocol version 2.

Each test pairs one `peersock stdio-a|stdio-b` with the OpenSSL peer in the
other stdio mode, in both code orientations (so both QUIC roles: the code
generator is the QUIC server), and sends big_bytes() (64 MiB) of seeded random
data each way at once. Both sides must deliver every byte (equal SHA-256),
both must exit 0 after the v2 stream-0 'D' exchange, and both must have
authenticated -- SMP binds the secret to the TLS exporter, so authentication
proves the two QUIC stacks derived the same exporter. The ping on stream 0
('P'/'Q') must have worked both ways too: each side measured an RTT.
"""
import json
import re
import subprocess

import pytest

from lab import AUTH_RE, CODE_RE, Pump, big_bytes, check_same, mib, peer_env, scaled
from test_attacks import attacker_bin

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
    lab.check(ours.find(r"connected directly .*rtt \d+ ms") is not None,
              f"{ours.name}: the path line has no RTT (no 'Q' for its 'P' on stream 0)")
    lab.check(ossl_events(ossl, "rtt"), f"{ossl.name} measured no RTT (no 'Q' for its 'P' on stream 0)")
