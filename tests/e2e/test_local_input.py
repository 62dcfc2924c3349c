"""Bad local input (docs/security.md): ports, addresses, URLs, an unreadable
config file, a target that cannot be resolved. Each gives exactly one
`peersock: ...` line naming the bad value and the documented exit code, before
anything is sent to the relay; none crashes or hangs. A STUN/TURN name that
does not resolve is not bad input but a warning: the run goes on with the
other candidate types (here: host candidates on lo)."""
import re
from pathlib import Path

import pytest

import signal

from lab import (AUTH_RE, CODE_RE, EXIT_NO_PATH, EXIT_OK, EXIT_USAGE, LISTEN_PORT, MAILBOX_PORT, PYTHON, TARGET_PORT, scaled)

from test_failures import check_one_error_line, error_lines
from test_ux import start_target, tcp_transfer

INTERRUPTED = 130


def unresolved_warning(what, host):
    """The one warning line for a STUN/TURN name that does not resolve."""
    without = "server-reflexive candidates" if what == "STUN" else "relay candidates"
    return re.compile(rf"^warning: cannot resolve {what} server '{re.escape(host)}' \(.+\); going on without {without}$")


def check_carries_on(lab, gen, cons, nbytes):
    """Both sides authenticate, the tunnel carries a transfer, and the run ends
    as usual (SIGTERM on the listening side: it exits 130, the other 0); no
    error line on either side."""
    cons.wait_line(AUTH_RE, scaled(30), what="authentication over host candidates")
    tcp_transfer(lab, nbytes)
    cons.signal(signal.SIGTERM)
    lab.check(cons.wait_exit(scaled(10)) == INTERRUPTED, f"{cons.name}: not exit {INTERRUPTED} after SIGTERM")
    lab.check(gen.wait_exit(scaled(10)) == EXIT_OK, f"{gen.name}: not exit 0 after the other side left")
    for p in (gen, cons):
        lab.check(not error_lines(p), f"{p.name}: error lines {error_lines(p)}")

CODE = "7-abandon-zoo-lab-name"

CASES = [
    pytest.param(["listen", "0"], r"'0' is not a port number", id="listen-port-0"),
    pytest.param(["listen", "70000"], r"'70000' is not a port number", id="listen-port-70000"),
    pytest.param(["listen", "-1"], r"-1", id="listen-port-negative"),
    pytest.param(["listen", "80x"], r"'80x' is not a port number", id="listen-port-junk"),
    pytest.param(["connect", "127.0.0.1:99999", CODE], r"'99999' is not a port number", id="connect-port-99999"),
    pytest.param(["connect", "localhost", CODE], r"'localhost' is not HOST:PORT", id="connect-no-port"),
    pytest.param(["--bind", "999.1.1.1", "listen", str(LISTEN_PORT)], r"'999\.1\.1\.1'", id="bind-not-an-address"),
    pytest.param(["--bind", "example.org", "listen", str(LISTEN_PORT)], r"'example\.org'", id="bind-hostname"),
    pytest.param(["--relay", "http://127.0.0.1/v1", "listen", str(LISTEN_PORT)], r"ws://", id="relay-not-websocket"),
    pytest.param(["--stun", "127.0.0.1:0", "listen", str(LISTEN_PORT)], r"'0'|port", id="stun-port-0"),
    pytest.param(["--config", "{tmp}", "listen", str(LISTEN_PORT)], r"cannot read", id="config-is-a-directory"),
    pytest.param(["--config", "{tmp}/bad.conf", "listen", str(LISTEN_PORT)], r"bad\.conf:2:", id="config-bad-line"),
]


@pytest.mark.deadline(60)
@pytest.mark.parametrize("args,names_bad_value", CASES)
def test_bad_local_input_is_one_line_and_exit_2(ns_lab, args, names_bad_value):
    with open(f"{ns_lab.tmpdir}/bad.conf", "w") as f:
        f.write("[ice]\nstun-port = seventy\n")
    args = [a.replace("{tmp}", ns_lab.tmpdir) for a in args]
    # A sentinel where the mailbox would be: bad input must stop peersock
    # before it contacts anyone.
    sentinel = ns_lab.helper("mailbox sentinel", ["server", "--port", str(MAILBOX_PORT)])
    sentinel.wait_event("listening", scaled(15), what="the sentinel to listen")
    # Options must come after the lab's own --relay/--stun/--turn to win.
    p = ns_lab.peersock("peersock", args, relay=f"ws://127.0.0.1:{MAILBOX_PORT}/v1",
                        stdio="stdio-b" in args)
    rc = p.wait_exit(scaled(15), what="bad local input must be rejected promptly")
    ns_lab.check(rc == EXIT_USAGE, f"exited with status {rc}, expected {EXIT_USAGE}")
    line = check_one_error_line(ns_lab, p)
    ns_lab.check(re.search(names_bad_value, line) is not None,
                 f"the error line does not name the bad value (/{names_bad_value}/): {line!r}")
    ns_lab.check(p.find(CODE_RE) is None, "a connection code was printed despite bad input")
    ns_lab.check(sentinel.event("accepted") is None, "peersock contacted the mailbox despite bad input")


