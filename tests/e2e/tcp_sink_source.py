#!/usr/bin/python3
"""TCP data source and sink for the peersock end-to-end tests (stdlib only).

Runs inside a test's network namespace (`ip netns exec NS /usr/bin/python3 ...`).
Every mode prints one JSON object per line on stdout (flushed), so the test can
wait for events with deadlines:

  server    --port P [--bind A] [--bytes N] [--seed S] [--once] [--timeout T]
            listens, prints {"event":"listening"}; for each connection prints
            {"event":"accepted"} then, after the transfer, {"event":"done",...}.
            With --once it exits after the first connection's transfer.
  client    --port P [--host A] [--bytes N] [--seed S] [--connect-timeout T] [--timeout T]
            connects (retrying while refused, until the connect deadline), prints
            {"event":"connected"}, transfers, prints {"event":"done",...}.
  wait-port --port P [--host A] [--timeout T]
            exits 0 as soon as a TCP connect to the port succeeds, 1 at the deadline.
  mserver   --port P | --unix PATH [--timeout T]
            many-connection server: each connection starts with a header naming
            how many bytes (and which seed) to send back; prints one
            {"event":"conn",...} per finished connection.
  mclient   --port P | --unix PATH --count N --total-bytes T [--max-bytes M] [--seed S]
            opens N connections at once, in random order, each with its own
            random sizes (<= M each way, about T in all per direction) and
            seeds; prints one {"event":"conn",...} per connection and a final
            {"event":"summary",...}.
  echo      --port P [--bind A] [--timeout T]
            echoes every connection's bytes back (one thread, selectors), for
            as many connections as arrive; prints {"event":"listening"}.
  hold      --port P --count N [--host A] [--timeout T]
            opens N connections one after another and keeps them all open;
            sends each its 8-byte index and waits for it to come back; prints
            {"event":"echoed","count":K} each time K reaches a multiple of
            100, and {"event":"all_echoed",...} when no open connection waits
            for its echo any more. A line "close K" on stdin closes the next K
            connections, oldest first; EOF on stdin closes all and exits.

server/client options: --unix PATH (instead of TCP), --after-eof (read to EOF
first, only then send: proves the half-closed direction still works),
--reset-after N (after sending N bytes, close with RST), --pause-read (read
nothing until a line arrives on stdin), --expect N (no half-close, for a
tunnel to the original peersock, which has none: send without the final
shutdown, read until N bytes arrived, print "done", and close only when a
line arrives on stdin or stdin ends; server: with --once).

A transfer sends N pseudo-random bytes generated from SEED while reading
everything the other end sends, at the same time. After the last byte it
half-closes (shutdown SHUT_WR) and keeps reading until EOF. The "done" event
carries byte counts and SHA-256 of what was sent and what was received, plus any
send/receive error. A watchdog prints {"event":"timeout",...} and exits 3 when
--timeout expires, so the helper never hangs.
"""
import argparse
import hashlib
import json
import os
import random
import resource
import selectors
import socket
import struct
import sys
import threading
import time

CHUNK = 1 << 20

_print_lock = threading.Lock()


def emit(event, **fields):
    fields = {"event": event, **fields}
    with _print_lock:
        sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
        sys.stdout.flush()


def chunks(seed, total, chunk=CHUNK):
    """Deterministic pseudo-random data: yields bytes objects adding up to total."""
    rng = random.Random(seed)
    left = total
    while left > 0:
        n = min(chunk, left)
        yield rng.randbytes(n)
        left -= n


def expected_sha256(seed, total):
    h = hashlib.sha256()
    for c in chunks(seed, total):
        h.update(c)
    return h.hexdigest()


