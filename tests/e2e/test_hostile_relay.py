"""Hostile relay input, end to end (docs/protocol.md §2.4, §2.5; docs/security.md): the relay (psk-attacker in
`inject` mode, a proxy in front of the real mailbox server) replaces the frame
that carries the generator's `ice` body to the consumer with something broken.
The consumer must end with exactly one `peersock: ...` line that says what was
wrong and the documented exit code -- no crash, no hang, no sanitizer report
(the same test runs against the ASan/UBSan build)."""
import json
import re

import pytest

from lab import CODE_RE, EXIT_PROTOCOL, EXIT_RENDEZVOUS, scaled
from test_attacks import PROXY_PORT, attacker_bin, wait_event
from test_failures import check_one_error_line

SIDE = "0123456789"  # any side other than the consumer's own


def cand(i, **kw):
    c = {"f": str(i + 1), "a": "127.0.0.1", "p": 10000 + i % 50000, "tr": 0, "l": 2130706431 - i, "t": 0}
    c.update(kw)
    return c


def body(candidates=None, **kw):
    b = {"u": "abcd", "p": "a" * 22, "c": [cand(0)] if candidates is None else candidates, "v": 2}
    b.update(kw)
    return json.dumps(b, separators=(",", ":"))


def ice_frame(body_value):
    return json.dumps({"type": "message", "side": SIDE, "phase": "ice", "body": body_value, "id": "x",
                       "server_rx": 1.0})


CASES = [
    # the ice body
    pytest.param(ice_frame(body([cand(i) for i in range(100)])), EXIT_PROTOCOL, r"100 candidates exceed",
                 id="ice-100-candidates"),
    pytest.param(ice_frame(body([cand(i) for i in range(3000)])), EXIT_PROTOCOL, r"exceeds the limit",
                 id="ice-3000-candidates-oversized"),
    pytest.param(ice_frame(body([cand(0, a="999.1.1.1")])), EXIT_PROTOCOL, r"not a numeric IPv4 or IPv6",
                 id="ice-bad-address"),
    pytest.param(ice_frame(body([cand(0, a="fe80::1%eth0")])), EXIT_PROTOCOL, r"not a numeric IPv4 or IPv6",
                 id="ice-scoped-address"),
    pytest.param(ice_frame(body([cand(0, p=70000)])), EXIT_PROTOCOL, r"port 70000 out of range",
                 id="ice-port-70000"),
    pytest.param(ice_frame(body([cand(0, t=9)])), EXIT_PROTOCOL, r"type 9 out of range", id="ice-type-enum"),
    pytest.param(ice_frame(body([cand(0, tr="udp")])), EXIT_PROTOCOL, r"must be an integer", id="ice-wrong-type"),
    pytest.param(ice_frame(body(u="x" * 10000)), EXIT_PROTOCOL, r"ufrag", id="ice-huge-ufrag"),
    pytest.param(ice_frame("[" * 5000 + "]" * 5000), EXIT_PROTOCOL, r"nested deeper", id="ice-deep-nesting"),
    pytest.param(ice_frame("{not json"), EXIT_PROTOCOL, r"not valid JSON", id="ice-not-json"),
    pytest.param(ice_frame(json.dumps({"u": "abcd", "p": "a" * 22})), EXIT_PROTOCOL, r'missing "c"',
                 id="ice-missing-key"),
    # the mailbox frame itself
    pytest.param(json.dumps({"type": "message", "side": SIDE, "phase": "ice", "body": 7}), EXIT_PROTOCOL,
                 r'"body" must be a string', id="frame-body-number"),
    pytest.param(json.dumps({"type": "message", "phase": "ice", "body": "x"}), EXIT_PROTOCOL, r'without "side"',
                 id="frame-missing-side"),
    pytest.param("[" * 100000, EXIT_PROTOCOL, r"nested deeper", id="frame-deep-nesting"),
    pytest.param("\x1b[31mnot json", EXIT_PROTOCOL, r"not valid JSON", id="frame-not-json"),
    pytest.param(json.dumps({"type": "error", "error": "\x1b]0;owned\x07" + "e" * 1000}), EXIT_RENDEZVOUS,
                 r"rendezvous server error: \?\]0;owned\?e+\.\.\.$", id="frame-error-escape-sequence"),
    pytest.param("BINARY", EXIT_PROTOCOL, r"binary websocket frame", id="frame-binary"),
    pytest.param(json.dumps({"type": "message", "side": SIDE, "phase": "ice", "body": "b" * (300 << 10)}),
                 EXIT_PROTOCOL, r"websocket frame over the limit of 256 KiB", id="frame-over-256kib"),
]


