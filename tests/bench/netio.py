#!/usr/bin/python3
"""Traffic tools for the peersock benchmark (stdlib only). One JSON line per result.

  serve  --port P        target server. The first byte of each connection picks
                         the job: 'B' read to EOF, then close (bulk sink);
                         'T' timed sink (see `timed`);
                         'E' echo everything (latency); 'H' echo one byte, then
                         wait for EOF (an idle open connection).
  bulk   --host H --port P --bytes N
                         connect, send 'B' + N bytes, half-close, wait for the
                         server's close; prints seconds and MB/s end to end.
  timed  --host H --port P --seconds S --bytes N
                         connect, send 'T', then data until the sink has counted
                         N bytes or S seconds have passed since its first byte,
                         whichever comes first. The sink measures (bytes that
                         arrived, from the first to the last counted byte, and
                         the count at the end of each whole second) and
                         sends a JSON line back; the client then aborts the
                         connection (RST), so nothing still buffered along the
                         path is drained into the next measurement.
  pingpong --host H --port P --count N [--size S]
                         N request/response round trips of S bytes; prints the
                         median and mean round trip in microseconds.
  hold   --host H --port P --count N [--wait T]
                         opens N connections, each sends 'H' and waits (up to T s
                         in all) for its echo; prints how many got through, then
                         keeps them open until stdin ends ("trim K" on stdin
                         closes the ones without echo and K more).
"""
import argparse
import json
import selectors
import socket
import statistics
import struct
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
            elif kind == b"T":
                timed_sink(c)
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


def timed_sink(c):
    """'T' SECONDS BYTES newline, then data: count until BYTES arrived, the
    client half-closed, or SECONDS passed since the header; report; drain
    until the client aborts; then reset the connection."""
    hdr = b""
    while not hdr.endswith(b"\n"):
        d = c.recv(1)
        if not d:
            return
        hdr += d
    seconds, limit = hdr.split()
    seconds, limit = float(seconds), int(limit)
    buf = bytearray(1 << 20)
    t0 = time.monotonic()
    end = t0 + seconds
    got, last, eof = 0, t0, False
    marks = []
    while got < limit:
        left = end - time.monotonic()
        if left <= 0:
            break
        c.settimeout(left)
        try:
            n = c.recv_into(buf, min(len(buf), limit - got))
        except socket.timeout:
            break
        if not n:
            eof = True
            break
        got += n
        last = time.monotonic()
        while last >= t0 + len(marks) + 1:  # bytes counted by the end of each whole second
            marks.append(got)
    if got >= limit or eof:
        bound, elapsed = "bytes", last - t0
    else:
        bound, elapsed = "time", min(time.monotonic(), end) - t0
    c.settimeout(60)
    c.sendall((json.dumps({"bytes": got, "seconds": round(elapsed, 4), "bound": bound, "marks": marks}) + "\n").encode())
    try:
        while c.recv_into(buf):
            pass
    except OSError:
        pass
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


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


def timed(a):
    s = connect(a)
    s.sendall(f"T{a.seconds} {a.bytes}\n".encode())
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent, reply = 0, b""
    deadline = time.monotonic() + a.seconds + a.grace
    while not reply.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise SystemExit(f"no report from the sink {a.grace} s after the window ({sent} bytes sent)")
        for _, ev in sel.select(left):
            if ev & selectors.EVENT_READ:
                try:
                    d = s.recv(4096)
                except BlockingIOError:
                    d = None
                if d == b"":
                    raise SystemExit(f"the sink closed without a report ({sent} bytes sent)")
                if d:
                    reply += d
            if ev & selectors.EVENT_WRITE and sent < a.bytes:
                try:
                    sent += s.send(BUF[:min(len(BUF), a.bytes - sent)])
                except BlockingIOError:
                    pass
                if sent >= a.bytes:
                    s.shutdown(socket.SHUT_WR)
                    sel.modify(s, selectors.EVENT_READ)
    # Abort: whatever is still queued along the path is thrown away.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    r = json.loads(reply)
    mbps = r["bytes"] / r["seconds"] / 1e6 if r["seconds"] > 0 else 0.0
    emit(bytes=r["bytes"], seconds=r["seconds"], bound=r["bound"], marks=r["marks"], sent=sent,
         mbytes_per_s=round(mbps, 3))


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
    carried = []
    deadline = time.monotonic() + a.wait
    while len(carried) < a.count and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            try:
                if key.fileobj.recv(1):
                    carried.append(key.fileobj)
            except OSError:
                pass
            sel.unregister(key.fileobj)
    emit(opened=a.count, echoed=len(carried))
    # stdin: "trim K" closes the connections that got no echo (still waiting
    # for the tunnel to carry them) and K of the carried ones, then prints
    # how many stay open; EOF closes everything.
    for line in sys.stdin:
        w = line.split()
        if w[:1] == ["trim"]:
            keep = set(map(id, carried))
            for s in socks:
                if id(s) not in keep:
                    s.close()
            for s in carried[:int(w[1])]:
                s.close()
            carried = carried[int(w[1]):]
            emit(open=len(carried))
    for s in socks:
        s.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["serve", "bulk", "timed", "pingpong", "hold"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bytes", type=int, default=1 << 30)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--wait", type=float, default=20)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--grace", type=float, default=60, help="timed: how long to wait for the report after the window")
    a = p.parse_args()
    {"serve": serve, "bulk": bulk, "timed": timed, "pingpong": pingpong, "hold": hold}[a.mode](a)


if __name__ == "__main__":
    main()
