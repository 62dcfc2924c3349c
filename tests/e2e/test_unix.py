"""listen-unix and connect-unix: every pairing with the TCP modes, the path's
life cycle (stale socket replaced, removed at exit), and bad paths."""
import os
import socket
import stat

import pytest

from lab import (AUTH_RE, EXIT_LOCAL_SOCKET, EXIT_USAGE, LISTEN_PORT, TARGET_PORT, check_same, scaled)

NBYTES = 4 << 20


@pytest.mark.deadline(240)
@pytest.mark.parametrize("opener,acceptor", [
    pytest.param("listen-unix", "connect-unix", id="listen-unix-to-connect-unix"),
    pytest.param("listen-unix", "connect", id="listen-unix-to-connect"),
    pytest.param("listen", "connect-unix", id="listen-to-connect-unix"),
])
def test_unix_pairings(lab, opener, acceptor):
    lpath = os.path.join(lab.tmpdir, "in.sock")
    tpath = os.path.join(lab.tmpdir, "target.sock")
    where = ["--unix", tpath] if acceptor == "connect-unix" else ["--port", str(TARGET_PORT)]
    server = lab.helper("target server", ["server", *where, "--bytes", str(NBYTES), "--seed", "41", "--once",
                                          "--timeout", str(int(scaled(200)))])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    acc_args = ["connect-unix", tpath] if acceptor == "connect-unix" else ["connect", f"127.0.0.1:{TARGET_PORT}"]
    opn_args = ["listen-unix", lpath] if opener == "listen-unix" else ["listen", str(LISTEN_PORT)]
    acc, opn, _ = lab.start_pair(f"peersock {acceptor}", acc_args, f"peersock {opener}", opn_args)
    for p in (acc, opn):
        p.wait_line(AUTH_RE, scaled(60), what="the 'authenticated' line")
    if opener == "listen-unix":
        lab.check(stat.S_ISSOCK(os.lstat(lpath).st_mode), f"{lpath} is not a socket")
    cwhere = ["--unix", lpath] if opener == "listen-unix" else ["--port", str(LISTEN_PORT)]
    client = lab.helper("client", ["client", *cwhere, "--bytes", str(NBYTES), "--seed", "42",
                                   "--timeout", str(int(scaled(200)))])

    def alive():
        for p in (acc, opn):
            if p.returncode is not None:
                return f"{p.name} exited with status {p.returncode}"
    c = lab.wait_for(lambda: client.event("done") or client.event("timeout"), scaled(150), "the client", fail_if=alive)
    s = lab.wait_for(lambda: server.event("done") or server.event("timeout"), scaled(150), "the server", fail_if=alive)
    check_same(lab, "client", c, "server", s, NBYTES)
    if opener == "listen-unix":
        opn.stop()
        lab.check(not os.path.exists(lpath), f"{lpath} still exists after listen-unix ended")


@pytest.mark.deadline(120)
def test_listen_unix_refuses_a_regular_file(ns_lab):
    path = os.path.join(ns_lab.tmpdir, "precious.txt")
    with open(path, "w") as f:
        f.write("keep me\n")
    p = ns_lab.peersock("peersock listen-unix", ["listen-unix", path])
    rc = p.wait_exit(scaled(20))
    ns_lab.check(rc == EXIT_LOCAL_SOCKET, f"exit status {rc}, expected {EXIT_LOCAL_SOCKET}")
    lines = [l for l in p.lines() if l.startswith("peersock: ")]
    ns_lab.check(len(lines) == 1 and "not a socket" in lines[0] and path in lines[0], f"stderr: {p.lines()}")
    with open(path) as f:
        ns_lab.check(f.read() == "keep me\n", "the file was changed")


@pytest.mark.deadline(120)
def test_listen_unix_refuses_a_live_socket_and_replaces_a_stale_one(lab):
    path = os.path.join(lab.tmpdir, "s.sock")
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(1)
    p = lab.peersock("peersock listen-unix (live)", ["listen-unix", path])
    rc = p.wait_exit(scaled(20))
    lab.check(rc == EXIT_LOCAL_SOCKET and "another program is listening" in p.text(),
              f"exit {rc}, stderr {p.lines()}")
    live.close()  # the socket file stays behind: stale
    lab.check(os.path.exists(path), "the stale socket file should still exist")
    p2 = lab.peersock("peersock listen-unix (stale)", ["listen-unix", path])
    p2.wait_line(r"Connection code: ", scaled(20))
    lab.check(p2.returncode is None, "listen-unix should replace a stale socket")
    p2.stop()
    lab.check(not os.path.exists(path), "the socket path should be removed at exit")


@pytest.mark.deadline(60)
@pytest.mark.parametrize("cmd", ["listen-unix", "connect-unix"])
def test_unix_path_too_long_is_usage_error(ns_lab, cmd):
    path = "/tmp/" + "x" * 200
    p = ns_lab.peersock(f"peersock {cmd}", [cmd, path])
    rc = p.wait_exit(scaled(20))
    ns_lab.check(rc == EXIT_USAGE, f"exit status {rc}, expected {EXIT_USAGE}")
    lines = [l for l in p.lines() if l.startswith("peersock: ")]
    ns_lab.check(len(lines) == 1 and "too long" in lines[0], f"stderr: {p.lines()}")


@pytest.mark.deadline(120)
def test_connect_unix_missing_target_resets_only_that_connection(lab):
    missing = os.path.join(lab.tmpdir, "nobody-here.sock")
    acc, opn, _ = lab.start_pair("peersock connect-unix", ["connect-unix", missing],
                                 "peersock listen", ["listen", str(LISTEN_PORT)])
    for p in (acc, opn):
        p.wait_line(AUTH_RE, scaled(60), what="the 'authenticated' line")
    client = lab.helper("client", ["client", "--port", str(LISTEN_PORT), "--bytes", "1000",
                                   "--timeout", str(int(scaled(60)))])
    c = lab.wait_for(lambda: client.event("done") or client.event("timeout"), scaled(60), "the client to be refused")
    lab.check(c["event"] == "done" and c["recv"] == 0, f"client: {c}")
    acc.wait_line(r"^peersock: cannot connect to .*nobody-here\.sock", scaled(20), what="the connect error line")
    # ...and on the side where the client runs, as ssh -L says "open failed".
    opn.wait_line(r"^peersock: the other side could not connect to .*nobody-here\.sock: ", scaled(20),
                  what="the opener's line for the refused target")
    lab.check(acc.returncode is None and opn.returncode is None, "the tunnel should stay up for the next connection")