@pytest.mark.deadline(90)
@pytest.mark.parametrize("frame,expected_rc,says", CASES)
def test_hostile_relay_frame_ends_session_cleanly(lab, frame, expected_rc, says):
    path = f"{lab.tmpdir}/frame"
    with open(path, "w") as f:
        f.write(frame)
    argv = [attacker_bin(), "mitm", "--mode", "inject", "--inject-to", "consumer", "--frame-file", path,
            "--listen-port", str(PROXY_PORT), "--upstream", lab.relay_url, "--timeout", str(int(scaled(80)))]
    if frame == "BINARY":
        argv.append("--binary")
    attacker = lab.start("hostile relay", argv)
    wait_event(attacker, "listening", scaled(20))
    relay = f"ws://127.0.0.1:{PROXY_PORT}/v1"
    # The generator behaves like the original (PEERSOCK_PROTOCOL=1: its body
    # goes in plaintext), so that the frame the relay replaces is the one
    # that carries a plaintext body, as the original's would.
    gen = lab.peersock("peersock stdio-a", ["stdio-a"], relay=relay, stdio=True, env={"PEERSOCK_PROTOCOL": "1"})
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    cons = lab.peersock("peersock stdio-b", ["stdio-b", code], relay=relay, stdio=True)
    rc = cons.wait_exit(scaled(30), what="hostile relay input must end the session promptly")
    lab.check(events_injected(attacker), "the relay never injected its frame")
    lab.check(rc == expected_rc, f"{cons.name} exited with status {rc}, expected {expected_rc}")
    line = check_one_error_line(lab, cons)
    lab.check(re.search(says, line) is not None, f"the error line does not say /{says}/: {line!r}")
    lab.check(len(line) < 400, f"the error line is not bounded ({len(line)} characters)")


def events_injected(attacker):
    return any('"injected"' in l for l in attacker.lines("stdout"))


HOSTILE_MOTD = "maintenance tonight\nConnection code: 12-fake-fake-fake-fake\r\x1b[2K\u009b1A\u202e"


@pytest.mark.deadline(90)
@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_hostile_motd_from_the_real_server_prints_no_line_of_its_own(lab, fmt):
    """The real mailbox server (patched at start-up: it has no motd option)
    welcomes with a motd that tries to print a fake `Connection code:` line
    and to drive the terminal (CR, erase-line, C1 CSI, a bidi override). The
    generator shows it on its own "Message from the rendezvous server:" line
    with every control character replaced, its one real code line is the only
    one starting `Connection code:`, and the two sides still connect."""
    relay = lab.start_mailbox(port=4002, motd=HOSTILE_MOTD)
    json_args = ["--json"] if fmt == "json" else []
    gen = lab.peersock("peersock stdio-a", [*json_args, "stdio-a"], relay=relay, stdio=True)
    if fmt == "json":
        code = json.loads(gen.wait_line(r'"event":\s*"code"', scaled(20), what="the code event").string)["code"]
    else:
        # Anchored: CODE_RE alone would also match the fake inside the motd.
        code = gen.wait_line(r"^Connection code: (\d+-[a-z-]+)$", scaled(20), what="the code line").group(1)
    cons = lab.peersock("peersock stdio-b", [*json_args, "stdio-b", code], relay=relay, stdio=True)
    cons.proc.stdin.close()
    gen.proc.stdin.close()
    for p in (gen, cons):
        rc = p.wait_exit(scaled(40), what="the session to end")
        lab.check(rc == 0, f"{p.name} exited with status {rc}")
        lines = p.lines("stderr")
        for bad in ("\r", "\x1b", "\u009b", "\u202e"):
            lab.check(not any(bad in l for l in lines), f"{p.name}: stderr holds the relay's control character {bad!r}")
        if fmt == "json":
            motds = [json.loads(l)["message"] for l in lines if '"motd"' in l]
        else:
            motds = [l for l in lines if l.startswith("Message from the rendezvous server: ")]
            starting = [l for l in lines if l.startswith("Connection code:")]
            lab.check(len(starting) == (1 if p is gen else 0),
                      f"{p.name}: lines starting 'Connection code:': {starting}")
            lab.check(all(code in l for l in starting), f"{p.name}: a code line with another code: {starting}")
        lab.check(len(motds) == 1 and "maintenance tonight?Connection code: 12-fake" in motds[0],
                  f"{p.name}: expected one sanitised motd, got {motds}")


