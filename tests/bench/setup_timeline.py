#!/usr/bin/python3
"""Where the setup time goes: the NAT lab (tests/netlab) with alice and bob
behind NATs of the given types and `netlab.impair(rtt_ms=RTT)` (RTT more on
every crossing of wan's edge: peer to server RTT, peer to peer direct RTT,
through the relay twice that). `stdio-a` on alice, `stdio-b` on bob with
--debug, 1 MiB each way. Per run, from both sides' debug logs, the time of
each step from bob's start; then the median of every column. Prints one
Markdown table; asserts nothing (a benchmark, not a test).

Steps (each from the end of the one before):
  websocket  bob's websocket to the mailbox server is up (TCP, HTTP upgrade)
  mailbox    alice's ICE description has reached bob (claim, open + pake,
             the descriptions crossing)
  ice        bob's ICE component is connected
  quic       bob's QUIC handshake is done
  auth       alice has bob's first forwarded byte (SMP, then the stream)

Run as root, from anywhere:
  tests/bench/setup_timeline.py [--peersock build/peersock] [--nats symmetric,symmetric] [--rtt 100] [--runs 5]
      [--keep-logs DIR]
"""
import argparse
import datetime
import os
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests" / "netlab"))

STAMP_RE = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\.(\d{3})\] (.*)$")
STEPS = [
    ("websocket", r"^rendezvous: connected$"),
    ("mailbox", r"^rendezvous: the peer's ice body arrived"),
    ("ice", r"^ice: component state connected$"),
    ("quic", r"^quic: client handshake done"),
]


def stamp_of(lines, pattern, day):
    """Wall-clock time (datetime) of the first debug line matching pattern."""
    for line in lines:
        m = STAMP_RE.match(line)
        if m and re.search(pattern, m.group(5)):
            h, mi, s, ms = (int(x) for x in m.groups()[:4])
            return day.replace(hour=h, minute=mi, second=s, microsecond=ms * 1000)
    return None


def one_run(lab, alice, bob, code_re, pump, keep=None):
    gen = lab.peersock(alice, "peersock stdio-a (alice)", ["stdio-a"], stdio=True, extra=("--debug",))
    code = gen.wait_line(code_re, 20, what="the 'Connection code:' line").group(1)
    started_wall, started = datetime.datetime.now(), time.monotonic()
    cons = lab.peersock(bob, "peersock stdio-b (bob)", ["stdio-b", code], stdio=True, extra=("--debug",))
    pa, pb = pump(gen, 1 << 20, 11), pump(cons, 1 << 20, 22)
    pa.wait(120)
    pb.wait(120)
    for p in (gen, cons):
        p.wait_exit(20, what="stdio peers exit")
    lines = cons.lines()
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        n = len(list(keep.glob("*-alice.log"))) + 1
        (keep / f"{n}-alice.log").write_text("\n".join(gen.lines()) + "\n")
        (keep / f"{n}-bob.log").write_text("\n".join(lines) + "\n")
    row, before = {}, 0.0
    for name, pattern in STEPS:
        at = stamp_of(lines, pattern, started_wall)
        if at is None:
            raise SystemExit(f"bob's log has no line for step {name!r} ({pattern})")
        t = (at - started_wall).total_seconds()
        row[name], before = t - before, t
    total = pa.first_byte - started
    row["auth"] = total - before
    row["total"] = total
    path = next((line for line in gen.lines() if line.startswith("connected ")), "?")
    return row, path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peersock", default=str(REPO / "build" / "peersock"))
    ap.add_argument("--nats", default="symmetric,symmetric", help="alice's and bob's NAT types")
    ap.add_argument("--rtt", type=int, default=100, help="ms added per crossing of wan's edge")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep-logs", type=Path, help="write each run's debug logs here (N-alice.log, N-bob.log)")
    args = ap.parse_args()
    os.environ["PEERSOCK_BIN"] = os.path.abspath(args.peersock)
    import netlab as nl
    from lab import CODE_RE, Pump
    a_nat, b_nat = args.nats.split(",")
    rows, paths = [], []
    with nl.started(30) as lab:
        a = lab.add_site("a", a_nat, ["alice"])
        b = lab.add_site("b", b_nat, ["bob"])
        if args.rtt:
            lab.impair(rtt_ms=args.rtt)
        for _ in range(args.runs):
            row, path = one_run(lab, a.hosts[0], b.hosts[0], CODE_RE, Pump, args.keep_logs)
            rows.append(row)
            paths.append(path)
    load = os.getloadavg()[0]
    cols = [name for name, _ in STEPS] + ["auth", "total"]
    print(f"{a_nat} x {b_nat}, +{args.rtt} ms per crossing, {args.runs} runs, "
          f"{os.cpu_count()} cores, load {load:.1f}; alice's path: {paths[-1]}\n")
    print("| run | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for i, row in enumerate(rows, 1):
        print(f"| {i} | " + " | ".join(f"{row[c]:.2f}" for c in cols) + " |")
    print("| median | " + " | ".join(f"{statistics.median(r[c] for r in rows):.2f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
