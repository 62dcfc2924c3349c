"""The data plane under load: many connections through one tunnel, a stalled
reader next to a busy one, half-close in both directions, resets, and stdin
EOF with lots of data still in flight.

Sizes scale with PEERSOCK_E2E_MANY_MIB (total per direction of the
many-connections test, default PEERSOCK_E2E_BIG_MIB) and PEERSOCK_E2E_BIG_MIB.
"""
import os
import signal
import subprocess
import time

import pytest

import lab as e2e

from lab import (AUTH_RE, EXIT_PEER_GONE, LISTEN_PORT, TARGET_PORT, PYTHON, HELPER, Pump, big_bytes, check_same, mib, scaled)


def many_bytes():
    v = os.environ.get("PEERSOCK_E2E_MANY_MIB")
    return int(float(v) * (1 << 20)) if v else big_bytes()


def start_tunnel(lab, acceptor_args=None, opener_args=None, acceptor_env=None, opener_env=None):
    """connect (generates the code) <-> listen; returns (connect, listen) once
    both have authenticated."""
    acc, opn, _ = lab.start_pair("peersock connect", acceptor_args or ["connect", f"127.0.0.1:{TARGET_PORT}"],
                                 "peersock listen", opener_args or ["listen", str(LISTEN_PORT)],
                                 gen_env=acceptor_env, cons_env=opener_env)
    for p in (acc, opn):
        p.wait_line(AUTH_RE, scaled(60), what="the 'authenticated' line")
    return acc, opn


def peers_alive(*peers):
    def problem():
        for p in peers:
            if p.returncode is not None:
                return f"{p.name} exited with status {p.returncode}"
        return None
    return problem


def match_many(lab, client, server, count):
    """Every connection's bytes, both ways: the client's and the server's view
    of the same connection (by index) agree, and nothing failed."""
    summary = client.event("summary")
    lab.check(summary is not None, "the many-connections client printed no summary")
    lab.check(summary["failed_count"] == 0, f"connections failed: {summary['failed']}")
    cl = {e["index"]: e for e in client.events() if e.get("event") == "conn"}
    sv = {e["index"]: e for e in server.events() if e.get("event") == "conn"}
    lab.check(len(cl) == count, f"client finished {len(cl)} of {count} connections")
    lab.check(len(sv) == count, f"server finished {len(sv)} of {count} connections")
    for i in range(count):
        c, s = cl[i], sv[i]
        lab.check(c["sent"] == c["up_bytes"] and s["recv"] == c["up_bytes"] and s["recv_sha256"] == c["sent_sha256"],
                  f"connection {i} upstream: client sent {c['sent']}/{c['up_bytes']} bytes, server received "
                  f"{s['recv']} (sha256 {'equal' if s['recv_sha256'] == c['sent_sha256'] else 'DIFFERENT'})")
        lab.check(s["sent"] == c["down_bytes"] and c["recv"] == c["down_bytes"] and c["recv_sha256"] == s["sent_sha256"],
                  f"connection {i} downstream: server sent {s['sent']}/{c['down_bytes']} bytes, client received "
                  f"{c['recv']} (sha256 {'equal' if c['recv_sha256'] == s['sent_sha256'] else 'DIFFERENT'})")
    return summary


