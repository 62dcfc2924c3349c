"""listen-udp / connect-udp: UDP in QUIC DATAGRAM frames, with the real
binary, the real mailbox server and real UDP programs in the test's
namespace (udp_tool.py, dnsmasq and dig, wireguard-go).

What each test proves:
- echo: 10 000 datagrams of random sizes up to the path's limit come back
  intact (>= 99.9 %); one over the limit is dropped and counted.
- 100 clients at once: every reply reaches the socket that asked, and the
  connect side used one socket (source port) per client.
- idle expiry and the flow limit: both sides end flows, a later datagram
  still gets through on a new flow.
- UDP pairs only with UDP (exit 2 on both sides), and needs protocol v5 on
  both sides (exit 8 on both).
"""
import json
import os
import shutil

import pytest

from lab import (EXIT_LOCAL_SOCKET, EXIT_PROTOCOL, EXIT_USAGE, HERE, LISTEN_PORT, PYTHON, TARGET_PORT, scaled)

TOOL = HERE / "udp_tool.py"


def tool(lab, name, args):
    return lab.start(name, [PYTHON, "-u", str(TOOL), *args])


def echo_server(lab, timeout=200):
    e = tool(lab, "udp echo server", ["echo", "--port", str(TARGET_PORT), "--timeout", str(int(scaled(timeout)))])
    e.wait_event("listening", scaled(15), what="the UDP echo server to listen")
    return e


def json_lines(p):
    out = []
    for line in p.lines("stderr"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict):
            out.append(e)
    return out


def udp_stats(p):
    """The udp part of p's latest stats event (None before the first)."""
    for e in reversed(json_lines(p)):
        if e.get("event") == "stats" and e.get("udp"):
            return e["udp"]
    return None


def start_udp_pair(lab, connect_extra=(), listen_extra=(), connect_env=None, listen_env=None, wait_auth=True):
    """connect-udp to the echo server generates the code, listen-udp on
    LISTEN_PORT takes it; both with --json. Returns (connect, listen)."""
    c = lab.peersock("peersock connect-udp", ["--json", *connect_extra, "connect-udp", f"127.0.0.1:{TARGET_PORT}"],
                     env=connect_env)
    m = c.wait_line(r'"event":"code"', scaled(20), what="the code event")
    code = json.loads(m.string)["code"]
    lab.check(json.loads(m.string)["command"].endswith(f"listen-udp {TARGET_PORT} --join"),
              f"the hint for the other side: {m.string}")
    env = {"PEERSOCK_CODE": code, **(listen_env or {})}
    li = lab.peersock("peersock listen-udp", ["--json", *listen_extra, "listen-udp", str(LISTEN_PORT)], env=env)
    if wait_auth:
        for p in (c, li):
            p.wait_line(r'"event":"authenticated"', scaled(40), what="the authenticated event")
    return c, li


def alive(*procs):
    def check():
        for p in procs:
            if p.returncode is not None:
                return f"{p.name} exited with status {p.returncode}"
    return check


def path_limit(lab, c, li):
    """The largest datagram both directions carry, once path MTU discovery
    has raised both sides above the 1200-byte start (lo: 1452-byte packets)."""
    def both():
        a, b = udp_stats(c), udp_stats(li)
        if a and b and a["max_datagram"] > 1300 and b["max_datagram"] > 1300:
            return min(a["max_datagram"], b["max_datagram"])
    return lab.wait_for(both, scaled(20), "both sides' datagram limit above 1300 bytes (PMTU discovery)",
                        fail_if=alive(c, li))


