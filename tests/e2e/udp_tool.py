"""UDP ends for the listen-udp / connect-udp tests, run inside the test's
namespace. Each subcommand prints JSON events on stdout, one per line:

  echo    a UDP echo server: every datagram goes back to its sender, and
          {"event": "source", ...} says once for each new source address
          (the tests see the connect side's flow sockets there)
  blast   one client socket: COUNT datagrams of random sizes (up to
          MAX_SIZE), at most WINDOW unanswered at a time; every reply is
          checked byte for byte against what was sent. A datagram without a
          reply within 2 s is counted lost (the window moves on).
  many    CLIENTS sockets at once, ROUNDS datagrams each, every one carrying
          its socket's number: a reply that reaches another socket is a
          misdelivery
  ping    one datagram from a fresh or a kept socket (--keep-open PATH: the
          port is saved there, so a second `ping` can reuse it), its reply
"""
import argparse
import json
import os
import random
import select
import socket
import sys
import time


def say(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def echo(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.bind((args.bind, args.port))
    say("listening", port=args.port)
    seen = set()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.5)
        if not r:
            continue
        for _ in range(256):
            try:
                data, addr = s.recvfrom(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if addr not in seen:
                seen.add(addr)
                say("source", host=addr[0], port=addr[1], count=len(seen))
            s.sendto(data, addr)
    say("timeout")


def payload(seq, size, rng):
    head = seq.to_bytes(4, "big")
    return head + rng.randbytes(max(0, size - 4))


def blast(args):
    rng = random.Random(args.seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.connect(("127.0.0.1", args.port))
    s.setblocking(False)
    outstanding = {}  # seq -> (bytes, sent at)
    ok = corrupt = lost = sent = 0
    sizes = []
    seq = 0
    start = time.monotonic()
    deadline = start + args.timeout
    while (seq < args.count or outstanding) and time.monotonic() < deadline:
        while seq < args.count and len(outstanding) < args.window:
            size = rng.randint(args.min_size, args.max_size)
            data = payload(seq, size, rng)
            try:
                s.send(data)
            except BlockingIOError:
                break
            outstanding[seq] = (data, time.monotonic())
            sizes.append(size)
            seq += 1
            sent += 1
        r, _, _ = select.select([s], [], [], 0.05)
        if r:
            for _ in range(512):
                try:
                    data = s.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                n = int.from_bytes(data[:4], "big") if len(data) >= 4 else -1
                want = outstanding.pop(n, None)
                if want is None:
                    continue  # a late reply for one counted lost, or a duplicate
                if want[0] == data:
                    ok += 1
                else:
                    corrupt += 1
        now = time.monotonic()
        for n in [n for n, (_, t) in outstanding.items() if now - t > 2.0]:
            del outstanding[n]
            lost += 1
    lost += len(outstanding)
    say("done", sent=sent, ok=ok, corrupt=corrupt, lost=lost, seconds=round(time.monotonic() - start, 3),
        max_size=max(sizes) if sizes else 0, bytes=sum(sizes))


def many(args):
    socks = []
    for i in range(args.clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.1", args.port))
        s.setblocking(False)
        socks.append(s)
    by_fd = {s.fileno(): i for i, s in enumerate(socks)}
    got = [set() for _ in socks]
    wrong = 0
    start = time.monotonic()
    deadline = start + args.timeout
    for rnd in range(args.rounds):
        for i, s in enumerate(socks):
            s.send(f"{i}:{rnd}:".encode() + b"x" * (i % 50))
        # Each round's replies are awaited (with a deadline) before the next.
        while time.monotonic() < deadline and sum(rnd in g for g in got) < len(socks):
            r, _, _ = select.select(socks, [], [], 0.2)
            for s in r:
                i = by_fd[s.fileno()]
                while True:
                    try:
                        data = s.recv(65535)
                    except (BlockingIOError, ConnectionRefusedError):
                        break
                    owner, n = data.split(b":")[:2]
                    if int(owner) != i:
                        wrong += 1
                    else:
                        got[i].add(int(n))
            if not r:
                # A lost datagram (none expected on lo, but UDP): send it again.
                for i, s in enumerate(socks):
                    if rnd not in got[i]:
                        s.send(f"{i}:{rnd}:".encode() + b"x" * (i % 50))
    complete = sum(len(g) == args.rounds for g in got)
    say("done", clients=args.clients, complete=complete, misdelivered=wrong,
        seconds=round(time.monotonic() - start, 3))


def ping(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if args.keep_open and os.path.exists(args.keep_open):
        with open(args.keep_open) as f:
            s.bind(("127.0.0.1", int(f.read())))
    s.connect(("127.0.0.1", args.port))
    if args.keep_open:
        with open(args.keep_open, "w") as f:
            f.write(str(s.getsockname()[1]))
    data = args.text.encode()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        s.send(data)
        r, _, _ = select.select([s], [], [], 1.0)
        if r:
            try:
                reply = s.recv(65535)
            except ConnectionRefusedError:
                continue
            say("reply", ok=reply == data, port=s.getsockname()[1])
            return
    say("timeout")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo")
    e.add_argument("--port", type=int, required=True)
    e.add_argument("--bind", default="127.0.0.1")
    e.add_argument("--timeout", type=float, default=120)
    b = sub.add_parser("blast")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--count", type=int, default=10000)
    b.add_argument("--min-size", type=int, default=4)
    b.add_argument("--max-size", type=int, required=True)
    b.add_argument("--window", type=int, default=64)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--timeout", type=float, default=120)
    m = sub.add_parser("many")
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--clients", type=int, default=100)
    m.add_argument("--rounds", type=int, default=5)
    m.add_argument("--timeout", type=float, default=60)
    p = sub.add_parser("ping")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--text", default="ping")
    p.add_argument("--keep-open")
    p.add_argument("--timeout", type=float, default=20)
    args = ap.parse_args()
    {"echo": echo, "blast": blast, "many": many, "ping": ping}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
