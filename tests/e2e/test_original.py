"""Interop with the original peersock (protocol v1): our `peersock` against
`psk-attacker original` (tests/tools/attacker.cpp), a test peer that behaves on
the wire like the original as ../shared/docs/protocol-v1.md describes it: fixed
mailbox sides, a body without "v", 3-word codes, plain ALPN `x-peersock` only,
the original's TLS identity (as client it trusts only the original's
certificate and aborts the handshake with alert 48 on any other, so these
tests fail unless our generator presents that certificate), one `X` data
stream, never a FIN (a FIN or reset is fatal to it), and as the original's
client it handles a new stream before the SMP message that came with it (so
our generator must not open its data stream before msg4 is acknowledged).

All 8 combinations: 4 mode pairings (ours listen/connect/stdio-a/stdio-b
against the original in the other mode) x who generates the code (and so is
the QUIC server). Each moves 4 MiB each way at once, checked by SHA-256 at the
ends. Without half-close nobody can say "done" in-band, so the ends keep their
sockets / stdin open until every byte arrived both ways; then one end closes:
our side in the TCP pairings (the original's TCP end would just exit, and ours
would wait for the idle timeout), and in the stdio pairings the side that
generated the code (both ends close with code 0). Both processes must exit 0,
ours must say once that the other side runs the original, and the original
must have seen nothing on stream 0.

A wrong code in both orientations: as generator (SMP responder) we detect the
mismatch and tell the original (exit 3); as consumer, the original responder
exits without a word, and we must report the mismatch (exit 3,
"the other side stopped after the code check"), not a timeout.
"""
import re
import subprocess
import threading

import pytest

from lab import (AUTH_RE, CODE_RE, HELPER, LISTEN_PORT, PYTHON, TARGET_PORT, Pump, check_same, peer_env, scaled,
                 wrong_words_code)
from test_attacks import attacker_bin
from test_failures import check_one_error_line
from test_interop import ossl_events

NBYTES = 4 << 20
OURS_SEED, ORIG_SEED, SERVER_SEED, CLIENT_SEED = 11, 22, 33, 44
# One line, both clauses: its body came in plaintext (no PAKE), and it
# speaks protocol v1.
NOTICE = ("the other side runs the original peersock: addresses are visible to the relay; "
          "one connection at a time, no half-close")
CODE3_RE = re.compile(r"^\d+-[a-z]+-[a-z]+-[a-z]+$")


def orig_events(proc, name):
    """The original-like peer's JSON events: on stderr in the stdio modes
    (stdout is the data), on stdout otherwise."""
    return ossl_events(proc, name) + [e for e in proc.events() if e.get("event") == name]


def start_original(lab, mode_args, code, timeout, smp_code=None, relay=None):
    argv = [attacker_bin(), "original", "--relay", relay or lab.relay_url, "--mode", *mode_args,
            "--timeout", str(int(timeout))]
    argv += ["--code", code] if code else ["--generate"]
    if smp_code:
        argv += ["--smp-code", smp_code]
    if mode_args[0].startswith("stdio"):
        return lab.start(f"original {mode_args[0]}", argv, stdin=subprocess.PIPE, stdout="pipe",
                         env=peer_env(lab.home))
    return lab.start(f"original {mode_args[0]}", argv, env=peer_env(lab.home))


def start_pair(lab, ours_args, orig_args, generator, timeout, stdio=False, ours_code=None, orig_smp_code=None):
    """peersock and the original-like peer, the code from `generator`.
    ours_code(code) / orig_smp_code(code): the code the consumer types
    instead (a wrong one)."""
    if generator == "ours":
        ours = lab.peersock(f"peersock {ours_args[0]}", ours_args, stdio=stdio)
        code = ours.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
        orig = start_original(lab, orig_args, code, timeout, smp_code=orig_smp_code(code) if orig_smp_code else None)
    else:
        orig = start_original(lab, orig_args, None, timeout)
        code = orig.wait_line(CODE_RE, scaled(20), what="the original's 'Connection code:' line").group(1)
        lab.check(CODE3_RE.match(code) is not None, f"the original-like peer made {code!r}, not a 3-word code")
        typed = ours_code(code) if ours_code else code
        ours = lab.peersock(f"peersock {ours_args[0]}", [*ours_args, typed], stdio=stdio)
    lab.note(f"connection code: {code}")
    return ours, orig


