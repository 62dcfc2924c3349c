"""Bad local input (docs/security.md): ports, addresses, URLs, unresolvable hosts, an
unreadable config file, a target that cannot be resolved. Each gives exactly
one `peersock: ...` line naming the bad value and the documented exit code,
before anything is sent to the relay; none crashes or hangs."""
import re
from pathlib import Path

import pytest

from lab import (CODE_RE, EXIT_USAGE, LISTEN_PORT, MAILBOX_PORT, PYTHON, scaled)

from test_failures import check_one_error_line

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
    pytest.param(["--stun", "nosuchhost.invalid", "listen", str(LISTEN_PORT)], r"nosuchhost\.invalid",
                 id="stun-unresolvable"),
    pytest.param(["--turn", "nosuchhost.invalid:3478", "stdio-b", CODE], r"nosuchhost\.invalid",
                 id="turn-unresolvable"),
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


SILENT_DNS = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print('{"event": "listening"}', flush=True)
while True:
    s.recvfrom(2048)  # never answers
"""


@pytest.mark.deadline(60)
@pytest.mark.parametrize("option", ["--stun", "--turn"])
def test_slow_failing_name_lookup_contacts_nobody(ns_lab, option):
    """A STUN/TURN name whose lookup takes seconds to fail (a DNS server that
    never answers): the rendezvous must not start before the lookup ends, so
    the mailbox is never contacted and no code is shown. (With the lookup
    running in parallel with the rendezvous, the websocket won this race
    every time here.)"""
    etc = Path("/etc/netns") / ns_lab.ns.name
    etc.mkdir(parents=True, exist_ok=True)
    try:
        # `ip netns exec` mounts this over /etc/resolv.conf; /etc/hosts does
        # not know the name, so the lookup goes to the silent server.
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
        dns = ns_lab.start("silent dns", [PYTHON, "-u", "-c", SILENT_DNS])
        dns.wait_event("listening", scaled(15), what="the silent DNS server")
        sentinel = ns_lab.helper("mailbox sentinel", ["server", "--port", str(MAILBOX_PORT)])
        sentinel.wait_event("listening", scaled(15), what="the sentinel to listen")
        p = ns_lab.peersock("peersock", [option, "stun.example.org", "listen", str(LISTEN_PORT)],
                            relay=f"ws://127.0.0.1:{MAILBOX_PORT}/v1")
        rc = p.wait_exit(scaled(30), what="the failed lookup to end peersock")
        ns_lab.check(rc == EXIT_USAGE, f"exited with status {rc}, expected {EXIT_USAGE}")
        line = check_one_error_line(ns_lab, p)
        ns_lab.check("stun.example.org" in line, f"the error line does not name the host: {line!r}")
        ns_lab.check(p.find(CODE_RE) is None, "a connection code was printed despite bad input")
        ns_lab.check(sentinel.event("accepted") is None, "peersock contacted the mailbox before its lookup failed")
    finally:
        for f in etc.glob("*"):
            f.unlink()
        etc.rmdir()
