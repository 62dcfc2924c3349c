"""Encrypted signaling (docs/protocol.md §2.9, docs/security.md §2.1), end to
end with the real mailbox server. A relay (psk-attacker `mitm --mode signal`,
a websocket proxy in front of the server) records every message frame the
server relays to either peer, and for the hostile cases meddles with one of
them (drop, replay, reorder, truncate).

- Between two current peers the relay sees no address, ufrag or password:
  only `pake`, `confirm` and `sealed-ice` frames whose bodies are base64 of
  random-looking bytes. The same check on two peers at PEERSOCK_PROTOCOL=1
  (plaintext, like the original) does find the addresses: it can fail.
- A peer that acts like the original (PEERSOCK_PROTOCOL=1) still connects,
  with one notice line; `--no-original` refuses it and the original-like test
  peer (exit 8) without sending its own body in clear.
- A wrong code ends both sides at the key confirmation, quickly (exit 3).
- Meddling with the new messages gives a clear error or success, never a
  hang."""
import base64
import re
import time

import pytest

from lab import CODE_RE, EXIT_MISMATCH, EXIT_PROTOCOL, EXIT_RENDEZVOUS, scaled, wrong_words_code
from test_attacks import PROXY_PORT, attacker_bin, events, wait_event
from test_failures import check_one_error_line
from test_original import start_original

IPV4_RE = re.compile(rb"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")
NOTICE_PREFIX = "the other side runs the original peersock: addresses are visible to the relay"


def start_relay(lab, action="none", phase="none", to="consumer"):
    """The recording (and, with `action`, meddling) relay; returns it and
    the URL the peers use."""
    argv = [attacker_bin(), "mitm", "--mode", "signal", "--listen-port", str(PROXY_PORT), "--upstream",
            lab.relay_url, "--inject-to", to, "--phase", phase, "--action", action if action != "none" else "drop",
            "--timeout", str(int(scaled(120)))]
    relay = lab.start(f"relay ({action} {phase} to {to})", argv)
    wait_event(relay, "listening", scaled(20))
    return relay, f"ws://127.0.0.1:{PROXY_PORT}/v1"


def start_pair(lab, relay_url, gen_env=None, cons_env=None, gen_args=(), cons_args=(), code_of=None):
    gen = lab.peersock("peersock stdio-a", [*gen_args, "stdio-a"], relay=relay_url, stdio=True, env=gen_env)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    typed = code_of(code) if code_of else code
    cons = lab.peersock("peersock stdio-b", [*cons_args, "stdio-b", typed], relay=relay_url, stdio=True,
                        env=cons_env)
    return gen, cons


def finish_ok(lab, *procs):
    for p in procs:
        p.proc.stdin.close()
    for p in procs:
        rc = p.wait_exit(scaled(40), what="the session to end")
        lab.check(rc == 0, f"{p.name} exited with status {rc}")


def frames(relay):
    return events(relay, "frame")


def clear_text_findings(frame_list):
    """What in the relayed frames gives an address or ICE credential away."""
    found = []
    for f in frame_list:
        body = f["body"].encode()
        if f["phase"] == "ice":
            found.append(f"a plaintext ice frame to the {f['to']}")
        for blob in (body, _b64(body)):
            if blob and (IPV4_RE.search(blob) or b'"u":' in blob or b'"p":' in blob or b'"c":' in blob):
                found.append(f"{f['phase']} to the {f['to']}: {blob[:80]!r}")
    return found


def _b64(body):
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:
        return b""


@pytest.mark.deadline(120)
def test_relay_sees_no_address_between_current_peers(lab):
    relay, url = start_relay(lab)
    gen, cons = start_pair(lab, url)
    for p in (gen, cons):
        p.wait_line(r"authenticated", scaled(20), what="authentication")
    finish_ok(lab, gen, cons)
    seen = frames(relay)
    phases = sorted({f["phase"] for f in seen})
    lab.note(f"{len(seen)} message frames relayed, phases {phases}")
    lab.check(phases == ["confirm", "pake", "sealed-ice"], f"unexpected phases on the relay: {phases}")
    for f in seen:
        lab.check(re.fullmatch(r"[A-Za-z0-9+/]+=*", f["body"]) is not None,
                  f"a {f['phase']} body is not base64: {f['body'][:80]!r}")
    findings = clear_text_findings(seen)
    lab.check(not findings, f"the relay saw signaling in clear: {findings}")
    for p in (gen, cons):
        lab.check(not any(NOTICE_PREFIX in l for l in p.lines("stderr")), f"{p.name} took its peer for the original")

    # The same check catches plaintext signaling: two peers acting like the
    # original (PEERSOCK_PROTOCOL=1) give their addresses away.
    relay.stop()
    relay, url = start_relay(lab)
    v1 = {"PEERSOCK_PROTOCOL": "1"}
    gen, cons = start_pair(lab, url, gen_env=v1, cons_env=v1)
    for p in (gen, cons):
        p.wait_line(r"authenticated", scaled(20), what="authentication")
    finish_ok(lab, gen, cons)
    lab.check(clear_text_findings(frames(relay)), "the check found nothing in plaintext signaling: it cannot fail")