def start_dropping_relay(lab, frame_type):
    a = lab.start(f"relay dropping {frame_type}", [
        attacker_bin(), "mitm", "--mode", "drop", "--drop", frame_type, "--listen-port", str(PROXY_PORT),
        "--upstream", lab.relay_url, "--timeout", str(int(scaled(100)))])
    wait_event(a, "listening", scaled(20))
    return a, f"ws://127.0.0.1:{PROXY_PORT}/v1"


@pytest.mark.deadline(90)
@pytest.mark.parametrize("frame_type,says", [
    pytest.param("welcome", r"sent no welcome within 10 s", id="no-welcome"),
    pytest.param("allocated", r"allocated no nameplate within 10 s", id="no-allocated"),
    pytest.param("claimed", r"did not confirm our claim of nameplate \d+ within 10 s", id="no-claimed"),
])
def test_relay_that_never_answers_the_generator_ends_with_exit_6(lab, frame_type, says):
    """A relay in front of the real mailbox server that never delivers the
    welcome, the allocated or the claimed: the generator ends at the
    documented deadline (10 s) with one line and exit 6."""
    attacker, relay = start_dropping_relay(lab, frame_type)
    gen = lab.peersock("peersock stdio-a", ["stdio-a"], relay=relay, stdio=True)
    rc = gen.wait_exit(scaled(30), what=f"a relay that drops {frame_type} must not hang the generator")
    lab.check(any('"dropped"' in l for l in attacker.lines("stdout")), f"the relay never dropped a {frame_type}")
    lab.check(rc == EXIT_RENDEZVOUS, f"{gen.name} exited with status {rc}, expected {EXIT_RENDEZVOUS}")
    line = check_one_error_line(lab, gen)
    lab.check(re.search(says, line) is not None, f"the error line does not say /{says}/: {line!r}")
    if frame_type != "claimed":  # the code is shown once allocated, before the claim is answered
        lab.check(gen.find(CODE_RE) is None, "a code was shown although no nameplate was allocated")


@pytest.mark.deadline(120)
def test_consumer_never_hearing_from_the_peer_ends_with_exit_6(lab):
    """The generator talks to the real server directly; the consumer's relay
    drops every message from the other side. The consumer, whose peer is in
    the mailbox by definition, gives up 30 s after joining with exit 6."""
    attacker, relay = start_dropping_relay(lab, "message")
    gen = lab.peersock("peersock stdio-a", ["stdio-a"], stdio=True)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    cons = lab.peersock("peersock stdio-b", ["stdio-b", code], relay=relay, stdio=True)
    cons.wait_line(r"Waiting for the other side", scaled(20), what="the consumer in the mailbox")
    rc = cons.wait_exit(scaled(60), what="the consumer must give up on a silent peer")
    lab.check(any('"dropped"' in l for l in attacker.lines("stdout")), "the relay never dropped a message")
    lab.check(rc == EXIT_RENDEZVOUS, f"{cons.name} exited with status {rc}, expected {EXIT_RENDEZVOUS}")
    line = check_one_error_line(lab, cons)
    lab.check(re.search(rf"nothing from the other side within 30 s of joining nameplate {code.split('-')[0]}", line),
              f"the error line does not name the wait: {line!r}")


# ---- the protocol version (docs/protocol.md §3.1) ------------------------------
# The relay rewrites the "v" in the ice bodies and leaves everything else, so
# the peers still meet directly. The version is negotiated by ALPN inside the
# TLS handshake, which SMP authenticates; a body that disagrees with it must
# end the session after authentication with exit 8 and one line saying so, on
# both sides -- never a stall, never a silent downgrade.