@pytest.mark.deadline(300)
def test_udp_echo_10000_datagrams_of_random_sizes_up_to_the_limit(lab):
    echo_server(lab)
    c, li = start_udp_pair(lab)
    limit = path_limit(lab, c, li)
    lab.note(f"datagram limit on this path: {limit} bytes")
    blast = tool(lab, "udp blast", ["blast", "--port", str(LISTEN_PORT), "--count", "10000", "--max-size", str(limit),
                                    "--window", "64", "--seed", "7", "--timeout", str(int(scaled(150)))])
    done = blast.wait_event("done", scaled(180), what="10 000 datagrams through the tunnel")
    lab.note(f"echo result: {done}")
    lab.check(done["sent"] == 10000 and done["corrupt"] == 0, f"blast: {done}")
    lab.check(done["ok"] >= 9990, f"only {done['ok']} of 10000 came back intact (>= 99.9 % expected): {done}")
    lab.check(done["max_size"] > limit - 50, f"the sizes did not reach the limit: {done}")
    print(f"\nudp echo: {done['ok']}/10000 back intact, limit {limit} bytes, {done['seconds']} s")

    # Over the limit: dropped at the listen side and counted there. (The
    # limit shown leaves room for a 2-byte flow header; the first 64 flows
    # have a 1-byte one, so limit + 1 still fits for them.)
    before = udp_stats(li)["dropped_out"]
    over = tool(lab, "udp blast over the limit", ["blast", "--port", str(LISTEN_PORT), "--count", "3",
                                                  "--min-size", str(limit + 2), "--max-size", str(limit + 2),
                                                  "--timeout", str(int(scaled(10)))])
    res = over.wait_event("done", scaled(30), what="3 datagrams over the limit")
    lab.check(res["ok"] == 0 and res["lost"] == 3, f"datagrams over the limit came back: {res}")
    lab.wait_for(lambda: udp_stats(li)["dropped_out"] >= before + 3, scaled(10),
                 "the listen side to count 3 dropped datagrams", fail_if=alive(c, li))
    st = udp_stats(li)
    lab.check(st["sent"] >= 10000 and st["received"] >= done["ok"], f"listen side's counts: {st}")
    # The status line's numbers in a final stats event at the end.
    li.stop()
    rc = c.wait_exit(scaled(15), what="the other side ended")
    lab.check(rc == 0, f"connect-udp exited {rc} after listen-udp ended")
    final = [e for e in json_lines(c) if e.get("event") == "stats" and e.get("final")]
    lab.check(final and final[-1].get("udp", {}).get("received", 0) >= 10000, f"final stats: {final}")


@pytest.mark.deadline(180)
def test_udp_100_clients_each_get_their_own_replies(lab):
    echo = echo_server(lab)
    c, li = start_udp_pair(lab)
    many = tool(lab, "100 udp clients", ["many", "--port", str(LISTEN_PORT), "--clients", "100", "--rounds", "5",
                                         "--timeout", str(int(scaled(60)))])
    done = many.wait_event("done", scaled(90), what="100 clients' replies")
    lab.check(done["complete"] == 100 and done["misdelivered"] == 0, f"100 clients: {done}")
    sources = [e for e in echo.events() if e.get("event") == "source"]
    lab.check(len(sources) == 100, f"the echo server saw {len(sources)} source addresses, expected one per client")
    lab.wait_for(lambda: (udp_stats(li) or {}).get("flows") == 100 and (udp_stats(c) or {}).get("flows") == 100,
                 scaled(10), "100 flows on both sides", fail_if=alive(c, li))


@pytest.mark.deadline(120)
def test_udp_idle_flows_end_and_a_later_datagram_starts_a_new_one(lab):
    echo = echo_server(lab)
    c, li = start_udp_pair(lab, connect_extra=["--udp-idle", "1.5"], listen_extra=["--udp-idle", "1.5"])
    portfile = os.path.join(lab.tmpdir, "client-port")
    first = tool(lab, "udp ping 1", ["ping", "--port", str(LISTEN_PORT), "--keep-open", portfile])
    r1 = first.wait_event("reply", scaled(20), what="the first reply")
    lab.check(r1["ok"], f"first reply: {r1}")
    lab.wait_for(lambda: (udp_stats(li) or {}).get("flows") == 1 and (udp_stats(c) or {}).get("flows") == 1,
                 scaled(5), "one flow on both sides", fail_if=alive(c, li))
    lab.wait_for(lambda: udp_stats(li)["flows"] == 0 and udp_stats(c)["flows"] == 0, scaled(10),
                 "the idle flow to end on both sides", fail_if=alive(c, li))
    second = tool(lab, "udp ping 2", ["ping", "--port", str(LISTEN_PORT), "--keep-open", portfile])
    r2 = second.wait_event("reply", scaled(20), what="the reply on a new flow")
    lab.check(r2["ok"] and r2["port"] == r1["port"], f"second reply: {r2} (first {r1})")
    sources = [e for e in echo.events() if e.get("event") == "source"]
    lab.check(len(sources) == 2, f"the echo server saw {len(sources)} sources: the connect side should have "
                                 f"opened a new socket for the new flow ({sources})")


