"""Failure paths: wrong code, unreachable mailbox, malformed codes, busy port."""
import re
import subprocess
import time

import pytest

from lab import (CLOSED_PORT, CODE_RE, ERROR_LINE_RE, EXIT_LOCAL_SOCKET, EXIT_MISMATCH, EXIT_NO_PATH,
                 EXIT_RENDEZVOUS, EXIT_USAGE, LISTEN_PORT, MAILBOX_PORT, TARGET_PORT,
                 scaled, wrong_words_code)


def error_lines(p):
    return [l for l in p.lines("stderr") if ERROR_LINE_RE.search(l)]


def check_one_error_line(lab, p):
    lines = error_lines(p)
    lab.check(len(lines) == 1, f"{p.name}: expected exactly one 'peersock: <message>' line on stderr, "
                               f"got {len(lines)}")
    lab.check(len(lines[0].strip()) > len("peersock: ") + 3, f"{p.name}: the error line says nothing: {lines[0]!r}")
    return lines[0]


@pytest.mark.deadline(90)
@pytest.mark.parametrize("generator", [pytest.param("listen", id="listen-generates-code"),
                                       pytest.param("connect", id="connect-generates-code")])
def test_wrong_code_words_fails_with_mismatch(lab, generator):
    target = lab.helper("target server", ["server", "--port", str(TARGET_PORT), "--bytes", str(1 << 20),
                                          "--timeout", str(int(scaled(80)))])
    target.wait_event("listening", scaled(15), what="the target server to listen")
    listen_args = ["listen", str(LISTEN_PORT)]
    connect_args = ["connect", f"127.0.0.1:{TARGET_PORT}"]

    def start_client():
        return lab.helper("tcp client", ["client", "--port", str(LISTEN_PORT), "--bytes", str(1 << 20),
                                         "--connect-timeout", str(max(1, int(scaled(5)))), "--timeout", str(int(scaled(60)))])

    if generator == "listen":
        gen = lab.peersock("peersock listen", listen_args)
    else:
        gen = lab.peersock("peersock connect", connect_args)
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    bad = wrong_words_code(code)
    lab.note(f"generated code {code}; the other side gets {bad}")
    client = start_client() if generator == "listen" else None
    if client is not None:
        client.wait_event("connected", scaled(15), what="the TCP client to connect to the listen port")

    t0 = time.monotonic()
    if generator == "listen":
        cons = lab.peersock("peersock connect", connect_args + [bad])
    else:
        cons = lab.peersock("peersock listen", listen_args + [bad])
        client = start_client()
    limit = t0 + scaled(5)
    for p in (gen, cons):
        rc = p.wait_exit(limit - time.monotonic(), what="a code mismatch must end both sides within 5 s")
        lab.check(rc == EXIT_MISMATCH, f"{p.name} exited with status {rc}, expected {EXIT_MISMATCH} (code mismatch)")
        lab.check(p.find(r"connection code mismatch: the codes did not match \(one side typed it wrong, or someone "
                         r"guessed\)") is not None,
                  f"{p.name}: stderr does not say the codes did not match (blaming nobody)")

    res = lab.wait_for(lambda: client.event("done") or client.event("connect_failed"), scaled(20),
                       "the TCP client to finish after both peers exited")
    lab.check(res.get("recv", 0) == 0, f"the TCP client received {res.get('recv')} bytes through an "
                                       f"unauthenticated tunnel")
    lab.check(target.event("accepted") is None, "the target server got a connection although "
                                                "authentication failed")
    lab.check(target.returncode is None, f"target server exited ({target.returncode})")