def alive_check(*procs):
    def problem():
        for p in procs:
            if p.returncode not in (None, 0):
                return f"{p.name} exited with status {p.returncode}"
        return None
    return problem


def check_v1_session(lab, ours, orig):
    lab.check(ours.find(AUTH_RE) is not None, f"{ours.name} never printed an 'authenticated' line")
    lab.check(orig_events(orig, "authenticated"), f"{orig.name} never authenticated")
    notices = [l for l in ours.lines("stderr") if NOTICE in l]
    lab.check(len(notices) == 1, f"{ours.name} should say once that the peer is the original: {notices}")
    done = orig_events(orig, "done")
    lab.check(done and done[-1].get("control_bytes") == 0,
              f"{orig.name}: stream 0 must stay empty towards a v1 peer: {done}")
    lab.check(not orig_events(orig, "exit") or orig_events(orig, "exit")[-1].get("status") == 0,
              f"{orig.name} ended fatally: {orig_events(orig, 'exit')}")


@pytest.mark.deadline(240)
@pytest.mark.parametrize("generator", ["ours", "original"], ids=["peersock-generates", "original-generates"])
@pytest.mark.parametrize("ours_mode", ["stdio-a", "stdio-b"])
def test_stdio_with_the_original(lab, ours_mode, generator):
    orig_mode = "stdio-b" if ours_mode == "stdio-a" else "stdio-a"
    lab.note(f"peersock {ours_mode} <-> original {orig_mode}, {generator} generates; 4 MiB each way")
    ours, orig = start_pair(lab, [ours_mode], [orig_mode], generator, scaled(180), stdio=True)
    ours_hold, orig_hold = threading.Event(), threading.Event()
    ours_pump = Pump(ours, NBYTES, OURS_SEED, hold=ours_hold)
    orig_pump = Pump(orig, NBYTES, ORIG_SEED, hold=orig_hold)
    try:
        lab.wait_for(lambda: all(p.sent == NBYTES for p in (ours_pump, orig_pump))
                     and ours_pump.recv >= NBYTES and orig_pump.recv >= NBYTES,
                     scaled(120), "4 MiB each way between peersock and the original", fail_if=alive_check(ours, orig))
        # Every byte is there: now the generating side's stdin ends, which
        # ends that side's session with a close of code 0.
        first, second = (ours, orig) if generator == "ours" else (orig, ours)
        (ours_hold if generator == "ours" else orig_hold).set()
        for p in (first, second):
            rc = p.wait_exit(scaled(30), what="the session must end after the stdin EOF, with a close of code 0")
            lab.check(rc == 0, f"{p.name} exited with status {rc}, expected 0")
    finally:
        ours_hold.set()
        orig_hold.set()
    ours_pump.wait(scaled(10))
    orig_pump.wait(scaled(10))
    check_same(lab, f"peersock {ours_mode}", ours_pump.summary(), f"original {orig_mode}", orig_pump.summary(),
               NBYTES)
    check_v1_session(lab, ours, orig)


def tcp_helper(lab, name, args):
    """tcp_sink_source.py with a stdin pipe: with --expect, a line on it closes the socket."""
    return lab.start(name, [PYTHON, "-u", str(HELPER), *args], stdin=subprocess.PIPE)