@pytest.mark.deadline(90)
def test_unresolvable_servers_are_a_warning_and_the_run_goes_on(lab):
    """--stun / --turn names that do not resolve: one warning line each, naming
    the server, and the run goes on over host candidates (exit 4 would come
    only if no path resulted)."""
    nbytes = 100_000
    start_target(lab, nbytes)
    gen = lab.peersock("peersock connect", ["--stun", "nosuchhost.invalid", "connect", f"127.0.0.1:{TARGET_PORT}"])
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    cons = lab.peersock("peersock listen", ["--turn", "nosuchhost.invalid:3478", "listen", str(LISTEN_PORT), code])
    check_carries_on(lab, gen, cons, nbytes)
    for p, what in ((gen, "STUN"), (cons, "TURN")):
        warnings = [l for l in p.lines("stderr") if "nosuchhost" in l]
        lab.check(len(warnings) == 1 and unresolved_warning(what, "nosuchhost.invalid").search(warnings[0]),
                  f"{p.name}: expected one warning naming the {what} server, got {warnings}")


SILENT_DNS = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print('{"event": "listening"}', flush=True)
while True:
    s.recvfrom(2048)  # never answers
"""


@pytest.mark.deadline(90)
@pytest.mark.parametrize("option", ["--stun", "--turn"])
def test_slow_failing_name_lookup_warns_before_the_rendezvous(lab, option):
    """A STUN/TURN name whose lookup takes seconds to fail (a DNS server that
    never answers): the rendezvous starts only once the lookup has ended (the
    warning comes before peersock contacts the mailbox; with the lookup
    running in parallel with the rendezvous, the websocket won this race
    every time here), and then the run goes on over host candidates."""
    etc = Path("/etc/netns") / lab.ns.name
    etc.mkdir(parents=True, exist_ok=True)
    try:
        # `ip netns exec` mounts this over /etc/resolv.conf; /etc/hosts does
        # not know the name, so the lookup goes to the silent server.
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
        dns = lab.start("silent dns", [PYTHON, "-u", "-c", SILENT_DNS])
        dns.wait_event("listening", scaled(15), what="the silent DNS server")
        nbytes = 100_000
        start_target(lab, nbytes)
        # The rendezvous layer's debug log says when the websocket connects:
        # the same process writes both lines, so their order is the real one.
        gen = lab.peersock("peersock connect", ["--debug=rendezvous", option, "stun.example.org",
                                                "connect", f"127.0.0.1:{TARGET_PORT}"])
        code = gen.wait_line(CODE_RE, scaled(30), what="the 'Connection code:' line after the failed lookup").group(1)
        lines = gen.lines("stderr")
        what = option[2:].upper()
        warned = [i for i, l in enumerate(lines) if unresolved_warning(what, "stun.example.org").search(l)]
        contacting = [i for i, l in enumerate(lines) if "connecting to ws://" in l]
        lab.check(len(warned) == 1, f"expected one warning naming the {what} server: {lines}")
        lab.check(contacting and warned[0] < contacting[0],
                  f"peersock contacted the rendezvous server before its lookup ended: {lines}")
        cons = lab.peersock("peersock listen", ["listen", str(LISTEN_PORT), code])
        check_carries_on(lab, gen, cons, nbytes)
    finally:
        for f in etc.glob("*"):
            f.unlink()
        etc.rmdir()


@pytest.mark.deadline(90)
def test_unresolvable_turn_with_force_relay_is_no_path(lab):
    """--force-relay with a TURN name that does not resolve leaves no
    candidate at all: the warning, then no path (exit 4, not a usage error),
    and the no-path message names the server that did not resolve."""
    gen = lab.peersock("peersock stdio-a", ["--force-relay", "--turn", "nosuchhost.invalid:3478", "stdio-a"],
                       stdio=True)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    cons = lab.peersock("peersock stdio-b", ["stdio-b", code], stdio=True)
    rc = gen.wait_exit(scaled(40), what="no path to end the run")
    lab.check(rc == EXIT_NO_PATH, f"{gen.name}: exited with status {rc}, expected {EXIT_NO_PATH}")
    lab.check(gen.find(unresolved_warning("TURN", "nosuchhost.invalid")) is not None,
              f"{gen.name}: no warning naming the TURN server")
    line = check_one_error_line(lab, gen)
    lab.check("no network path" in line and "TURN server 'nosuchhost.invalid' did not resolve" in line,
              f"the no-path line does not name the unresolved server: {line!r}")
    cons.wait_exit(scaled(40), what="the other side to end too")