@pytest.mark.deadline(60)
@pytest.mark.parametrize("args", [
    pytest.param(["listen", str(LISTEN_PORT)], id="generator-listen"),
    pytest.param(["connect", f"127.0.0.1:{TARGET_PORT}", "7-abandon-zoo-lab-name"], id="consumer-connect"),
])
def test_unreachable_mailbox_exits_6(ns_lab, args):
    relay = f"ws://127.0.0.1:{CLOSED_PORT}/v1"  # nothing listens there in the fresh namespace
    p = ns_lab.peersock(f"peersock {args[0]}", args, relay=relay)
    rc = p.wait_exit(scaled(30), what="an unreachable mailbox must fail within 30 s")
    ns_lab.check(rc == EXIT_RENDEZVOUS, f"{p.name} exited with status {rc}, expected {EXIT_RENDEZVOUS}")
    check_one_error_line(ns_lab, p)
    ns_lab.check(p.find(CODE_RE) is None, f"{p.name} printed a connection code without a mailbox")


MALFORMED = [
    pytest.param("abc", r"abc", id="abc"),
    pytest.param("7", r"(?i)\b7\b|word|missing", id="nameplate-only"),
    pytest.param("7-notaword-zoo-lab-name", r"notaword", id="unknown-word"),
    # A near miss gets the word it most likely meant, also when typed with spaces.
    pytest.param("7 abandon excses lab name", r"^peersock: 'excses' is not a code word; did you mean 'excess'\?$",
                 id="word-typo"),
    pytest.param("x-abandon-zoo-lab-name", r"(?i)nameplate|\bx\b", id="non-numeric-nameplate"),
]


@pytest.mark.deadline(60)
@pytest.mark.parametrize("mode", [pytest.param(["stdio-b"], id="stdio-b"),
                                  pytest.param(["listen", str(LISTEN_PORT)], id="listen")])
@pytest.mark.parametrize("code,names_bad_part", MALFORMED)
def test_malformed_code_is_usage_error(ns_lab, mode, code, names_bad_part):
    # A sentinel stands where the mailbox would be: it must see no connection.
    sentinel = ns_lab.helper("mailbox sentinel", ["server", "--port", str(MAILBOX_PORT)])
    sentinel.wait_event("listening", scaled(15), what="the sentinel to listen")
    p = ns_lab.peersock(f"peersock {mode[0]}", [*mode, code], relay=f"ws://127.0.0.1:{MAILBOX_PORT}/v1",
                        stdio=mode[0] == "stdio-b")
    rc = p.wait_exit(scaled(5), what="a malformed code must be rejected immediately")
    ns_lab.check(rc == EXIT_USAGE, f"{p.name} exited with status {rc}, expected {EXIT_USAGE} (usage)")
    line = check_one_error_line(ns_lab, p)
    ns_lab.check(re.search(names_bad_part, line) is not None,
                 f"the error line does not name the bad part of {code!r} (/{names_bad_part}/): {line!r}")
    ns_lab.check(sentinel.event("accepted") is None, "peersock contacted the mailbox despite a malformed code")


@pytest.mark.deadline(60)
def test_listen_port_in_use_exits_7(lab):
    holder = lab.helper("port holder", ["server", "--port", str(LISTEN_PORT)])
    holder.wait_event("listening", scaled(15), what="the port holder to listen")
    p = lab.peersock("peersock listen", ["listen", str(LISTEN_PORT)])
    rc = p.wait_exit(scaled(15), what="a busy listen port must fail promptly")
    lab.check(rc == EXIT_LOCAL_SOCKET, f"{p.name} exited with status {rc}, expected {EXIT_LOCAL_SOCKET}")
    check_one_error_line(lab, p)
    lab.check(p.find(CODE_RE) is None, "listen printed a connection code although its port could not be "
                                       "bound (it must bind before rendezvous)")