@pytest.mark.deadline(240)
@pytest.mark.parametrize("generator", ["ours", "original"], ids=["peersock-generates", "original-generates"])
@pytest.mark.parametrize("ours_mode", ["listen", "connect"])
def test_tcp_with_the_original(lab, ours_mode, generator):
    orig_mode = "connect" if ours_mode == "listen" else "listen"
    target = f"127.0.0.1:{TARGET_PORT}"
    ours_args = ["listen", str(LISTEN_PORT)] if ours_mode == "listen" else ["connect", target]
    orig_args = [orig_mode, target if orig_mode == "connect" else str(LISTEN_PORT)]
    lab.note(f"peersock {ours_mode} <-> original {orig_mode}, {generator} generates; one TCP connection, "
             f"4 MiB each way, no half-close")
    timeout = str(int(scaled(150)))
    server = tcp_helper(lab, "target server", ["server", "--port", str(TARGET_PORT), "--bytes", str(NBYTES),
                                               "--seed", str(SERVER_SEED), "--expect", str(NBYTES), "--once",
                                               "--timeout", timeout])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    ours, orig = start_pair(lab, ours_args, orig_args, generator, scaled(180))
    ours.wait_line(AUTH_RE, scaled(60), what="peersock's 'authenticated' line")
    lab.wait_for(lambda: orig_events(orig, "authenticated"), scaled(60), "the original to authenticate",
                 fail_if=alive_check(ours, orig))
    client = tcp_helper(lab, "tcp client", ["client", "--port", str(LISTEN_PORT), "--bytes", str(NBYTES),
                                            "--seed", str(CLIENT_SEED), "--expect", str(NBYTES),
                                            "--timeout", timeout])
    problem = alive_check(ours, orig)
    c = lab.wait_for(lambda: client.event("done") or client.event("timeout"), scaled(120), "the client's transfer",
                     fail_if=problem)
    s = lab.wait_for(lambda: server.event("done") or server.event("timeout"), scaled(30), "the server's transfer",
                     fail_if=problem)
    for name, r in (("client", c), ("server", s)):
        lab.check(r["event"] == "done" and not r["send_error"] and not r["recv_error"], f"{name}: {r}")
    lab.check(c["sent"] == NBYTES and s["recv"] == NBYTES and c["sent_sha256"] == s["recv_sha256"],
              f"client -> target: sent {c['sent']} ({c['sent_sha256'][:16]}), received {s['recv']} "
              f"({s['recv_sha256'][:16]})")
    lab.check(s["sent"] == NBYTES and c["recv"] == NBYTES and s["sent_sha256"] == c["recv_sha256"],
              f"target -> client: sent {s['sent']} ({s['sent_sha256'][:16]}), received {c['recv']} "
              f"({c['recv_sha256'][:16]})")
    # Our end closes its socket: our session ends with a close of code 0.
    ours_end = client if ours_mode == "listen" else server
    ours_end.proc.stdin.write(b"close\n")
    ours_end.proc.stdin.flush()
    rc = ours.wait_exit(scaled(20), what="our local end closed: the v1 session ends")
    lab.check(rc == 0, f"{ours.name} exited with status {rc}, expected 0")
    rc = orig.wait_exit(scaled(20), what="the original exits on our close")
    lab.check(rc == 0, f"{orig.name} exited with status {rc}, expected 0")
    check_v1_session(lab, ours, orig)
    lab.check(len([e for e in orig_events(orig, "conn_open")]) == 1,
              f"{orig.name}: expected exactly one data stream: {orig_events(orig, 'conn_open')}")


@pytest.mark.deadline(120)
@pytest.mark.parametrize("generator", ["ours", "original"], ids=["peersock-generates", "original-generates"])
def test_wrong_code_with_the_original(lab, generator):
    """Ours connect, the original listen: no data needed, only SMP."""
    target = f"127.0.0.1:{TARGET_PORT}"
    if generator == "ours":
        ours, orig = start_pair(lab, ["connect", target], ["listen", str(LISTEN_PORT)], generator, scaled(90),
                                orig_smp_code=wrong_words_code)
    else:
        ours, orig = start_pair(lab, ["connect", target], ["listen", str(LISTEN_PORT)], generator, scaled(90),
                                ours_code=wrong_words_code)
    rc = ours.wait_exit(scaled(40), what="a wrong code must end the session with a mismatch")
    lab.check(rc == 3, f"{ours.name} exited with status {rc}, expected 3 (code mismatch)")
    line = check_one_error_line(lab, ours)
    if generator == "ours":
        # We are the SMP responder: we see it and tell the original.
        lab.check("connection code mismatch" in line, f"unexpected error line: {line!r}")
        rc = orig.wait_exit(scaled(20), what="the original exits on our close")
    else:
        # The original responder exits silently; its silence is the verdict.
        lab.check(line == "peersock: connection code mismatch (the other side stopped after the code check)",
                  f"unexpected error line: {line!r}")
        rc = orig.wait_exit(scaled(5))
        lab.check(rc == 1 and orig.find("connection code mismatch") is not None,
                  f"{orig.name} should have exited 1 with 'connection code mismatch' (status {rc})")