def abortive_close(sock):
    """Close with an RST instead of a FIN (SO_LINGER with a zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Transfer:
    """Full-duplex transfer on a connected socket; counters are readable live.

    after_eof: receive until EOF first, then send (the half-closed connection
    must still carry the other direction). reset_after: after sending that many
    bytes, close abortively (RST). pause: an Event the receiver waits for
    before reading anything (a stalled reader)."""

    def __init__(self, sock, nbytes, seed, after_eof=False, reset_after=None, pause=None, expect=None):
        self.sock = sock
        self.expect = expect
        self.nbytes = nbytes
        self.seed = seed
        self.after_eof = after_eof
        self.reset_after = reset_after
        self.pause = pause
        self.sent = 0
        self.recv = 0
        self.send_error = None
        self.recv_error = None
        self.reset_sent = False
        self.sent_hash = hashlib.sha256()
        self.recv_hash = hashlib.sha256()

    def _send(self):
        try:
            for c in chunks(self.seed, self.nbytes):
                if self.reset_after is not None and self.sent + len(c) >= self.reset_after:
                    c = c[:self.reset_after - self.sent]
                    self.sock.sendall(c)
                    self.sent_hash.update(c)
                    self.sent += len(c)
                    self.reset_sent = True
                    abortive_close(self.sock)
                    return
                self.sock.sendall(c)
                self.sent_hash.update(c)
                self.sent += len(c)
            if self.expect is None:
                self.sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.send_error = f"{type(e).__name__}: {e}"

    def _recv(self):
        if self.pause is not None:
            self.pause.wait()
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        try:
            while self.expect is None or self.recv < self.expect:
                n = self.sock.recv_into(view)
                if n == 0:
                    break
                self.recv_hash.update(view[:n])
                self.recv += n
        except OSError as e:
            if not self.reset_sent:
                self.recv_error = f"{type(e).__name__}: {e}"

    def run(self):
        t0 = time.monotonic()
        if self.after_eof:
            self._recv()
            self._send()
        else:
            sender = threading.Thread(target=self._send, daemon=True)
            sender.start()
            self._recv()
            sender.join()
        return self.summary(seconds=round(time.monotonic() - t0, 3))

    def summary(self, **extra):
        return dict(sent=self.sent, sent_sha256=self.sent_hash.hexdigest(),
                    recv=self.recv, recv_sha256=self.recv_hash.hexdigest(),
                    send_error=self.send_error, recv_error=self.recv_error, **extra)


def start_watchdog(timeout, current):
    """After timeout seconds: print a timeout event (with current()) and exit 3."""
    if not timeout or timeout <= 0:
        return

    def fire():
        try:
            emit("timeout", after=timeout, **(current() or {}))
        finally:
            os._exit(3)

    t = threading.Timer(timeout, fire)
    t.daemon = True
    t.start()


def stdin_event(enabled):
    """An Event set when a line arrives on stdin (or stdin ends), or None."""
    if not enabled:
        return None
    ev = threading.Event()

    def wait_line():
        sys.stdin.readline()
        ev.set()
    threading.Thread(target=wait_line, daemon=True).start()
    return ev


def listening_socket(a):
    if getattr(a, "unix", None):
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(a.unix):
            os.unlink(a.unix)
        srv.bind(a.unix)
    else:
        srv = socket.socket(socket.AF_INET6 if ":" in a.bind else socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((a.bind, a.port))
    srv.listen(socket.SOMAXCONN)
    return srv


def peer_name(peer):
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else (peer or "unix")


def cmd_server(a):
    srv = listening_socket(a)
    transfers = []
    start_watchdog(a.timeout, lambda: {"connections": [t.summary() for t in transfers]})
    pause = stdin_event(a.pause_read)
    emit("listening", port=0 if a.unix else srv.getsockname()[1])
    index = 0
    while True:
        conn, peer = srv.accept()
        index += 1
        emit("accepted", peer=peer_name(peer), index=index)
        t = Transfer(conn, a.bytes, a.seed, after_eof=a.after_eof, reset_after=a.reset_after, pause=pause,
                     expect=a.expect)
        transfers.append(t)

        def handle(conn=conn, t=t, index=index):
            res = t.run()
            if a.expect is not None:
                emit("done", index=index, **res)
                sys.stdin.readline()
                conn.close()
                return
            conn.close()
            emit("done", index=index, **res)

        if a.once:
            handle()
            return 0
        threading.Thread(target=handle, daemon=True).start()


def connect_with_retry(host, port, deadline, unix=None):
    last = None
    while True:
        if unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(max(0.1, min(2.0, deadline - time.monotonic())))
        try:
            s.connect(unix or (host, port))
            s.settimeout(None)
            return s
        except OSError as e:
            last = e
            s.close()
        if time.monotonic() >= deadline:
            raise TimeoutError(f"could not connect to {unix or f'{host}:{port}'}: {last}")
        time.sleep(0.05)


def cmd_client(a):
    holder = {}
    start_watchdog(a.timeout, lambda: holder["t"].summary() if "t" in holder else {"connected": False})
    pause = stdin_event(a.pause_read)
    try:
        s = connect_with_retry(a.host, a.port, time.monotonic() + a.connect_timeout, a.unix)
    except (TimeoutError, OSError) as e:
        emit("connect_failed", error=str(e))
        return 2
    emit("connected", local=peer_name(s.getsockname()))
    t = holder["t"] = Transfer(s, a.bytes, a.seed, after_eof=a.after_eof, reset_after=a.reset_after, pause=pause,
                               expect=a.expect)
    res = t.run()
    if a.expect is not None:
        emit("done", **res)
        sys.stdin.readline()
        s.close()
        return 0
    if not t.reset_sent:
        s.close()
    emit("done", **res)
    return 0


def cmd_wait_port(a):
    try:
        connect_with_retry(a.host, a.port, time.monotonic() + a.timeout).close()
    except (TimeoutError, OSError) as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


# ---- many connections -------------------------------------------------------
# Header at the start of each connection (client -> server): magic, index,
# bytes the server must send back and the seed to generate them from.
HEADER = struct.Struct("!4sIQQ")
MAGIC = b"PSKM"


def recv_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        b = sock.recv(n - len(data))
        if not b:
            raise EOFError(f"connection ended after {len(data)} of {n} header bytes")
        data += b
    return bytes(data)


def cmd_mserver(a):
    srv = listening_socket(a)
    count = [0]
    start_watchdog(a.timeout, lambda: {"finished": count[0]})
    emit("listening", port=0 if a.unix else srv.getsockname()[1])

    def handle(conn):
        try:
            magic, index, down_bytes, down_seed = HEADER.unpack(recv_exact(conn, HEADER.size))
            if magic != MAGIC:
                raise ValueError(f"bad header magic {magic!r}")
        except (OSError, EOFError, ValueError) as e:
            emit("conn_failed", error=str(e))
            conn.close()
            return
        res = Transfer(conn, down_bytes, down_seed).run()
        conn.close()
        count[0] += 1
        emit("conn", index=index, **res)

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def plan_sizes(rng, count, total, biggest):
    """count sizes, each <= biggest, adding up to about total: one connection
    gets the biggest size the budget allows, the others a skewed random share
    (mostly small, some large), so sizes span bytes to megabytes."""
    sizes = [int(biggest * rng.random() ** 3) for _ in range(count)]
    big = min(biggest, total // 4)
    at = rng.randrange(count)
    sizes[at] = 0
    rest = sum(sizes)
    budget = max(0, total - big)
    if rest > budget and rest > 0:
        sizes = [s * budget // rest for s in sizes]
    sizes[at] = big
    return sizes


def cmd_mclient(a):
    rng = random.Random(a.seed)
    ups = plan_sizes(rng, a.count, a.total_bytes, a.max_bytes)
    downs = plan_sizes(rng, a.count, a.total_bytes, a.max_bytes)
    seeds = [(rng.randrange(1 << 30), rng.randrange(1 << 30)) for _ in range(a.count)]
    order = list(range(a.count))
    rng.shuffle(order)
    results = {}
    lock = threading.Lock()
    start_watchdog(a.timeout, lambda: {"finished": len(results),
                                        "unfinished": sorted(set(range(a.count)) - set(results))[:20]})
    go = threading.Event()
    deadline = time.monotonic() + a.connect_timeout

    def one(i):
        go.wait()
        res = {"index": i, "up_bytes": ups[i], "down_bytes": downs[i],
               "up_seed": seeds[i][0], "down_seed": seeds[i][1]}
        try:
            s = connect_with_retry(a.host, a.port, deadline, a.unix)
        except (TimeoutError, OSError) as e:
            res["connect_error"] = str(e)
        else:
            try:
                s.sendall(HEADER.pack(MAGIC, i, downs[i], seeds[i][1]))
            except OSError as e:
                res["connect_error"] = f"header: {e}"
            else:
                res.update(Transfer(s, ups[i], seeds[i][0]).run())
            s.close()
        with lock:
            results[i] = res
        emit("conn", **res)

    # Started in random order, all at once; sizes differ, so they also end
    # in an order of their own.
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in order]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join()
    bad = [r["index"] for r in results.values() if "connect_error" in r or r.get("send_error") or r.get("recv_error")]
    emit("summary", count=a.count, up_total=sum(ups), down_total=sum(downs), failed=bad[:50], failed_count=len(bad))
    return 0 if not bad else 1


def more_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cmd_echo(a):
    more_descriptors()
    srv = listening_socket(a)
    srv.setblocking(False)
    start_watchdog(a.timeout, lambda: {})
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ)
    emit("listening", port=srv.getsockname()[1])
    while True:
        for key, _ in sel.select():
            if key.fileobj is srv:
                try:
                    conn, _ = srv.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(True)
                sel.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                conn.close()
                continue
            conn.sendall(data)


def cmd_hold(a):
    more_descriptors()
    start_watchdog(a.timeout, lambda: {})
    deadline = time.monotonic() + a.connect_timeout
    conns = []
    for i in range(a.count):
        s = connect_with_retry(a.host, a.port, deadline, None)
        s.sendall(struct.pack("!Q", i))
        conns.append(s)
    emit("opened", count=len(conns))
    sel = selectors.DefaultSelector()
    got = {}
    for i, s in enumerate(conns):
        got[i] = b""
        sel.register(s, selectors.EVENT_READ, i)
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    pending = set(range(a.count))  # open, echo not back yet
    closed = 0
    echoed = 0
    while True:
        was_pending = bool(pending)
        for key, _ in sel.select():
            i = key.data
            if i is None:
                line = sys.stdin.readline()
                if not line:
                    return 0
                k = int(line.split()[1])
                for j in range(closed, min(a.count, closed + k)):
                    if j in pending:
                        sel.unregister(conns[j])
                        pending.discard(j)
                    conns[j].close()
                closed = min(a.count, closed + k)
                continue
            if i not in pending:
                continue
            data = key.fileobj.recv(8 - len(got[i]))
            if not data:
                emit("conn_failed", index=i, error="closed before its echo")
                sel.unregister(key.fileobj)
                pending.discard(i)
                continue
            got[i] += data
            if len(got[i]) == 8:
                sel.unregister(key.fileobj)
                pending.discard(i)
                if struct.unpack("!Q", got[i])[0] != i:
                    emit("conn_failed", index=i, error="wrong echo")
                    continue
                echoed += 1
                if echoed % 100 == 0:
                    emit("echoed", count=echoed)
        if was_pending and not pending:
            emit("all_echoed", echoed=echoed, open=a.count - closed)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)

    def endpoint(q, port_required):
        q.add_argument("--port", type=int, required=False, default=0)
        q.add_argument("--unix", default=None)
        q.add_argument("--timeout", type=float, default=0)

    def transfer_opts(q):
        q.add_argument("--bytes", type=int, default=0)
        q.add_argument("--after-eof", action="store_true")
        q.add_argument("--reset-after", type=int, default=None)
        q.add_argument("--pause-read", action="store_true")
        q.add_argument("--expect", type=int, default=None)

    s = sub.add_parser("server")
    endpoint(s, True)
    transfer_opts(s)
    s.add_argument("--bind", default="127.0.0.1")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--once", action="store_true")
    c = sub.add_parser("client")
    endpoint(c, True)
    transfer_opts(c)
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--seed", type=int, default=2)
    c.add_argument("--connect-timeout", type=float, default=20)
    w = sub.add_parser("wait-port")
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--timeout", type=float, default=20)
    ms = sub.add_parser("mserver")
    endpoint(ms, True)
    ms.add_argument("--bind", default="127.0.0.1")
    mc = sub.add_parser("mclient")
    endpoint(mc, True)
    mc.add_argument("--host", default="127.0.0.1")
    mc.add_argument("--count", type=int, required=True)
    mc.add_argument("--total-bytes", type=int, required=True)
    mc.add_argument("--max-bytes", type=int, default=8 << 20)
    mc.add_argument("--seed", type=int, default=7)
    mc.add_argument("--connect-timeout", type=float, default=60)
    e = sub.add_parser("echo")
    endpoint(e, True)
    e.add_argument("--bind", default="127.0.0.1")
    h = sub.add_parser("hold")
    endpoint(h, True)
    h.add_argument("--host", default="127.0.0.1")
    h.add_argument("--count", type=int, required=True)
    h.add_argument("--connect-timeout", type=float, default=60)
    a = p.parse_args(argv)
    if a.mode in ("server", "client", "mserver", "mclient", "echo", "hold") and not a.port and not a.unix:
        p.error("--port or --unix is required")
    return {"server": cmd_server, "client": cmd_client, "wait-port": cmd_wait_port,
            "mserver": cmd_mserver, "mclient": cmd_mclient, "echo": cmd_echo, "hold": cmd_hold}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