@pytest.mark.deadline(90)
def test_no_interface_up_says_so(lab):
    """Both peers in a namespace with only lo (no interface up besides it),
    and UDP on lo dropped: ICE cannot work. Each side exits 4 with one line
    that names the likely cause: it could offer only 127.0.0.1."""
    subprocess.run(["ip", "netns", "exec", lab.ns.name, "iptables", "-A", "INPUT", "-i", "lo", "-p", "udp",
                    "-j", "DROP"], check=True)
    gen, cons, _ = lab.start_pair("peersock stdio-a", ["stdio-a"], "peersock stdio-b", ["stdio-b"])
    for p in (gen, cons):
        rc = p.wait_exit(scaled(45), what="ICE to give up")
        lab.check(rc == EXIT_NO_PATH, f"{p.name} exited with status {rc}, expected {EXIT_NO_PATH}")
        line = check_one_error_line(lab, p)
        lab.check("no network path" in line and "offered only 127.0.0.1" in line,
                  f"{p.name}: the error line does not name the cause: {line!r}")


SAME_ROLES = [
    pytest.param(["listen", str(LISTEN_PORT)], ["listen", str(LISTEN_PORT + 1)],
                 "both sides ran listen: the other side must run connect (or stdio-a)", id="listen-listen"),
    pytest.param(["connect", f"127.0.0.1:{TARGET_PORT}"], ["connect", f"127.0.0.1:{TARGET_PORT}"],
                 "both sides ran connect: the other side must run listen (or stdio-b)", id="connect-connect"),
    pytest.param(["stdio-b"], ["listen", str(LISTEN_PORT)], None, id="stdio-b-listen"),
    pytest.param(["stdio-a"], ["connect", f"127.0.0.1:{TARGET_PORT}"], None, id="stdio-a-connect"),
]


@pytest.mark.deadline(60)
@pytest.mark.parametrize("gen_args,cons_args,message", SAME_ROLES)
def test_same_roles_fail_on_both_sides_before_connecting(lab, gen_args, cons_args, message):
    """Two openers (listen, listen-unix, stdio-b) or two acceptors (connect,
    connect-unix, stdio-a) could never forward anything: both sides say so
    from the other's ice body, exit 2 and connect nothing."""
    gen, cons, _ = lab.start_pair("generator", gen_args, "consumer", cons_args,
                                  gen_stdio=gen_args[0].startswith("stdio"),
                                  cons_stdio=cons_args[0].startswith("stdio"))
    for p, ours, theirs in ((gen, gen_args[0], cons_args[0]), (cons, cons_args[0], gen_args[0])):
        rc = p.wait_exit(scaled(20), what="same roles must end both sides")
        lab.check(rc == EXIT_USAGE, f"{p.name} exited with {rc}, expected {EXIT_USAGE}")
        line = check_one_error_line(lab, p)
        want = message or f"this side ran {ours} and the other side {theirs}: the other side must run"
        lab.check(want in line, f"{p.name}: {line!r} does not say {want!r}")
        lab.check(p.find(r"authenticated|connected directly|finding a network path") is None,
                  f"{p.name} went on to connect:\n{p.text()}")


@pytest.mark.deadline(90)
def test_relay_restart_while_waiting_keeps_the_code(lab):
    """The mailbox server restarts while the generating side waits: it says
    so, reconnects with backoff, and the same code still works (the server
    keeps its nameplates in its database)."""
    import signal
    gen = lab.peersock("peersock connect", ["connect", f"127.0.0.1:{TARGET_PORT}"])
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    gen.wait_line(r"Waiting for the other side", scaled(10), what="the waiting line")
    old = lab.mailbox
    old.signal(signal.SIGTERM)
    old.wait_exit(scaled(15), what="the mailbox server to stop")
    gen.wait_line(r"connection to the rendezvous server was lost; reconnecting", scaled(10),
                  what="the line saying the relay connection was lost")
    lab.start_mailbox()
    gen.wait_line(r"Reconnected to the rendezvous server", scaled(30), what="the reconnect")
    lab.check(gen.returncode is None, f"the generating side exited with {gen.returncode}")
    cons = lab.peersock("peersock listen", ["listen", str(LISTEN_PORT), code])
    for p in (gen, cons):
        p.wait_line(r"^authenticated", scaled(30), what="authentication with the code from before the restart")