@pytest.mark.deadline(150)
def test_udp_flow_limit_evicts_the_least_recently_used(lab):
    echo = echo_server(lab)
    c, li = start_udp_pair(lab, connect_extra=["--udp-max-flows", "10"], listen_extra=["--udp-max-flows", "10"])
    for batch in range(3):
        many = tool(lab, f"10 udp clients, batch {batch}", ["many", "--port", str(LISTEN_PORT), "--clients", "10",
                                                            "--rounds", "2", "--timeout", str(int(scaled(30)))])
        done = many.wait_event("done", scaled(45), what=f"batch {batch}'s replies")
        lab.check(done["complete"] == 10 and done["misdelivered"] == 0, f"batch {batch}: {done}")
    lab.wait_for(lambda: len([e for e in echo.events() if e.get("event") == "source"]) == 30, scaled(5),
                 "30 distinct sources at the echo server")
    # Stats come once a second: wait for one taken after the last batch.
    lab.wait_for(lambda: (udp_stats(li) or {}).get("received", 0) >= 60 and (udp_stats(c) or {}).get("sent", 0) >= 60,
                 scaled(5), "stats after the last batch", fail_if=alive(c, li))
    for p in (li, c):
        st = udp_stats(p)
        lab.check(st["flows"] == 10, f"{p.name}: {st['flows']} flows live, the limit is 10")
        peaks = [e["udp"]["flows"] for e in json_lines(p) if e.get("event") == "stats" and e.get("udp")]
        lab.check(max(peaks) <= 10, f"{p.name}: up to {max(peaks)} flows, the limit is 10")


@pytest.mark.deadline(120)
@pytest.mark.parametrize("gen,cons", [
    pytest.param(["listen-udp", str(LISTEN_PORT)], ["connect", f"127.0.0.1:{TARGET_PORT}"], id="listen-udp-with-connect"),
    pytest.param(["connect-udp", f"127.0.0.1:{TARGET_PORT}"], ["listen", str(LISTEN_PORT)], id="connect-udp-with-listen"),
    pytest.param(["listen-udp", str(LISTEN_PORT)], ["stdio-a"], id="listen-udp-with-stdio-a"),
    pytest.param(["listen-udp", str(LISTEN_PORT)], ["listen-udp", str(LISTEN_PORT + 1)], id="both-listen-udp"),
])
def test_udp_mismatched_modes_fail_on_both_sides(lab, gen, cons):
    g, c, _ = lab.start_pair(f"peersock {gen[0]}", gen, f"peersock {cons[0]}", cons)
    for p, other in ((g, c), (c, g)):
        rc = p.wait_exit(scaled(30), what="a mismatched pairing ends")
        lab.check(rc == EXIT_USAGE, f"{p.name}: exit status {rc}, expected {EXIT_USAGE}")
        errors = [l for l in p.lines() if l.startswith("peersock: ")]
        lab.check(len(errors) == 1 and "the other side must run" in errors[0], f"{p.name}: {p.lines()}")
        lab.check(not p.find("authenticated"), f"{p.name} authenticated before refusing")