VERSION_CHANGED = "peersock: the rendezvous server changed the protocol version offered by the other side"


def start_rewriting_relay(lab, to, version):
    argv = [attacker_bin(), "mitm", "--mode", "rewrite", "--rewrite-to", to, "--rewrite-version", version,
            "--listen-port", str(PROXY_PORT), "--upstream", lab.relay_url, "--timeout", str(int(scaled(80)))]
    relay = lab.start("version-rewriting relay", argv)
    wait_event(relay, "listening", scaled(20))
    return relay, f"ws://127.0.0.1:{PROXY_PORT}/v1"


def rewrites(relay):
    return [json.loads(l) for l in relay.lines("stdout") if '"rewrote_version"' in l]


@pytest.mark.deadline(90)
@pytest.mark.parametrize("to,version,gen_protocol,cons_protocol", [
    pytest.param("generator", "none", None, None, id="v-stripped-from-the-consumers-body"),
    pytest.param("consumer", "none", None, None, id="v-stripped-from-the-generators-body"),
    pytest.param("both", "none", None, None, id="v-stripped-from-both-bodies"),
    pytest.param("generator", "3", None, "1", id="v3-added-to-a-v1-consumers-body"),
    pytest.param("consumer", "3", "1", None, id="v3-added-to-a-v1-generators-body"),
])
def test_relay_changing_the_version_ends_both_sides_with_exit_8(lab, to, version, gen_protocol, cons_protocol):
    relay, url = start_rewriting_relay(lab, to, version)

    def env(p):
        return {"PEERSOCK_PROTOCOL": p} if p else None
    gen = lab.peersock("peersock stdio-a", ["stdio-a"], relay=url, stdio=True, env=env(gen_protocol))
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    cons = lab.peersock("peersock stdio-b", ["stdio-b", code], relay=url, stdio=True, env=env(cons_protocol))
    for p in (gen, cons):
        rc = p.wait_exit(scaled(30), what="a changed version must end the session, not stall it")
        lab.check(rc == EXIT_PROTOCOL, f"{p.name} exited with status {rc}, expected {EXIT_PROTOCOL}")
        line = check_one_error_line(lab, p)
        lab.check(line == VERSION_CHANGED, f"{p.name}: unexpected error line {line!r}")
    lab.check(len(rewrites(relay)) == (2 if to == "both" else 1), f"the relay's rewrites: {rewrites(relay)}")


@pytest.mark.deadline(90)
@pytest.mark.parametrize("generator", ["ours", "original"], ids=["peersock-generates", "original-generates"])
def test_relay_adding_v3_to_the_originals_body_ends_with_exit_8(lab, generator):
    """The original writes no "v"; with "v":3 added it looks like a release
    of ours before ALPN negotiation. As generator we then present our own
    certificate, which the original's client refuses (alert 48): only the
    original does that, so the relay added the version. As consumer we see
    plain ALPN with the original's certificate and a body that says 3."""
    from test_original import start_original
    relay, url = start_rewriting_relay(lab, "generator" if generator == "ours" else "consumer", "3")
    if generator == "ours":
        ours = lab.peersock("peersock stdio-a", ["stdio-a"], relay=url, stdio=True)
        code = ours.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
        orig = start_original(lab, ["stdio-b"], code, scaled(60), relay=url)
    else:
        orig = start_original(lab, ["stdio-a"], None, scaled(60), relay=url)
        code = orig.wait_line(CODE_RE, scaled(20), what="the original's 'Connection code:' line").group(1)
        ours = lab.peersock("peersock stdio-b", ["stdio-b", code], relay=url, stdio=True)
    rc = ours.wait_exit(scaled(30), what="a changed version must end the session, not stall it")
    lab.check(rc == EXIT_PROTOCOL, f"{ours.name} exited with status {rc}, expected {EXIT_PROTOCOL}")
    line = check_one_error_line(lab, ours)
    lab.check(line == VERSION_CHANGED, f"{ours.name}: unexpected error line {line!r}")
    lab.check(len(rewrites(relay)) == 1, f"the relay's rewrites: {rewrites(relay)}")
    orig.wait_exit(scaled(30), what="the original-like peer ends too")
