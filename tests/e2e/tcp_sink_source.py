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
import socket
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


class Transfer:
    """Full-duplex transfer on a connected socket; counters are readable live."""

    def __init__(self, sock, nbytes, seed):
        self.sock = sock
        self.nbytes = nbytes
        self.seed = seed
        self.sent = 0
        self.recv = 0
        self.send_error = None
        self.recv_error = None
        self.sent_hash = hashlib.sha256()
        self.recv_hash = hashlib.sha256()

    def _send(self):
        try:
            for c in chunks(self.seed, self.nbytes):
                self.sock.sendall(c)
                self.sent_hash.update(c)
                self.sent += len(c)
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.send_error = f"{type(e).__name__}: {e}"

    def _recv(self):
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        try:
            while True:
                n = self.sock.recv_into(view)
                if n == 0:
                    break
                self.recv_hash.update(view[:n])
                self.recv += n
        except OSError as e:
            self.recv_error = f"{type(e).__name__}: {e}"

    def run(self):
        t0 = time.monotonic()
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


def cmd_server(a):
    srv = socket.socket(socket.AF_INET6 if ":" in a.bind else socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.bind, a.port))
    srv.listen(16)
    transfers = []
    start_watchdog(a.timeout, lambda: {"connections": [t.summary() for t in transfers]})
    emit("listening", port=srv.getsockname()[1])
    index = 0
    while True:
        conn, peer = srv.accept()
        index += 1
        emit("accepted", peer=f"{peer[0]}:{peer[1]}", index=index)
        t = Transfer(conn, a.bytes, a.seed)
        transfers.append(t)

        def handle(conn=conn, t=t, index=index):
            res = t.run()
            conn.close()
            emit("done", index=index, **res)

        if a.once:
            handle()
            return 0
        threading.Thread(target=handle, daemon=True).start()


def connect_with_retry(host, port, deadline):
    last = None
    while True:
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(max(0.1, min(2.0, deadline - time.monotonic())))
        try:
            s.connect((host, port))
            s.settimeout(None)
            return s
        except OSError as e:
            last = e
            s.close()
        if time.monotonic() >= deadline:
            raise TimeoutError(f"could not connect to {host}:{port}: {last}")
        time.sleep(0.05)


def cmd_client(a):
    holder = {}
    start_watchdog(a.timeout, lambda: holder["t"].summary() if "t" in holder else {"connected": False})
    try:
        s = connect_with_retry(a.host, a.port, time.monotonic() + a.connect_timeout)
    except (TimeoutError, OSError) as e:
        emit("connect_failed", error=str(e))
        return 2
    emit("connected", local=f"{s.getsockname()[0]}:{s.getsockname()[1]}")
    t = holder["t"] = Transfer(s, a.bytes, a.seed)
    res = t.run()
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--bind", default="127.0.0.1")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--bytes", type=int, default=0)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--once", action="store_true")
    s.add_argument("--timeout", type=float, default=0)
    c = sub.add_parser("client")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--bytes", type=int, default=0)
    c.add_argument("--seed", type=int, default=2)
    c.add_argument("--connect-timeout", type=float, default=20)
    c.add_argument("--timeout", type=float, default=0)
    w = sub.add_parser("wait-port")
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--timeout", type=float, default=20)
    a = p.parse_args(argv)
    return {"server": cmd_server, "client": cmd_client, "wait-port": cmd_wait_port}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