def run_many(lab, count, total, *, server_args, client_args, acceptor_args=None, opener_args=None):
    server = lab.helper("many server", ["mserver", *server_args, "--timeout", str(int(scaled(600)))])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    acc, opn = start_tunnel(lab, acceptor_args, opener_args)
    deadline = scaled(90 + 4 * 2 * total / (1 << 20))
    lab.note(f"{count} connections, {mib(total)} in all each way, deadline {deadline:.0f}s")
    client = lab.helper("many client", ["mclient", *client_args, "--count", str(count), "--total-bytes", str(total),
                                        "--timeout", str(int(deadline))])
    try:
        lab.wait_for(lambda: client.event("summary") or client.event("timeout"), deadline,
                     f"{count} connections to finish", fail_if=peers_alive(acc, opn))
    except e2e.LabError:
        # A stall: ask both peers for their per-connection state (SIGUSR1),
        # so that the report shows where the bytes stopped.
        for p in (acc, opn):
            if p.returncode is None:
                p.signal(signal.SIGUSR1)
        for p in (acc, opn):
            try:
                p.wait_line(r"peersock: state: protocol", 5, what="the SIGUSR1 state dump")
            except e2e.LabError:
                pass
        # A new report, so that it includes the dumps.
        lab.fail(f"{count} connections did not finish within {deadline:.0f}s (state dumps in the peers' stderr)")
    # The client can be done before the server has read its last bytes.
    lab.wait_for(lambda: sum(1 for e in server.events() if e.get("event") in ("conn", "conn_failed")) >= count,
                 scaled(60), f"the server to finish all {count} connections", fail_if=peers_alive(acc, opn))
    summary = match_many(lab, client, server, count)
    lab.check(acc.returncode is None and opn.returncode is None, "a peer exited; both must keep serving")
    return summary


@pytest.mark.deadline(900)
def test_200_concurrent_connections_random_sizes(lab):
    run_many(lab, 200, many_bytes(), server_args=["--port", str(TARGET_PORT)],
             client_args=["--port", str(LISTEN_PORT), "--max-bytes", str(8 << 20)])


# ---- many connections held open at once -------------------------------------

def start_holding(lab, count):
    """An echo server behind connect, a tunnel, and a client that opens
    `count` connections through listen and keeps every one open."""
    server = lab.helper("echo server", ["echo", "--port", str(TARGET_PORT), "--timeout", str(int(scaled(500)))])
    server.wait_event("listening", scaled(15), what="the echo server to listen")
    acc, opn = start_tunnel(lab)
    client = lab.start("holding client", [PYTHON, "-u", str(HELPER), "hold", "--port", str(LISTEN_PORT),
                                          "--count", str(count), "--timeout", str(int(scaled(500)))],
                       stdin=subprocess.PIPE)
    return acc, opn, client


def tell(proc, line):
    proc.proc.stdin.write(line.encode() + b"\n")
    proc.proc.stdin.flush()


