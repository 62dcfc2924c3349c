#!/usr/bin/python3
"""Traffic tools for the peersock benchmark (stdlib only). One JSON line per result.

  serve  --port P        target server. The first byte of each connection picks
                         the job: 'B' read to EOF, then close (bulk sink);
                         'E' echo everything (latency); 'H' echo one byte, then
                         wait for EOF (an idle open connection).
  bulk   --host H --port P --bytes N
                         connect, send 'B' + N bytes, half-close, wait for the
                         server's close; prints seconds and MB/s end to end.
  pingpong --host H --port P --count N [--size S]
                         N request/response round trips of S bytes; prints the
                         median and mean round trip in microseconds.
  hold   --host H --port P --count N [--wait T]
                         opens N connections, each sends 'H' and waits (up to T s
                         in all) for its echo; prints how many got through, then
                         keeps them open until stdin ends.
"""
import argparse
import json
import selectors
import socket
import statistics
import sys
import threading
import time

BUF = memoryview(bytearray(1 << 20))


def emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def serve(a):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", a.port))
    srv.listen(4096)
    emit(event="listening")

    def handle(c):
        try:
            kind = c.recv(1)
            if kind == b"B":
                buf = bytearray(1 << 20)
                while c.recv_into(buf):
                    pass
            elif kind == b"E":
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    c.sendall(d)
            elif kind == b"H":
                c.sendall(b"h")
                while c.recv(4096):
                    pass
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def connect(a):
    s = socket.create_connection((a.host, a.port), timeout=60)
    s.settimeout(None)
    return s


def bulk(a):
    t0 = time.monotonic()
    s = connect(a)
    s.sendall(b"B")
    left = a.bytes
    while left > 0:
        n = min(left, len(BUF))
        s.sendall(BUF[:n])
        left -= n
    s.shutdown(socket.SHUT_WR)
    s.recv(1)  # the server closes after reading everything
    dt = time.monotonic() - t0
    emit(bytes=a.bytes, seconds=round(dt, 4), mbytes_per_s=round(a.bytes / dt / 1e6, 2))


def pingpong(a):
    s = connect(a)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"E")
    msg = b"x" * a.size
    rtts = []
    for _ in range(a.count):
        t0 = time.perf_counter()
        s.sendall(msg)
        got = 0
        while got < a.size:
            d = s.recv(a.size - got)
            if not d:
                raise SystemExit("echo server closed")
            got += len(d)
        rtts.append((time.perf_counter() - t0) * 1e6)
    s.close()
    emit(count=a.count, median_us=round(statistics.median(rtts), 1), mean_us=round(statistics.mean(rtts), 1))


def hold(a):
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(a.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect((a.host, a.port))
        s.sendall(b"H")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    echoed = 0
    deadline = time.monotonic() + a.wait
    while echoed < a.count and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            try:
                if key.fileobj.recv(1):
                    echoed += 1
            except OSError:
                pass
            sel.unregister(key.fileobj)
    emit(opened=a.count, echoed=echoed)
    sys.stdin.read()
    for s in socks:
        s.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["serve", "bulk", "pingpong", "hold"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bytes", type=int, default=1 << 30)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--wait", type=float, default=20)
    a = p.parse_args()
    {"serve": serve, "bulk": bulk, "pingpong": pingpong, "hold": hold}[a.mode](a)


if __name__ == "__main__":
    main()