@pytest.mark.deadline(60)
def test_the_original_like_client_refuses_any_other_certificate(lab):
    """The test peer is only a stand-in for the original if, like it, its
    client pins the original's certificate: against a server with a fresh
    certificate (the OpenSSL peer, like a release before this one) its
    handshake must fail with alert 48 -- which is what made every pairing
    with our side as generator fail before our server presented that
    certificate."""
    argv = [attacker_bin(), "peer", "--relay", lab.relay_url, "--mode", "stdio-a", "--generate", "--timeout", "50"]
    server = lab.start("openssl peer stdio-a", argv, stdin=subprocess.PIPE, stdout="pipe", env=peer_env(lab.home))
    code = server.wait_line(CODE_RE, scaled(20), what="the OpenSSL peer's 'Connection code:' line").group(1)
    orig = start_original(lab, ["stdio-b"], code, scaled(50))
    lab.wait_for(lambda: [e for e in orig_events(orig, "closed") if not e.get("app")], scaled(30),
                 "the original-like client to give up the handshake")
    closed = [e for e in orig_events(orig, "closed") if not e.get("app")][0]
    lab.check(not orig_events(orig, "handshake"), f"{orig.name} completed a handshake with a foreign certificate")
    lab.check(closed.get("code") == 0x100 + 48, f"{orig.name} did not refuse with alert 48 (unknown_ca): {closed}")


@pytest.mark.deadline(120)
def test_a_reset_with_the_original_is_not_reported_as_success(lab):
    """With the original there is one connection per run: when it is cut
    short (our local client resets it after 512 KiB), the run lost data, and
    our side must say so (exit 5) instead of ending with exit 0 as after a
    complete transfer."""
    target = f"127.0.0.1:{TARGET_PORT}"
    server = tcp_helper(lab, "target server", ["server", "--port", str(TARGET_PORT), "--bytes", str(NBYTES),
                                               "--seed", str(SERVER_SEED), "--expect", str(NBYTES), "--once",
                                               "--timeout", str(int(scaled(100)))])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    ours, orig = start_pair(lab, ["listen", str(LISTEN_PORT)], ["connect", target], "ours", scaled(100))
    ours.wait_line(AUTH_RE, scaled(60), what="peersock's 'authenticated' line")
    client = tcp_helper(lab, "tcp client", ["client", "--port", str(LISTEN_PORT), "--bytes", str(NBYTES),
                                            "--seed", str(CLIENT_SEED), "--reset-after", str(512 << 10),
                                            "--timeout", str(int(scaled(60)))])
    rc = ours.wait_exit(scaled(30), what="a reset of the one connection must end the run")
    lab.check(rc == 5, f"{ours.name} exited with status {rc}, expected 5 (data lost)")
    line = check_one_error_line(lab, ours)
    lab.check("reset before all data was delivered" in line, f"unexpected error line: {line!r}")
    lab.check(client.wait_exit(scaled(30)) is not None, "the client did not finish")
    orig.wait_exit(scaled(30), what="the original ends too")


@pytest.mark.deadline(120)
def test_the_originals_silent_tcp_end_is_named(lab):
    """The original's TCP modes exit at their local EOF without closing QUIC:
    our side learns it by the idle timeout (exit 5) and must say what it
    most likely was, not just 'connection lost'."""
    target = f"127.0.0.1:{TARGET_PORT}"
    server = tcp_helper(lab, "target server", ["server", "--port", str(TARGET_PORT), "--bytes", str(1 << 20),
                                               "--seed", str(SERVER_SEED), "--expect", str(1 << 20), "--once",
                                               "--timeout", str(int(scaled(100)))])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    ours, orig = start_pair(lab, ["connect", target], ["listen", str(LISTEN_PORT)], "original", scaled(100))
    ours.wait_line(AUTH_RE, scaled(60), what="peersock's 'authenticated' line")
    client = tcp_helper(lab, "tcp client", ["client", "--port", str(LISTEN_PORT), "--bytes", str(1 << 20),
                                            "--seed", str(CLIENT_SEED), "--expect", str(1 << 20),
                                            "--timeout", str(int(scaled(60)))])
    lab.wait_for(lambda: client.event("done") and server.event("done"), scaled(60), "1 MiB each way")
    client.proc.stdin.write(b"close\n")  # the original's side closes first: it exits without a word
    client.proc.stdin.flush()
    lab.check(orig.wait_exit(scaled(10)) == 0, f"{orig.name} should exit 0 at its local EOF")
    rc = ours.wait_exit(scaled(40), what="the idle timeout must end our side")
    lab.check(rc == 5, f"{ours.name} exited with status {rc}, expected 5")
    line = check_one_error_line(lab, ours)
    lab.check("the original peersock ends a TCP connection that way" in line, f"unexpected error line: {line!r}")