@pytest.mark.deadline(300)
def test_1000_connections_carried_at_once(lab):
    """1000 connections open at the same time each get their echo while all
    of them stay open: the peer's stream limit leaves room for all, and
    none waits for another to end."""
    acc, opn, client = start_holding(lab, 1000)
    lab.wait_for(lambda: client.event("all_echoed"), scaled(120), "all 1000 held connections to get their echo",
                 fail_if=peers_alive(acc, opn))
    lab.check(client.event("conn_failed") is None, f"a connection failed: {client.event('conn_failed')}")
    lab.check(client.event("all_echoed")["echoed"] == 1000, f"echoes: {client.event('all_echoed')}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.deadline(300)
def test_out_of_descriptors_waits_without_spinning(lab):
    """The listening side runs out of file descriptors (its limit lowered to
    150 while it runs): it says so once, keeps its last 32 free, does not
    spin on its readable listener, and carries the waiting connections once
    others end."""
    acc, opn, client = start_holding(lab, 0)  # the tunnel first; the client below
    client.stop()
    with open(f"/proc/{opn.pid}/comm") as f:
        lab.check(f.read().strip() == "peersock", "the listen process is not peersock itself")
    subprocess.run(["prlimit", "--pid", str(opn.pid), "--nofile=150:150"], check=True)
    client = lab.start("holding client", [PYTHON, "-u", str(HELPER), "hold", "--port", str(LISTEN_PORT),
                                          "--count", "300", "--timeout", str(int(scaled(500)))],
                       stdin=subprocess.PIPE)
    opn.wait_line(r"running out of file descriptors", scaled(60), what="the out-of-descriptors warning")
    client.wait_event("echoed", scaled(60), what="the first 100 echoes")
    before = cpu_seconds(opn.pid)
    window = 2.0
    time.sleep(window)  # a measurement window, not a wait for an event
    used = cpu_seconds(opn.pid) - before
    lab.check(used < 0.5 * window, f"the listen side used {used:.2f} CPU-s in {window:.0f} s while out of descriptors")
    lab.check(client.event("all_echoed") is None, "every connection was carried although descriptors ran out")
    in_use = len(os.listdir(f"/proc/{opn.pid}/fd"))
    lab.check(in_use <= 150 - 30, f"the listen side holds {in_use} of its 150 descriptors: none kept in reserve")
    lab.check(sum("running out of file descriptors" in l for l in opn.lines()) == 1, "the warning is not given exactly once")
    tell(client, "close 200")
    lab.wait_for(lambda: client.event("all_echoed"), scaled(60), "the waiting connections to be carried",
                 fail_if=peers_alive(acc, opn))
    lab.check(acc.returncode is None and opn.returncode is None, "a peer exited")


# ---- one slow reader next to a fast one ------------------------------------

SLOW_BYTES = 32 << 20  # well above every buffer between the stalled reader and the server


@pytest.mark.deadline(400)
@pytest.mark.parametrize("older", [None, "opener", "acceptor"])
def test_slow_reader_does_not_stall_another_connection(lab, older):
    """A client that reads nothing holds its own stream back (the server's
    sending is slowed through our per-stream credit and TCP), while a second
    connection through the same tunnel runs to completion. Then the slow
    reader reads, and gets every byte.

    older: one side announces protocol 2 (PEERSOCK_PROTOCOL=2), as a peersock
    from before per-stream credit. Both then speak v2, in which a stalled
    stream can hold up the others (OpenSSL charges its unread bytes to the
    connection window): that run only requires that every byte of both
    connections arrives once the slow reader reads."""
    v2 = {"PEERSOCK_PROTOCOL": "2"}
    server = lab.helper("target server", ["server", "--port", str(TARGET_PORT), "--bytes", str(SLOW_BYTES),
                                          "--seed", "11", "--timeout", str(int(scaled(500)))])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    acc, opn = start_tunnel(lab, acceptor_env=v2 if older == "acceptor" else None,
                            opener_env=v2 if older == "opener" else None)
    alive = peers_alive(acc, opn)
    slow = lab.start("slow client", [PYTHON, "-u", str(HELPER), "client", "--port", str(LISTEN_PORT), "--bytes", "0",
                                     "--pause-read", "--timeout", str(int(scaled(500)))], stdin=subprocess.PIPE)
    slow.wait_event("connected", scaled(30), what="the slow client to connect")
    lab.wait_for(lambda: server.event("accepted"), scaled(30), "the slow client's connection to reach the server",
                 fail_if=alive)
    fast = lab.helper("fast client", ["client", "--port", str(LISTEN_PORT), "--bytes", str(SLOW_BYTES), "--seed", "12",
                                      "--timeout", str(int(scaled(400)))])
    if older is None:
        # 32 MiB each way take seconds here; a stall shows as the deadline.
        fast_done = lab.wait_for(lambda: fast.event("done") or fast.event("timeout"), scaled(30),
                                 "the fast connection to finish while the other one is stalled", fail_if=alive)
        lab.check(fast_done["event"] == "done", f"fast client: {fast_done}")
        # The server may log its end of the fast connection a moment later.
        lab.wait_for(lambda: [e for e in server.events() if e.get("event") == "done" and e["index"] == 2],
                     scaled(30), "the server to finish the fast connection", fail_if=alive)
        done = [e for e in server.events() if e.get("event") == "done"]
        lab.check(len(done) == 1 and done[0]["index"] == 2,
                  f"when the fast connection ended, the server should have finished only that one, not the stalled "
                  f"one (its {mib(SLOW_BYTES)} cannot all be buffered): {done}")
    else:
        # v2 may stall: let the slow reader read once the fast one is well under way.
        lab.wait_for(lambda: fast.event("connected"), scaled(30), "the fast client to connect", fail_if=alive)
    # Now let the slow reader read.
    slow.proc.stdin.write(b"go\n")
    slow.proc.stdin.flush()
    if older is not None:
        fast_done = lab.wait_for(lambda: fast.event("done") or fast.event("timeout"), scaled(120),
                                 "the fast connection to finish", fail_if=alive)
        lab.check(fast_done["event"] == "done", f"fast client: {fast_done}")
    fdone = lab.wait_for(lambda: [e for e in server.events() if e.get("event") == "done" and e["index"] == 2],
                         scaled(60), "the server to finish the fast connection")[0]
    lab.check(fdone["recv"] == SLOW_BYTES and fdone["recv_sha256"] == fast_done["sent_sha256"]
              and fast_done["recv"] == SLOW_BYTES and fast_done["recv_sha256"] == fdone["sent_sha256"],
              f"fast connection data differs: server {fdone}, client {fast_done}")
    slow_done = lab.wait_for(lambda: slow.event("done") or slow.event("timeout"), scaled(300),
                             "the slow reader to get everything", fail_if=alive)
    lab.check(slow_done["event"] == "done", f"slow client: {slow_done}")
    sdone = lab.wait_for(lambda: [e for e in server.events() if e.get("event") == "done" and e["index"] == 1],
                         scaled(60), "the server to finish the slow connection")[0]
    lab.check(slow_done["recv"] == SLOW_BYTES and slow_done["recv_sha256"] == sdone["sent_sha256"],
              f"slow connection: received {slow_done['recv']} of {SLOW_BYTES}, sha256 "
              f"{'equal' if slow_done['recv_sha256'] == sdone['sent_sha256'] else 'DIFFERENT'}")


# ---- half-close and reset over listen/connect ---------------------------------

HALF_BYTES = 4 << 20


def one_connection(lab, server_args, client_args, what):
    server = lab.helper("target server", ["server", "--port", str(TARGET_PORT), "--once",
                                          "--timeout", str(int(scaled(300))), *server_args])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    acc, opn = start_tunnel(lab)
    client = lab.helper("tcp client", ["client", "--port", str(LISTEN_PORT), "--timeout", str(int(scaled(300))),
                                       *client_args])
    alive = peers_alive(acc, opn)
    c = lab.wait_for(lambda: client.event("done") or client.event("timeout"), scaled(240), f"the client ({what})",
                     fail_if=alive)
    s = lab.wait_for(lambda: server.event("done") or server.event("timeout"), scaled(240), f"the server ({what})",
                     fail_if=alive)
    lab.check(c["event"] == "done" and s["event"] == "done", f"{what}: client {c}, server {s}")
    lab.check(acc.returncode is None and opn.returncode is None, "a peer exited; both must keep serving")
    return c, s


@pytest.mark.deadline(300)
@pytest.mark.parametrize("first", ["client", "server"])
def test_half_close_other_direction_keeps_flowing(lab, first):
    """One side sends everything and half-closes; only after seeing EOF does
    the other side start sending. Its data must still arrive in full, and its
    own half-close must arrive as EOF."""
    later = ["--after-eof"]
    c, s = one_connection(lab, ["--bytes", str(HALF_BYTES), "--seed", "21", *(later if first == "client" else [])],
                          ["--bytes", str(HALF_BYTES), "--seed", "22", *(later if first == "server" else [])],
                          f"{first} half-closes first")
    check_same(lab, "client", c, "server", s, HALF_BYTES)


@pytest.mark.deadline(300)
@pytest.mark.parametrize("who", ["client", "server"])
def test_reset_reaches_the_other_side(lab, who):
    """An RST on one side's TCP connection resets the QUIC stream, and the
    other side's connection is reset too (not closed with a clean EOF).

    The other side only reads (it sends nothing): with a second thread
    sending, Linux would hand the one ECONNRESET to whichever call comes
    first, and the reader might then see a plain EOF."""
    big = 64 << 20
    cut = 1 << 20
    resetting = ["--bytes", str(big), "--reset-after", str(cut)]
    quiet = ["--bytes", "0"]
    c, s = one_connection(lab, resetting if who == "server" else quiet,
                          resetting if who == "client" else quiet, f"{who} resets")
    other_name, other = ("server", s) if who == "client" else ("client", c)
    lab.check("reset" in str(other.get("recv_error")).lower(),
              f"the {other_name}'s connection should end with a reset, not a clean EOF: {other}")
    lab.check(other["recv"] <= cut, f"the {other_name} received {other['recv']} bytes, more than the {cut} sent")


# ---- stdio: stdin EOF with lots of data in flight ----------------------------

def stdin_eof_bytes():
    return big_bytes() * 100 // 64  # 100 MiB at the default PEERSOCK_E2E_BIG_MIB=64


@pytest.mark.deadline(600)
@pytest.mark.parametrize("sender", ["stdio-b", "stdio-a"])
def test_stdin_eof_with_data_in_flight(lab, sender):
    """One side pipes N bytes into stdin and closes it at once; the other
    sends nothing. The receiver gets all N bytes and both exit 0: stdin EOF is
    a FIN that travels behind the data, never a cut-off tail."""
    n = stdin_eof_bytes()
    gen, cons, _ = lab.start_pair("peersock stdio-a", ["stdio-a"], "peersock stdio-b", ["stdio-b"],
                                  gen_stdio=True, cons_stdio=True)
    by_name = {"stdio-a": gen, "stdio-b": cons}
    snd, rcv = by_name[sender], by_name["stdio-a" if sender == "stdio-b" else "stdio-b"]
    ps, pr = Pump(snd, n, 31), Pump(rcv, 0, 32)
    deadline = scaled(60 + 3 * n / (1 << 20))
    rs, rr = ps.wait(deadline), pr.wait(deadline)
    lab.check(rs["sent"] == n and rs["send_error"] is None, f"{sender}: wrote {rs['sent']} of {n} bytes: {rs}")
    lab.check(rr["recv"] == n and rr["recv_sha256"] == rs["sent_sha256"],
              f"receiver got {rr['recv']} of {n} bytes, sha256 {'equal' if rr['recv_sha256'] == rs['sent_sha256'] else 'DIFFERENT'}")
    lab.check(rs["recv"] == 0, f"{sender} received {rs['recv']} bytes, expected none")
    for p in (gen, cons):
        rc = p.wait_exit(scaled(30), what="stdio must exit once both directions are finished")
        lab.check(rc == 0, f"{p.name} exited with status {rc}, expected 0")


@pytest.mark.deadline(300)
def test_stdio_reports_a_reset_stream_instead_of_exiting_0(lab):
    """stdio-b <-> connect, and the target resets its TCP connection after
    1 MiB of a larger transfer. stdio-b's output is then incomplete: it must
    say so and exit 5 (peer gone), never exit 0 as if everything arrived."""
    big, cut = 16 << 20, 1 << 20
    server = lab.helper("target server", ["server", "--port", str(TARGET_PORT), "--once", "--bytes", str(big),
                                          "--reset-after", str(cut), "--timeout", str(int(scaled(120)))])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    acc, opn, _ = lab.start_pair("peersock connect", ["connect", f"127.0.0.1:{TARGET_PORT}"],
                                 "peersock stdio-b", ["stdio-b"], cons_stdio=True)
    pump = Pump(opn, 0, 41)
    rc = opn.wait_exit(scaled(60), what="stdio-b to end after the target's reset")
    result = pump.wait(scaled(30))
    lab.check(result["recv"] < big, f"stdio-b wrote {result['recv']} bytes, the target sent at most {cut}")
    lab.check(rc == EXIT_PEER_GONE, f"stdio-b exited with status {rc}, expected {EXIT_PEER_GONE} (peer gone)")
    lab.check(any(line.startswith("peersock: ") and "reset" in line for line in opn.lines()),
              "stdio-b printed no 'peersock: ... reset ...' line")


# ---- an interrupted peer -----------------------------------------------------

INTERRUPT_BYTES = 64 << 20


@pytest.mark.deadline(120)
def test_interrupted_peer_resets_open_connections(lab):
    """Ctrl-C on `connect` while a download runs through the tunnel: the
    `listen` side must not pass the cut-short transfer off as a clean end. It
    says the other side was interrupted with 1 connection open, resets that
    local connection (the client sees a reset, not EOF) and exits 5; the
    interrupted side exits 130."""
    server = lab.helper("target server", ["server", "--port", str(TARGET_PORT), "--bytes", str(INTERRUPT_BYTES),
                                          "--seed", "21", "--timeout", str(int(scaled(100)))])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    acc, opn = start_tunnel(lab)
    client = lab.start("client", [PYTHON, "-u", str(HELPER), "client", "--port", str(LISTEN_PORT), "--bytes", "0",
                                  "--pause-read", "--timeout", str(int(scaled(100)))], stdin=subprocess.PIPE)
    client.wait_event("connected", scaled(30), what="the client to connect")
    lab.wait_for(lambda: server.event("accepted"), scaled(30), "the connection to reach the server",
                 fail_if=peers_alive(acc, opn))
    acc.signal(signal.SIGINT)
    lab.check(acc.wait_exit(scaled(15), what="Ctrl-C") == 130, "the interrupted side did not exit 130")
    rc = opn.wait_exit(scaled(15), what="the other side must end once told of the interruption")
    lab.check(rc == 5, f"the listen side exited with {rc}, expected 5 (peer gone)")
    lab.check(opn.find(r"the other side was interrupted \(Ctrl-C\) with 1 connection open") is not None,
              "the listen side did not say the other side was interrupted with 1 connection open")
    client.proc.stdin.write(b"go\n")
    client.proc.stdin.flush()
    done = lab.wait_for(lambda: client.event("done") or client.event("timeout"), scaled(30), "the client to end")
    lab.check(done["event"] == "done" and done["recv"] < INTERRUPT_BYTES and done.get("recv_error")
              and "Reset" in done["recv_error"],
              f"the client should see a reset of a cut-short download, not a clean end: {done}")


@pytest.mark.deadline(90)
def test_refused_target_is_reported_where_the_client_runs(lab):
    """Nothing listens behind `connect`: the client through `listen` is
    refused (its connection reset), and both sides say why in one line --
    the `listen` side with the other side's target and error."""
    acc, opn = start_tunnel(lab)  # nothing listens on TARGET_PORT
    client = lab.helper("client", ["client", "--port", str(LISTEN_PORT), "--bytes", "1000",
                                   "--timeout", str(int(scaled(60)))])
    c = lab.wait_for(lambda: client.event("done") or client.event("timeout"), scaled(60), "the client to be refused",
                     fail_if=peers_alive(acc, opn))
    lab.check(c["event"] == "done" and c["recv"] == 0, f"client: {c}")
    acc.wait_line(rf"^peersock: cannot connect to 127\.0\.0\.1:{TARGET_PORT}: ", scaled(20),
                  what="the connect side's error line")
    m = opn.wait_line(rf"^peersock: the other side could not connect to 127\.0\.0\.1:{TARGET_PORT}: (.+)$",
                      scaled(20), what="the listen side's line for the refused target")
    lab.check("refused" in m.group(1).lower(), f"the reason does not say refused: {m.group(0)!r}")
    lab.check(acc.returncode is None and opn.returncode is None, "the tunnel should stay up for the next connection")