@pytest.mark.deadline(120)
@pytest.mark.parametrize("v1_side", ["generator", "consumer"])
def test_a_peer_acting_like_the_original_connects_with_one_notice(lab, v1_side):
    v1 = {"PEERSOCK_PROTOCOL": "1"}
    relay, url = start_relay(lab)
    gen, cons = start_pair(lab, url, gen_env=v1 if v1_side == "generator" else None,
                           cons_env=v1 if v1_side == "consumer" else None)
    ours = cons if v1_side == "generator" else gen
    for p in (gen, cons):
        p.wait_line(r"authenticated", scaled(30), what="authentication")
    finish_ok(lab, gen, cons)
    notices = [l for l in ours.lines("stderr") if NOTICE_PREFIX in l]
    lab.check(len(notices) == 1 and "one connection at a time, no half-close" in notices[0],
              f"{ours.name} should say once, in one line, that the peer is the original: {notices}")
    lab.check({f["phase"] for f in frames(relay)} >= {"ice"}, "no plaintext body crossed the relay")


@pytest.mark.deadline(120)
@pytest.mark.parametrize("generator", ["ours", "original"])
def test_no_original_refuses_the_original_and_sends_nothing_in_clear(lab, generator):
    relay, url = start_relay(lab)
    start = time.monotonic()
    if generator == "ours":
        ours = lab.peersock("peersock stdio-a", ["--no-original", "stdio-a"], relay=url, stdio=True)
        code = ours.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
        start_original(lab, ["stdio-b"], code, int(scaled(60)), relay=url)
        ours_role = "generator"
    else:
        orig = start_original(lab, ["stdio-a"], None, int(scaled(60)), relay=url)
        code = orig.wait_line(CODE_RE, scaled(20), what="the original's 'Connection code:' line").group(1)
        ours = lab.peersock("peersock stdio-b", ["--no-original", "stdio-b", code], relay=url, stdio=True)
        ours_role = "consumer"
    rc = ours.wait_exit(scaled(30), what="--no-original to refuse the original")
    lab.note(f"refused after {time.monotonic() - start:.1f} s")
    lab.check(rc == EXIT_PROTOCOL, f"{ours.name} exited with status {rc}, expected {EXIT_PROTOCOL}")
    line = check_one_error_line(lab, ours)
    lab.check("--no-original" in line, f"the error line does not name --no-original: {line!r}")
    ours_in_clear = [f for f in frames(relay) if f["phase"] == "ice" and f["to"] == ours_role and f["echo"]]
    lab.check(not ours_in_clear, f"{ours.name} sent its body in clear although it refused the original")


@pytest.mark.deadline(90)
def test_wrong_code_ends_both_sides_at_the_key_confirmation(lab):
    relay, url = start_relay(lab)
    gen, cons = start_pair(lab, url, code_of=wrong_words_code)
    start = time.monotonic()
    for p in (cons, gen):
        rc = p.wait_exit(scaled(15), what="the mismatch")
        lab.check(rc == EXIT_MISMATCH, f"{p.name} exited with status {rc}, expected {EXIT_MISMATCH}")
        lab.check("connection code mismatch" in check_one_error_line(lab, p), f"{p.name} does not say mismatch")
    elapsed = time.monotonic() - start
    lab.note(f"both sides ended {elapsed:.1f} s after the consumer started")
    lab.check(elapsed < scaled(5), f"the mismatch took {elapsed:.1f} s")
    lab.check(not any(f["phase"] == "ice" for f in frames(relay)), "a body went through the relay in clear")


MEDDLING = [
    # (action, phase, to, expected exit of the side meddled with; None = the session succeeds)
    ("replay", "pake", "consumer", None),
    ("replay", "confirm", "consumer", None),
    ("replay", "sealed-ice", "consumer", None),
    ("replay", "sealed-ice", "generator", None),
    ("drop", "pake", "consumer", EXIT_PROTOCOL),
    ("drop", "confirm", "consumer", EXIT_PROTOCOL),
    ("drop", "sealed-ice", "consumer", EXIT_RENDEZVOUS),
    ("reorder", "pake", "consumer", EXIT_PROTOCOL),
    ("reorder", "confirm", "generator", EXIT_PROTOCOL),
    ("truncate", "pake", "consumer", EXIT_PROTOCOL),
    ("truncate", "pake", "generator", EXIT_PROTOCOL),
    ("truncate", "confirm", "consumer", EXIT_PROTOCOL),
    ("truncate", "sealed-ice", "consumer", EXIT_PROTOCOL),
    ("truncate", "sealed-ice", "generator", EXIT_PROTOCOL),
]


@pytest.mark.deadline(120)
@pytest.mark.parametrize("action,phase,to,expected", MEDDLING,
                         ids=[f"{a}-{p}-to-{t}" for a, p, t, _ in MEDDLING])
def test_relay_meddling_with_signaling_ends_clearly(lab, action, phase, to, expected):
    relay, url = start_relay(lab, action, phase, to)
    gen, cons = start_pair(lab, url)
    target = cons if to == "consumer" else gen
    if expected is None:
        for p in (gen, cons):
            p.wait_line(r"authenticated", scaled(20), what="authentication despite the replay")
        finish_ok(lab, gen, cons)
    else:
        # Dropping the sealed body leaves only the 60 s deadline for it.
        limit = scaled(75) if expected == EXIT_RENDEZVOUS else scaled(20)
        rc = target.wait_exit(limit, what=f"{action} of {phase} to end the session")
        lab.check(rc == expected, f"{target.name} exited with status {rc}, expected {expected}")
        line = check_one_error_line(lab, target)
        lab.check(len(line) < 400, f"the error line is not bounded ({len(line)} characters)")
        lab.note(f"{target.name}: {line}")
    lab.check(any(e.get("action") == action for e in events(relay, "meddled")), f"the relay never did its {action}")
