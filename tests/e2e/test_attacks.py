"""Attacks that must fail (docs/protocol.md §5.4, §5.5; docs/security.md): a man in the middle at the relay, a wrong
code, a nameplate race, a peer that sends data before authentication, and
garbage in the auth stream. Real peersock binaries, the real mailbox server,
and the attacker tool tests/tools/attacker.cpp (built next to the binary as
tests/tools/psk-attacker), all inside the test's own namespace.

docs/security.md says what each test proves.
"""
import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from lab import (AUTH_RE, CODE_RE, EXIT_MISMATCH, EXIT_NO_PATH, EXIT_PROTOCOL, EXIT_RENDEZVOUS, LISTEN_PORT,
                 TARGET_PORT, Pump, check_same, peersock_bin, scaled, wrong_words_code)

PROXY_PORT = 4100
MISMATCH_RE = r"connection code mismatch"

# The server's first stream: SMP's from protocol v7 on, which both peers here speak.
AUTH_STREAM = 1


def attacker_bin():
    p = Path(peersock_bin()).parent / "tests" / "tools" / "psk-attacker"
    if not p.exists():
        pytest.fail(f"{p} is missing (it is built with the tests: ninja -C {p.parent.parent.parent})", pytrace=False)
    return str(p)


def events(proc, name):
    out = []
    for line in proc.lines("stdout"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == name:
            out.append(e)
    return out


def wait_event(proc, name, timeout):
    proc.wait_line(r'"event":\s*"%s"' % re.escape(name), timeout, stream="stdout", what=f"event {name!r}")
    return events(proc, name)[0]


def start_mitm(lab, mode):
    a = lab.start(f"attacker (mitm, {mode})", [attacker_bin(), "mitm", "--listen-port", str(PROXY_PORT),
                                                "--upstream", lab.relay_url, "--mode", mode,
                                                "--timeout", str(int(scaled(100)))])
    wait_event(a, "listening", scaled(20))
    return a, f"ws://127.0.0.1:{PROXY_PORT}/v1"


def target_server(lab):
    t = lab.helper("target server", ["server", "--port", str(TARGET_PORT), "--bytes", str(1 << 20),
                                     "--timeout", str(int(scaled(100)))])
    t.wait_event("listening", scaled(15), what="the target server to listen")
    return t


def tcp_client(lab):
    c = lab.helper("tcp client", ["client", "--port", str(LISTEN_PORT), "--bytes", str(1 << 20),
                                  "--connect-timeout", str(int(scaled(15))), "--timeout", str(int(scaled(100)))])
    c.wait_event("connected", scaled(20), what="the TCP client to connect to the listen port")
    return c


def check_nothing_forwarded(lab, target, client=None):
    lab.check(target.event("accepted") is None,
              "the target server got a connection although authentication failed")
    if client is not None:
        res = lab.wait_for(lambda: client.event("done") or client.event("connect_failed") or client.event("timeout"),
                           scaled(30), "the TCP client to finish")
        lab.check(res.get("recv", 0) == 0, f"the TCP client received {res.get('recv')} bytes through an "
                                           f"unauthenticated tunnel")


def channel_db(lab):
    return os.path.join(lab.tmpdir, "relay.sqlite")


def nameplate_rows(lab, nameplate):
    con = sqlite3.connect(f"file:{channel_db(lab)}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("SELECT COUNT(*) FROM nameplates WHERE name = ?", (nameplate,)).fetchone()[0]
    finally:
        con.close()


# ---------------------------------------------------------------- man in the middle

@pytest.mark.deadline(120)
def test_mitm_terminating_quic_at_the_relay_fails_auth_on_both_sides(lab):
    """The relay swaps both ice bodies for its own; the attacker terminates
    QUIC towards each peer and relays every stream byte. SMP sees two different
    exporters: both peers are told the code check failed, no byte of
    application data crosses, nothing reaches the target."""
    attacker, relay = start_mitm(lab, "terminate")
    target = target_server(lab)
    gen = lab.peersock("peersock listen", ["listen", str(LISTEN_PORT)], relay=relay)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    client = tcp_client(lab)  # connected to listen before auth; must get nothing
    cons = lab.peersock("peersock connect", ["connect", f"127.0.0.1:{TARGET_PORT}", code], relay=relay)

    for p in (gen, cons):
        rc = p.wait_exit(scaled(40), what="a man in the middle must end both sides")
        lab.check(rc == EXIT_MISMATCH, f"{p.name} exited with status {rc}, expected {EXIT_MISMATCH}")
        lab.check(p.find(MISMATCH_RE) is not None, f"{p.name}: stderr does not say 'connection code mismatch'")
        lab.check(p.find(AUTH_RE) is None, f"{p.name} claims to be authenticated")
    # The attack really happened: both ice bodies were replaced, both QUIC
    # handshakes ended at the attacker, the auth stream was relayed, and the
    # two TLS sessions have different exporters.
    lab.check(len(events(attacker, "rewrote_ice")) == 2, "the relay did not rewrite both ice bodies")
    hs = {e["leg"]: e["exporter"] for e in events(attacker, "handshake")}
    lab.check(set(hs) == {"gen", "cons"}, f"the attacker did not complete QUIC with both peers: {hs}")
    lab.check(hs["gen"] != hs["cons"], "both legs have the same exporter")
    relayed = {e["id"] for e in events(attacker, "stream")}
    # Both peers speak v7: the auth stream is the server's stream 1
    # (docs/protocol.md §5.2); a data stream would be 5 (listen is the server).
    lab.check(AUTH_STREAM in relayed, f"the auth stream was not relayed through the attacker (streams {relayed})")
    attacker.stop()
    done = events(attacker, "done")
    # The attacker counts every stream but 0 and 4 as application data; from
    # v7 SMP runs on stream 1, so count here.
    app_bytes = sum(st["bytes"] for st in done[0]["streams"] if st["id"] not in (0, AUTH_STREAM)) if done else None
    lab.check(app_bytes == 0, f"application bytes passed through the attacker: {done}")
    lab.check(not (relayed - {0, AUTH_STREAM}), f"data streams were opened through the attacker: {relayed}")
    check_nothing_forwarded(lab, target, client)


@pytest.mark.deadline(120)
def test_mitm_that_swallows_the_verdict_still_gets_nothing(lab):
    """The same attacker, but it does not pass the SMP responder's mismatch
    close on: the initiator is left waiting for SMP's last message. From v7
    the responder is the consumer (the QUIC client): it reports the mismatch
    (exit 3); the generator gives up at its auth deadline (20 s) with exit 4
    and a line that says so; no data passes."""
    attacker, relay = start_mitm(lab, "silent")
    target = target_server(lab)
    gen = lab.peersock("peersock listen", ["listen", str(LISTEN_PORT)], relay=relay)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    client = tcp_client(lab)
    cons = lab.peersock("peersock connect", ["connect", f"127.0.0.1:{TARGET_PORT}", code], relay=relay)
    rc = cons.wait_exit(scaled(40), what="the consumer (SMP's responder) must see the mismatch")
    lab.check(rc == EXIT_MISMATCH, f"{cons.name} exited with status {rc}, expected {EXIT_MISMATCH}")
    rc = gen.wait_exit(30 + scaled(20), what="the generator must give up at its auth deadline")
    lab.check(rc == EXIT_NO_PATH, f"{gen.name} exited with status {rc}, expected {EXIT_NO_PATH}")
    lab.check(gen.find(r"^peersock: .*(authentication|timed out)") is not None,
              f"{gen.name}: no line saying that authentication did not finish")
    for p in (gen, cons):
        lab.check(p.find(AUTH_RE) is None, f"{p.name} claims to be authenticated")
    lab.check({e["id"] for e in events(attacker, "stream")} <= {0, AUTH_STREAM}, "data streams went through the attacker")
    check_nothing_forwarded(lab, target, client)


@pytest.mark.deadline(90)
def test_nameplate_race_in_parallel_never_pairs_the_wrong_party(lab):
    """A third party (who knows only the nameplate) and the real consumer
    claim at the same moment. Whoever comes third gets `crowded`. Either the
    real consumer wins and both real users authenticate, or the third party
    wins, the real consumer is told `crowded` (exit 6) and nobody
    authenticates. Never a silent pairing with the wrong party."""
    gen = lab.peersock("peersock stdio-a", ["stdio-a"], stdio=True)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    rogue = lab.start("rogue (stall)", [attacker_bin(), "rogue", "--relay", lab.relay_url, "--code",
                                        wrong_words_code(code), "--attack", "stall", "--timeout", str(int(scaled(80)))])
    real = lab.peersock("real consumer", ["stdio-b", code], stdio=True)

    def outcome():
        if real.find(AUTH_RE) is not None and gen.find(AUTH_RE) is not None:
            return "real consumer won"
        if real.returncode is not None:
            return "third party won"
        return None
    result = lab.wait_for(outcome, scaled(40), "either the real pair to authenticate or the consumer to exit")
    lab.note(f"race outcome: {result}")
    if result == "real consumer won":
        lab.wait_for(lambda: events(rogue, "relay_error"), scaled(20), "the third party to be refused")
        lab.check("crowded" in events(rogue, "relay_error")[0]["error"], "the third party was not told 'crowded'")
    else:
        lab.check(real.returncode == EXIT_RENDEZVOUS, f"{real.name} exited {real.returncode}, expected {EXIT_RENDEZVOUS}")
        lab.check(real.find(r"^peersock: .*crowded") is not None, f"{real.name} was not told 'crowded'")
        lab.check(gen.find(AUTH_RE) is None, "the generator authenticated the third party")


@pytest.mark.deadline(120)
def test_mitm_control_forwarding_datagrams_connects(lab):
    """Control for the test above: the same rewritten ice bodies, but the
    attacker only copies UDP datagrams between its legs (no QUIC of its own).
    The peers' QUIC session is end to end, auth succeeds and data arrives --
    so the failure above is due to the exporter binding, not the setup."""
    attacker, relay = start_mitm(lab, "forward")
    nbytes = 256 << 10
    gen = lab.peersock("peersock stdio-a", ["stdio-a"], relay=relay, stdio=True)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    cons = lab.peersock("peersock stdio-b", ["stdio-b", code], relay=relay, stdio=True)
    a, b = Pump(gen, nbytes, 11), Pump(cons, nbytes, 22)
    ra, rb = a.wait(scaled(60)), b.wait(scaled(60))
    check_same(lab, "stdio-a", ra, "stdio-b", rb, nbytes)
    for p in (gen, cons):
        rc = p.wait_exit(scaled(30), what="stdio mode must exit once both directions are finished")
        lab.check(rc == 0, f"{p.name} exited with status {rc}, expected 0")
        lab.check(p.find(AUTH_RE) is not None, f"{p.name} never printed an 'authenticated' line")
    lab.check(len(events(attacker, "rewrote_ice")) == 2, "the relay did not rewrite both ice bodies")
    attacker.stop()
    done = events(attacker, "done")
    fwd = done[0]["forwarded_datagram_bytes"] if done else {}
    lab.check(fwd.get("gen", 0) > nbytes and fwd.get("cons", 0) > nbytes,
              f"the data did not go through the attacker: {fwd}")


# ---------------------------------------------------------------- wrong code

@pytest.mark.deadline(90)
def test_wrong_code_is_one_guess_and_releases_the_nameplate(lab):
    """Right nameplate, wrong words: both sides stop with exit 3, the nameplate
    is released on the server, and the right code afterwards finds nobody:
    the session the guess was made against is gone (one guess per session)."""
    gen = lab.peersock("peersock stdio-a", ["stdio-a"], stdio=True)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    nameplate = code.split("-")[0]
    guess = lab.peersock("guesser", ["stdio-b", wrong_words_code(code)], stdio=True)
    for p in (gen, guess):
        rc = p.wait_exit(scaled(30), what="a wrong code must end both sides")
        lab.check(rc == EXIT_MISMATCH, f"{p.name} exited with status {rc}, expected {EXIT_MISMATCH}")
        lab.check(p.find(MISMATCH_RE) is not None, f"{p.name}: stderr does not say 'connection code mismatch'")
    lab.wait_for(lambda: nameplate_rows(lab, nameplate) == 0, scaled(10),
                 f"the mailbox server to release nameplate {nameplate}")
    # The real code now: nobody is there any more.
    late = lab.peersock("late consumer", ["stdio-b", code], stdio=True)
    late.wait_line(r"Waiting for the other side", scaled(20), what="the late consumer to wait in the mailbox")
    lab.check(late.find(r"other side is here") is None and late.find(AUTH_RE) is None,
              "a consumer with the right code reached a peer after the session had ended")


# ---------------------------------------------------------------- nameplate race

@pytest.mark.deadline(90)
def test_nameplate_race_third_party_is_crowded_out(lab):
    """A third party claims the nameplate first (and stalls). The real
    consumer gets the server's `crowded` as one clear line and exit 6 instead
    of a hang or a connection to the wrong party."""
    target = target_server(lab)
    gen = lab.peersock("peersock connect", ["connect", f"127.0.0.1:{TARGET_PORT}"])
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    rogue = lab.start("rogue (stall)", [attacker_bin(), "rogue", "--relay", lab.relay_url, "--code",
                                        wrong_words_code(code), "--attack", "stall", "--timeout", str(int(scaled(80)))])
    wait_event(rogue, "handshake", scaled(30))
    real = lab.peersock("real consumer", ["stdio-b", code], stdio=True)
    rc = real.wait_exit(scaled(20), what="a crowded nameplate must be reported promptly")
    lab.check(rc == EXIT_RENDEZVOUS, f"{real.name} exited with status {rc}, expected {EXIT_RENDEZVOUS}")
    errs = [l for l in real.lines("stderr") if l.startswith("peersock: ")]
    lab.check(len(errs) == 1 and "crowded" in errs[0], f"expected one 'peersock: ... crowded ...' line, got {errs}")
    lab.check(real.find(AUTH_RE) is None, "the real consumer authenticated with somebody")
    lab.check(gen.find(AUTH_RE) is None, "the generator authenticated with the third party")
    check_nothing_forwarded(lab, target)


# ---------------------------------------------------------------- hostile peer

@pytest.mark.deadline(90)
@pytest.mark.parametrize("attack,expected_rc,says", [
    pytest.param("early-stream", EXIT_PROTOCOL, r"opened stream 8 before authentication", id="early-data-stream"),
    pytest.param("garbage-auth", EXIT_PROTOCOL, r"auth frame of 65535 bytes", id="oversized-auth-frame"),
    pytest.param("garbage-mpi", EXIT_MISMATCH, MISMATCH_RE, id="garbage-smp-message"),
    pytest.param("truncated-auth", EXIT_PROTOCOL, r"closed the authentication stream", id="truncated-auth-frame"),
])
def test_hostile_consumer_is_disconnected_and_nothing_forwarded(lab, attack, expected_rc, says):
    """A peer that knows the nameplate joins as the QUIC client and, instead
    of a proper SMP run, opens a data stream with 'X' + data before auth, or
    sends an oversized auth frame, a random SMP message, or part of a frame
    followed by the end of the stream. The generator
    (`connect`, forwarding to a target) ends with one clear line; the target
    never sees a connection."""
    target = target_server(lab)
    gen = lab.peersock("peersock connect", ["connect", f"127.0.0.1:{TARGET_PORT}"])
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    rogue = lab.start(f"rogue ({attack})", [attacker_bin(), "rogue", "--relay", lab.relay_url, "--code", code,
                                            "--attack", attack, "--timeout", str(int(scaled(60)))])
    rc = gen.wait_exit(scaled(40), what=f"the generator must drop a peer that does {attack}")
    lab.check(rc == expected_rc, f"{gen.name} exited with status {rc}, expected {expected_rc}")
    errs = [l for l in gen.lines("stderr") if l.startswith("peersock: ")]
    lab.check(len(errs) == 1 and re.search(says, errs[0]), f"expected one 'peersock:' line matching /{says}/, got {errs}")
    lab.check(gen.find(AUTH_RE) is None, "the generator authenticated the rogue peer")
    lab.check(events(rogue, "attack_sent"), "the rogue never got to send its attack")
    check_nothing_forwarded(lab, target)


@pytest.mark.deadline(90)
def test_stream_0_is_not_answered_before_authentication(lab):
    """A consumer without the right code writes a ping ('P') and a 'D' on
    stream 0 together with SMP msg1. The generator (QUIC server) reads
    nothing on stream 0 before its own SMP verdict: no pong comes back, and
    the wrong code ends the run as a mismatch (exit 3)."""
    target = target_server(lab)
    gen = lab.peersock("peersock connect", ["connect", f"127.0.0.1:{TARGET_PORT}"])
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    rogue = lab.start("rogue (ping-before-auth)", [attacker_bin(), "rogue", "--relay", lab.relay_url, "--code", code,
                                                   "--attack", "ping-before-auth", "--timeout", str(int(scaled(60)))])
    rc = gen.wait_exit(scaled(40), what="the generator must end the wrong-code session")
    lab.check(rc == EXIT_MISMATCH, f"{gen.name} exited with status {rc}, expected {EXIT_MISMATCH}")
    lab.check(events(rogue, "attack_sent"), "the rogue never got to send its ping")
    rogue.wait_exit(scaled(20), what="the rogue to see the close")
    lab.check(not events(rogue, "rtt"), f"the generator answered a ping before authentication: {events(rogue, 'rtt')}")
    check_nothing_forwarded(lab, target)


@pytest.mark.deadline(90)
def test_hostile_generator_early_stream_reaches_nothing(lab):
    """The other direction: a rogue generator (QUIC server) hands out its own
    code (so knowing the code does not help here) and opens a data stream with
    'X' + data right after the handshake, before the consumer has even sent
    SMP msg3 -- so before the server could have verified it. The consumer
    (`connect`) never reads the stream, disconnects with exit 8, and the
    target sees nothing."""
    target = target_server(lab)
    rogue = lab.start("rogue generator", [attacker_bin(), "rogue", "--relay", lab.relay_url, "--generate",
                                          "--attack", "early-stream", "--timeout", str(int(scaled(60)))])
    code = wait_event(rogue, "code", scaled(20))["code"]
    cons = lab.peersock("peersock connect", ["connect", f"127.0.0.1:{TARGET_PORT}", code])
    rc = cons.wait_exit(scaled(40), what="the consumer must end the session")
    lab.check(rc == EXIT_PROTOCOL, f"{cons.name} exited with status {rc}, expected {EXIT_PROTOCOL}")
    errs = [l for l in cons.lines("stderr") if l.startswith("peersock: ")]
    lab.check(len(errs) == 1 and "opened a stream before authentication" in errs[0],
              f"expected one line saying the peer opened a stream before authentication, got {errs}")
    lab.check(cons.find(AUTH_RE) is None, "the consumer authenticated the rogue generator")
    lab.check(events(rogue, "early_stream"), "the rogue never opened its early stream")
    check_nothing_forwarded(lab, target)


@pytest.mark.deadline(90)
def test_authenticated_peer_with_bad_stream_header_is_disconnected(lab):
    """The stream header after auth: a peer that knows the code (so SMP
    succeeds) opens a data stream that starts with 'Y' instead of 'X'. The
    acceptor ends with exit 8 naming the byte; the target sees nothing."""
    target = target_server(lab)
    gen = lab.peersock("peersock connect", ["connect", f"127.0.0.1:{TARGET_PORT}"])
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    rogue = lab.start("rogue (bad-magic)", [attacker_bin(), "rogue", "--relay", lab.relay_url, "--code", code,
                                            "--smp-code", code, "--attack", "bad-magic",
                                            "--timeout", str(int(scaled(60)))])
    rc = gen.wait_exit(scaled(40), what="a bad data stream header must end the session")
    lab.check(events(rogue, "bad_magic_stream"), "the rogue did not authenticate and open its stream")
    lab.check(gen.find(AUTH_RE) is not None, "the generator did not authenticate the peer that knows the code")
    lab.check(rc == EXIT_PROTOCOL, f"{gen.name} exited with status {rc}, expected {EXIT_PROTOCOL}")
    errs = [l for l in gen.lines("stderr") if l.startswith("peersock: ")]
    lab.check(len(errs) == 1 and "data stream starts with 'Y', expected 'X'" in errs[0],
              f"expected one line naming the bad first byte, got {errs}")
    check_nothing_forwarded(lab, target)


def test_sanitizer_reports_in_stderr_are_found(ns_lab):
    """The check in conftest.py that fails a test when any process printed a
    sanitizer report (the sanitizer pass relies on it) does find one."""
    import conftest
    p = ns_lab.start("fake asan report", ["/bin/sh", "-c", "echo '==1==ERROR: AddressSanitizer: heap-use-after-free' >&2; "
                                          "echo 'x.cpp:1:2: runtime error: signed integer overflow' >&2"])
    p.wait_exit(scaled(10))
    p._drain()
    found = conftest.sanitizer_reports(ns_lab)
    ns_lab.procs.remove(p)  # do not fail this test's own teardown
    ns_lab.check(len(found) == 1 and "AddressSanitizer" in found[0], f"not found: {found}")
    ns_lab.check(not conftest.sanitizer_reports(ns_lab), "a clean lab reports something")


# ---------------------------------------------------------------- secrets in memory

def _memory_hits(pid, needle):
    """Where `needle` occurs in the readable memory of process `pid`."""
    hits = []
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in open(f"/proc/{pid}/maps").read().splitlines():
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)\s+\S+\s+\S+\s+\S+\s*(.*)", line)
            if not m or "r" not in m.group(3) or m.group(4) in ("[vvar]", "[vsyscall]"):
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except (OSError, OverflowError, MemoryError):
                continue
            hits += [m.group(4) or "anonymous"] * len(re.findall(re.escape(needle), data))
    return hits


def _is_sanitizer_build(path):
    return b"__asan_init" in Path(path).read_bytes()


@pytest.mark.deadline(90)
@pytest.mark.parametrize("how", ["argv", "env", "file"])
def test_no_copy_of_the_code_in_memory_after_auth(lab, how):
    """Once both sides have authenticated, the code's words are nowhere in
    either process's memory (heap, stack, argv, anything readable): the
    session wiped its copy after deriving the auth secret, the command line
    was scrubbed, and no parser left one in freed memory. Normal build only:
    ASan keeps freed blocks in quarantine and maps terabytes of shadow."""
    if _is_sanitizer_build(peersock_bin()):
        pytest.skip("memory scan is meaningful on the normal build only")
    gen = lab.peersock("peersock stdio-a", ["stdio-a"], stdio=True)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    args, env = ["stdio-b", code], None
    if how == "env":
        args = ["stdio-b"]
        env = dict(lab.peer_env(), PEERSOCK_CODE=code)
    elif how == "file":
        path = os.path.join(lab.tmpdir, "code")
        with open(path, "w") as f:
            f.write(code + "\n")
        args = ["--code-file", path, "stdio-b"]
    argv = [peersock_bin(), "--relay", lab.relay_url, "--stun", "", "--turn", "", *args]
    cons = lab.start(f"peersock stdio-b (code from {how})", argv, stdin=subprocess.PIPE, stdout="pipe",
                     env=env or lab.peer_env())
    for p in (gen, cons):
        p.wait_line(AUTH_RE, scaled(20), what="authentication")
    words = code.split("-", 1)[1].encode()
    for p in (gen, cons):
        hits = _memory_hits(p.pid, words)
        if how == "env" and p is cons:
            # The environment block itself (visible only to the same user
            # and root, in /proc/PID/environ) is not ours to rewrite.
            for _ in range(open(f"/proc/{p.pid}/environ", "rb").read().count(words)):
                if "[stack]" in hits:
                    hits.remove("[stack]")
        lab.check(not hits, f"{p.name}: the code's words are still in memory after auth: {hits}")