@pytest.mark.deadline(120)
@pytest.mark.parametrize("older", ["connect", "listen"])
def test_udp_with_a_peer_below_protocol_5_exits_8_on_both_sides(lab, older):
    echo_server(lab)
    env = {"PEERSOCK_PROTOCOL": "4"}
    c, li = start_udp_pair(lab, connect_env=env if older == "connect" else None,
                           listen_env=env if older == "listen" else None, wait_auth=False)
    for p in (c, li):
        rc = p.wait_exit(scaled(40), what="the version check")
        lab.check(rc == EXIT_PROTOCOL, f"{p.name}: exit status {rc}, expected {EXIT_PROTOCOL}")
        fatal = [e for e in json_lines(p) if e.get("event") == "error"]
        lab.check(fatal and "version 5" in fatal[-1].get("message", ""), f"{p.name}: {p.lines()}")


@pytest.mark.deadline(120)
def test_udp_dig_through_the_tunnel_against_dnsmasq(lab):
    for tool_name in ("dnsmasq", "dig"):
        if not shutil.which(tool_name):
            pytest.fail(f"{tool_name} not found (scripts/setup.sh installs dnsmasq-base and bind9-dnsutils)",
                        pytrace=False)
    dns = lab.start("dnsmasq", ["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--no-resolv", "--no-hosts",
                                "--conf-file=/dev/null", "--pid-file=", "--user=root", "--bind-interfaces",
                                "--listen-address=127.0.0.1", f"--port={TARGET_PORT}",
                                "--address=/tunnel.peersock.test/10.11.12.13", "--log-queries"])
    dns.wait_line(r"started, version", scaled(15), what="dnsmasq to start")
    c, li = start_udp_pair(lab)
    dig = lab.start("dig", ["dig", "+short", "+tries=3", "+time=2", "-p", str(LISTEN_PORT), "@127.0.0.1",
                            "tunnel.peersock.test", "A"], stdout="lines")
    rc = dig.wait_exit(scaled(30), what="dig through the tunnel")
    answer = dig.lines("stdout")
    lab.check(rc == 0 and answer == ["10.11.12.13"], f"dig exited {rc} with {answer}")
    lab.check(dns.find("query\\[A\\] tunnel.peersock.test from 127.0.0.1"), "dnsmasq did not log the query")


@pytest.mark.deadline(60)
def test_listen_udp_port_in_use_fails_before_a_code(lab):
    tool(lab, "udp echo on the port", ["echo", "--port", str(LISTEN_PORT), "--timeout", str(int(scaled(50)))]) \
        .wait_event("listening", scaled(15), what="the port to be taken")
    p = lab.peersock("peersock listen-udp", ["listen-udp", str(LISTEN_PORT)])
    rc = p.wait_exit(scaled(20), what="listen-udp on a port in use")
    lab.check(rc == EXIT_LOCAL_SOCKET, f"exit status {rc}, expected {EXIT_LOCAL_SOCKET}")
    errors = [l for l in p.lines() if l.startswith("peersock: ")]
    lab.check(len(errors) == 1 and "cannot listen on" in errors[0] and "in use" in errors[0], f"stderr: {p.lines()}")
    lab.check(not p.find("Connection code"), "a code was shown although the port could not be bound")


@pytest.mark.deadline(120)
@pytest.mark.parametrize("generator", ["ours", "original"], ids=["peersock-generates", "original-generates"])
def test_udp_with_the_original_peersock_exits_8(lab, generator):
    """The original (psk-attacker original, protocol v1) says nothing about
    its mode: the pairing passes, and the version ends it after SMP."""
    from test_original import start_pair as original_pair
    ours, orig = original_pair(lab, ["listen-udp", str(LISTEN_PORT)], ["connect", f"127.0.0.1:{TARGET_PORT}"],
                               generator, scaled(60))
    rc = ours.wait_exit(scaled(60), what="the version check against the original")
    lab.check(rc == EXIT_PROTOCOL, f"{ours.name}: exit status {rc}, expected {EXIT_PROTOCOL}")
    errors = [l for l in ours.lines() if l.startswith("peersock: ")]
    lab.check(len(errors) == 1 and "cannot forward UDP" in errors[0] and "the original peersock" in errors[0],
              f"{ours.name}: {ours.lines()}")
    lab.check(not ours.find("forwarding UDP datagrams"), f"{ours.name} started forwarding: {ours.lines()}")
