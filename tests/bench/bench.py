#!/usr/bin/python3
"""peersock benchmark: tunnels between two network namespaces joined by one
veth pair, against direct TCP (CUBIC and BBR), a socat relay and ssh -L, all
measured in the same run on the same link. Prints Markdown tables; never
asserts anything (a goal that is missed is printed as "no").

Run it with tests/bench/run.sh (builds release binaries first), as root.

  ns A (10.77.0.1): mailbox server, target server (netio.py serve :5001),
                    sshd :2222, `peersock connect 127.0.0.1:5001` (generates
                    the code)
  ns B (10.77.0.2): `peersock listen PORT CODE`, socat 6001 -> 10.77.0.1:5001,
                    ssh -L 6002 -> 127.0.0.1:5001 via sshd, and the clients

One peersock tunnel (BBR, listen 6000) lives through the whole run (the
"warm" column, the idle-RSS and connections test); each row also sets up a
new BBR and a new CUBIC tunnel over that row's link and closes them after
its transfer, so that peersock starts as cold as each new TCP connection.

direct  = client in B -> 10.77.0.1:5001 (TCP over the veth)
peersock = client in B -> 127.0.0.1:6000 -> QUIC/UDP over the veth -> A -> 127.0.0.1:5001
socat   = client in B -> 127.0.0.1:6001 -> socat -> TCP over the veth -> A:5001
ssh -L  = client in B -> 127.0.0.1:6002 -> ssh -> TCP over the veth -> sshd -> 127.0.0.1:5001

Bulk data flows from B to A, so the senders on the link are in B. Every
address used is 127.0.0.1 inside a namespace or a veth address of the two
namespaces this script creates.
"""
import argparse
import json
import os
import platform
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETIO = HERE / "netio.py"
PY = "/usr/bin/python3"
A_IP, B_IP, NET = "10.77.0.1", "10.77.0.2", "10.77.0.0/24"
TARGET, LISTEN, SOCAT, SSH_FWD, SSHD, MAILBOX = 5001, 6000, 6001, 6002, 2222, 4000
# system calls --perf counts (perf stat, tracepoints) in each peersock process
PERF_SYSCALLS = ["sendmsg", "sendmmsg", "recvmsg", "recvmmsg", "read", "write", "poll", "epoll_wait",
                 "timerfd_settime"]
# listen ports of the per-row tunnels: 6100 + 2 x tunnel number (+1 for CUBIC)
CLK = os.sysconf("SC_CLK_TCK")


class Row:
    def __init__(self, key, label, rate=None, delay_ms=None, loss=None, seconds=10.0, mib=1024):
        self.key, self.label = key, label
        self.rate, self.delay_ms, self.loss = rate, delay_ms, loss
        self.seconds, self.mib = seconds, mib

    @property
    def impaired(self):
        return bool(self.delay_ms or self.loss)


# One-way delay and loss are applied on both namespaces' input (so each
# direction gets delay_ms and loss): RTT = 2 x delay_ms.
ROWS = [
    Row("unshaped", "unshaped", mib=2048),
    Row("1gbit", "1 Gbit/s (tbf)", rate="1gbit", mib=1024),
    Row("50ms", "50 ms RTT", delay_ms=25),
    Row("50ms-0.5", "50 ms RTT + 0.5 % loss", delay_ms=25, loss=0.005),
    Row("20ms-0.1", "20 ms RTT + 0.1 % loss", delay_ms=10, loss=0.001),
    Row("200ms-1", "200 ms RTT + 1 % loss", delay_ms=100, loss=0.01),
]
# Diagnostic rows, only with --rows: the 20 ms link without loss (what the
# loss costs on the 20 ms + 0.1 % row).
DIAG_ROWS = [
    Row("20ms", "20 ms RTT", delay_ms=10),
]

# peersock and peersock-cubic get a new tunnel for every row (a cold start,
# as each TCP transfer gets a new connection); peersock-warm is one BBR tunnel
# kept from the start of the run through every row, as a long-lived tunnel
# would be (its congestion state comes from the rows before).
COLUMNS = ["tcp-cubic", "tcp-bbr", "socat", "ssh", "peersock", "peersock-cubic", "peersock-warm", "peersock-b"]
TITLES = {"tcp-cubic": "TCP CUBIC", "tcp-bbr": "TCP BBR", "socat": "socat relay", "ssh": "ssh -L",
          "peersock": "peersock (BBR)", "peersock-cubic": "peersock (CUBIC)",
          "peersock-warm": "peersock (BBR, warm tunnel)", "peersock-b": "peersock B (BBR, --bin-b)"}
PEERSOCK_COLUMNS = {"peersock": [], "peersock-cubic": ["--congestion", "cubic"], "peersock-warm": [],
                    "peersock-b": []}
# columns that get a new tunnel for every transfer; peersock-b runs the
# binary of --bin-b (an A/B comparison interleaved in the same run)
FRESH = ("peersock", "peersock-cubic", "peersock-b")


def sh(*argv, check=True):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r


def until(what, pred, timeout, interval=0.05, alive=()):
    """Polls pred() until it returns something true, for at most timeout s;
    fails early if one of the processes in alive exited."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        for p in alive:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: process {p.args[3:5]} exited with {p.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(interval)


class Bench:
    def __init__(self, a):
        tag = f"{os.getpid() % 100000}"
        self.a, self.b = f"psk-bench-{tag}-a", f"psk-bench-{tag}-b"
        self.va, self.vb = f"pb{tag}a", f"pb{tag}b"
        self.args = a
        self.procs = []
        self.delayers = []
        self.tmp = tempfile.mkdtemp(prefix="psk-bench-")
        self.notes = []
        self.cc = None
        self.offloads = True
        for ns in (self.a, self.b):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            # IPv4 only: ICE would otherwise often pick the veth's IPv6
            # link-local addresses, which the (IPv4) iptables loss and delay
            # rules do not touch.
            for key in ("all", "default"):
                sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1")
        sh("ip", "link", "add", self.va, "netns", self.a, "type", "veth", "peer", "name", self.vb, "netns", self.b)
        sh("ip", "-n", self.a, "addr", "add", f"{A_IP}/24", "dev", self.va)
        sh("ip", "-n", self.b, "addr", "add", f"{B_IP}/24", "dev", self.vb)
        sh("ip", "-n", self.a, "link", "set", self.va, "up")
        sh("ip", "-n", self.b, "link", "set", self.vb, "up")
        # The kernel marks a new veth RUNNING only when its link watch runs
        # (up to a second later, more on a busy machine); libnice ignores
        # interfaces that are not RUNNING and would offer only 127.0.0.1,
        # so ICE would fail ("no network path").
        for ns, dev in ((self.a, self.va), (self.b, self.vb)):
            until(f"{dev} up", lambda: "state UP" in sh("ip", "-n", ns, "-o", "link", "show", "dev", dev).stdout, 20)

    def ns_of(self, side):
        return self.a if side == "a" else self.b

    def start(self, ns, argv, log=None, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL):
        err = open(os.path.join(self.tmp, log), "w") if log else subprocess.DEVNULL
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=stdout, stderr=err, stdin=stdin, text=True)
        p.log = os.path.join(self.tmp, log) if log else None
        self.procs.append(p)
        return p

    def run(self, ns, argv, timeout=600):
        r = subprocess.run(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {(r.stderr or r.stdout).strip()[-500:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for ns in (self.a, self.b):
            sh("ip", "netns", "del", ns, check=False)
        if self.args.keep_logs:
            print(f"logs kept in {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def listening(self, ns, port):
        return bool(sh("ip", "netns", "exec", ns, "ss", "-Hltn", f"sport = :{port}").stdout.strip())

    # -- TCP congestion control: per route (RTAX_CC_ALGO). A new namespace
    # inherits the host's net.ipv4.tcp_congestion_control and cannot change
    # it, but a route's congctl applies to every TCP connection set up over
    # that route afterwards (both the connecting and the accepting side).
    def set_cc(self, name):
        if name == self.cc:
            return
        for ns, dev, ip in ((self.a, self.va, A_IP), (self.b, self.vb, B_IP)):
            sh("ip", "-n", ns, "route", "replace", NET, "dev", dev, "proto", "kernel", "scope", "link", "src", ip,
               "congctl", name)
        self.cc = name

    def tcp_cc_seen(self, port):
        """The congestion control ss -ti reports for B's established
        connections to A:port (the sending side), e.g. {'cubic'}."""
        out = sh("ip", "netns", "exec", self.b, "ss", "-Htin", "state", "established", f"dport = :{port}").stdout
        return {m.group(1) for m in re.finditer(r"^\s+(cubic|bbr|reno|bbr2|bbr3|dctcp|vegas)\s", out, re.M)}

    # -- link conditions
    def set_offloads(self, on):
        """TSO/GSO/GRO/UDP segmentation on the veth. Off for the delay and
        loss rows: with offloads on, TCP crosses the veth as up-to-64 KiB
        segments, so iptables' per-packet random loss would drop 44
        segments at a time (far fewer loss events per byte than for QUIC's
        1200-1452-byte datagrams) and nfq-delay would handle a fraction of
        the packets; with them off, every packet on the link is wire-sized."""
        if on == self.offloads:
            return
        v = "on" if on else "off"
        for ns, dev in ((self.a, self.va), (self.b, self.vb)):
            sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", v, "gso", v, "gro", "off",
               "tx-udp-segmentation", v, check=False)
        self.offloads = on

    def shape(self, row):
        """rate: tbf on both veth ends; loss: iptables random drop on both
        ends' input; delay_ms (one way): nfq-delay on both ends' input (this
        kernel has no sch_netem)."""
        for ns in (self.a, self.b):
            sh("ip", "netns", "exec", ns, "iptables", "-F", "INPUT", check=False)
        for p in self.delayers:
            self.stop(p)
        self.delayers = []
        self.set_offloads(not row.impaired)
        for ns, dev in ((self.a, self.va), (self.b, self.vb)):
            sh("tc", "-n", ns, "qdisc", "del", "dev", dev, "root", check=False)
            if row.rate:
                sh("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", row.rate, "burst", "1mb",
                   "latency", "20ms")
            if row.loss:
                sh("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-i", dev, "-m", "statistic", "--mode",
                   "random", "--probability", str(row.loss), "-j", "DROP")
            if row.delay_ms:
                p = self.start(ns, [self.args.nfq_delay, "--queue", "0", "--delay-ms", str(row.delay_ms)],
                               log=f"nfq-delay-{ns}.log", stdout=subprocess.PIPE)
                if p.stdout.readline().strip() != "ready":
                    raise RuntimeError("nfq-delay did not start")
                self.delayers.append(p)
                sh("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-i", dev, "-j", "NFQUEUE",
                   "--queue-num", "0")

    # -- counters
    def link_bytes(self):
        total = 0
        for ns, dev in ((self.a, self.va), (self.b, self.vb)):
            j = json.loads(sh("ip", "-n", ns, "-j", "-s", "link", "show", "dev", dev).stdout)
            total += j[0]["stats64"]["tx"]["bytes"]
        return total

    def wait_quiet(self, what):
        """Waits (up to 60 s) until the veth carries under 64 KiB in 300 ms, so
        that nothing left from the previous run overlaps the next one."""
        deadline = time.monotonic() + 60
        prev = self.link_bytes()
        while True:
            time.sleep(0.3)
            cur = self.link_bytes()
            if cur - prev < 65536:
                return
            prev = cur
            if time.monotonic() > deadline:
                self.notes.append(f"before {what}: the link was still busy after 60 s")
                return

    def udp_counters(self):
        """Udp InErrors, RcvbufErrors, SndbufErrors of each namespace."""
        out = {}
        for side in ("a", "b"):
            lines = [l.split() for l in sh("ip", "netns", "exec", self.ns_of(side), "cat", "/proc/net/snmp").stdout
                     .splitlines() if l.startswith("Udp:")]
            d = dict(zip(lines[0][1:], map(int, lines[1][1:])))
            out[side] = (d["InErrors"], d["RcvbufErrors"], d["SndbufErrors"])
        return out

    def loss_counters(self):
        """(packets the iptables random-loss rules dropped, packets sent on the
        veth), both namespaces together: the loss the link really applied."""
        drops = pkts = 0
        for ns, dev in ((self.a, self.va), (self.b, self.vb)):
            out = sh("ip", "netns", "exec", ns, "iptables", "-L", "INPUT", "-v", "-x", "-n", check=False).stdout
            for line in out.splitlines():
                f = line.split()
                if len(f) > 2 and f[2] == "DROP" and "statistic" in line:
                    drops += int(f[0])
            j = json.loads(sh("ip", "-n", ns, "-j", "-s", "link", "show", "dev", dev).stdout)
            pkts += j[0]["stats64"]["tx"]["packets"]
        return drops, pkts

    def qdisc_drops(self):
        """Packets the veths' root qdiscs (tbf on the rate rows) dropped, both ends."""
        n = 0
        for ns, dev in ((self.a, self.va), (self.b, self.vb)):
            r = sh("tc", "-n", ns, "-j", "-s", "qdisc", "show", "dev", dev, check=False)
            try:
                n += sum(q.get("drops", 0) for q in json.loads(r.stdout or "[]"))
            except ValueError:
                pass
        return n

    def nfq_counters(self):
        """Packets each namespace's NFQUEUE dropped (queue full + failed to
        reach nfq-delay)."""
        n = 0
        for ns in (self.a, self.b):
            for line in sh("ip", "netns", "exec", ns, "cat", "/proc/net/netfilter/nfnetlink_queue",
                           check=False).stdout.splitlines():
                f = line.split()
                if len(f) >= 7:
                    n += int(f[5]) + int(f[6])
        return n


def json_event(p, name, timeout, alive=()):
    """The first --json event called name in p's stderr log."""
    def find():
        with open(p.log) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("event") == name:
                    return e
                if e.get("event") in ("error", "exit"):
                    raise RuntimeError(f"peersock: {line.strip()}")
        return None
    return until(f"peersock event {name!r}", find, timeout, alive=alive or (p,))


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def cpu_times():
    """(busy, total) jiffies of the whole machine (all namespaces share /proc/stat)."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def rss_kib(pid, key="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def machine():
    model = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    la = os.getloadavg()
    return (f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, "
            f"load average {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} (1/5/15 min) at start")


def source_state(src, rev=None):
    if not src:
        return "unknown"
    if rev:
        subj = sh("git", "-C", src, "log", "-1", "--format=%s", rev, check=False).stdout.strip()
        return f"{rev[:12]} ({subj[:80]}), built from a clean export of that commit"
    head = sh("git", "-C", src, "rev-parse", "--short=12", "HEAD", check=False).stdout.strip()
    dirty = sh("git", "-C", src, "status", "--porcelain", "--", "src", "include", "meson.build",
               "meson_options.txt", check=False).stdout.split("\n")
    dirty = [l[3:] for l in dirty if l.strip()]
    subj = sh("git", "-C", src, "log", "-1", "--format=%s", check=False).stdout.strip()
    s = f"{head} ({subj[:80]})"
    if dirty:
        s += f" plus uncommitted changes in {', '.join(dirty)}"
    return s


def fmt_rate(x):
    if x is None:
        return "-"
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


class Tunnel:
    def __init__(self, bench, name, port, extra, binary=None):
        self.name, self.port = name, port
        self.bench = bench
        b, a = bench, bench.args
        t0 = time.monotonic()
        binary = binary or a.bin
        common = ["--json", "--no-status", "--relay", f"ws://{A_IP}:{MAILBOX}/v1", "--stun", "", "--turn", "",
                  *extra, *a.peersock_arg]
        for attempt in range(3):
            self.conn = b.start(b.a, [binary, *common, "connect", f"127.0.0.1:{TARGET}"],
                                log=f"{name}-connect-{attempt}.log")
            code = json_event(self.conn, "code", 30)["code"]
            self.lis = b.start(b.b, [binary, *common, "listen", str(port), code], log=f"{name}-listen-{attempt}.log")
            try:
                json_event(self.lis, "authenticated", 60, alive=(self.lis, self.conn))
                json_event(self.conn, "authenticated", 60, alive=(self.lis, self.conn))
                until(f"{name} listening", lambda: b.listening(b.b, port), 20, alive=(self.lis,))
                self.path = json_event(self.lis, "path", 10, alive=(self.lis,))
                self.setup_s = time.monotonic() - t0
                break
            except RuntimeError as e:
                # Not what this benchmark measures: try again (and say so).
                b.notes.append(f"{name}: tunnel set-up attempt {attempt + 1} failed: {e}")
                b.stop(self.conn)
                b.stop(self.lis)
        else:
            raise RuntimeError(f"could not set up the {name} tunnel")

    def close(self):
        self.bench.stop(self.lis)
        self.bench.stop(self.conn)

    def socket_buffers(self):
        """rb/tb of the selected pair's UDP socket on each side (ss -uam)."""
        out = {}
        b = self.bench
        for side, ns, addr in (("listen", b.b, self.path.get("local", "")), ("connect", b.a, self.path.get("remote", ""))):
            port = addr.rsplit(":", 1)[-1]
            txt = sh("ip", "netns", "exec", ns, "ss", "-Huamn", f"sport = :{port}", check=False).stdout
            m = re.search(r"rb(\d+),t\d+,tb(\d+)", txt)
            out[side] = (int(m.group(1)), int(m.group(2))) if m else None
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--nfq-delay", required=True, metavar="PATH", help="the NFQUEUE delay tool (tests/netlab)")
    ap.add_argument("--src", help="source tree (for the commit measured)")
    ap.add_argument("--rev", help="the commit the binary was built from (run.sh --commit)")
    ap.add_argument("--rows", default=",".join(r.key for r in ROWS),
                    help="comma-separated rows to run (default all: %(default)s; diagnostic rows: "
                         + ",".join(r.key for r in DIAG_ROWS) + ")")
    ap.add_argument("--columns", default=",".join(COLUMNS), help="comma-separated columns (default %(default)s)")
    ap.add_argument("--seconds", type=float, default=None, help="time bound of every transfer (default 10 s)")
    ap.add_argument("--relay-cc", default="cubic", choices=["cubic", "bbr"],
                    help="TCP congestion control of the socat and ssh -L legs over the link (default cubic)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="transfers per cell (interleaved); the table shows the median and the range")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--pings", type=int, default=2000)
    ap.add_argument("--no-rss", action="store_true", help="skip the idle-connections (RSS) test")
    ap.add_argument("--no-ping", action="store_true", help="skip the round-trip test")
    ap.add_argument("--perf", metavar="DIR", help="`perf record -g` both peersock (BBR) processes during the "
                                                  "peersock column of --perf-row into DIR (perf.listen, perf.connect), "
                                                  "their system calls by kind (perf stat: syscalls.listen, "
                                                  "syscalls.connect) and the bytes moved (bytes)")
    ap.add_argument("--perf-row", default="unshaped")
    ap.add_argument("--trace-ping", metavar="DIR", help="after the round trips, strace both sides of the BBR "
                                                         "tunnel during 50 more (DIR/strace.listen, .connect)")
    ap.add_argument("--tcp-wmem-max", type=int, metavar="BYTES",
                    help="diagnostic: raise net.ipv4.tcp_wmem's maximum in both namespaces (default: the kernel's)")
    ap.add_argument("--peersock-arg", action="append", default=[], metavar="ARG",
                    help="extra option for every peersock process (repeatable), e.g. --peersock-arg=--debug=quic")
    ap.add_argument("--bin-b", metavar="PATH", help="A/B: a second peersock binary, measured as the column "
                                                    "peersock-b (BBR, a new tunnel per transfer, interleaved)")
    ap.add_argument("--keep-logs", action="store_true")
    a = ap.parse_args()
    rows = [r for r in ROWS + DIAG_ROWS if r.key in a.rows.split(",")]
    columns = [c for c in COLUMNS if c in a.columns.split(",") and (c != "peersock-b" or a.bin_b)]
    if a.seconds:
        for r in rows:
            r.seconds = a.seconds
    header = [f"machine: {machine()}", f"peersock: {a.bin}, commit {source_state(a.src, a.rev)}",
              *([f"peersock B (--bin-b): {a.bin_b}"] if a.bin_b else []),
              f"started: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"]
    for h in header:
        print(h, file=sys.stderr)
    results = {}   # (row, column) -> dict
    extra = {}
    b = Bench(a)
    try:
        run_all(a, b, rows, columns, results, extra)
    except Exception as e:  # report what was measured, and why the rest is missing
        traceback.print_exc()
        b.notes.append(f"the run stopped early: {type(e).__name__}: {e}")
    finally:
        b.close()
    la = os.getloadavg()
    header.append(f"finished: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average {la[0]:.2f} / {la[1]:.2f} / "
                  f"{la[2]:.2f}")
    report(a, header, rows, columns, results, extra, b.notes)


def run_all(a, b, rows, columns, results, extra):
    for ns in (b.a, b.b):
        wmem = sh("ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.tcp_wmem").stdout.split()
        rmem = sh("ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.tcp_rmem").stdout.split()
        if a.tcp_wmem_max:
            wmem[2] = str(a.tcp_wmem_max)
            sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv4.tcp_wmem={' '.join(wmem)}")
        extra["tcp_mem"] = f"tcp_wmem {' '.join(wmem)}, tcp_rmem {' '.join(rmem)}"
    b.set_cc(a.relay_cc)  # ssh's one connection is set up now, with this
    b.start(b.a, ["twistd3", "-n", "--pidfile=", "wormhole-mailbox",
                  f"--port=tcp:{MAILBOX}:interface={A_IP}",
                  f"--channel-db={os.path.join(b.tmp, 'mailbox.sqlite')}"], log="mailbox.log")
    srv = b.start(b.a, [PY, str(NETIO), "serve", "--port", str(TARGET)])
    until("target server", lambda: b.listening(b.a, TARGET), 20, alive=(srv,))
    b.start(b.b, ["socat", "-t", "600", f"TCP-LISTEN:{SOCAT},reuseaddr,fork,backlog=1024",
                  f"TCP:{A_IP}:{TARGET}"], log="socat.log")
    ssh = start_ssh(b) if "ssh" in columns else None
    until("mailbox server", lambda: b.listening(b.a, MAILBOX), 30)
    tunnels = {}
    if "peersock-warm" in columns or not (a.no_rss and a.no_ping):
        tunnels["peersock-warm"] = Tunnel(b, "peersock-warm", LISTEN, [])
        tunnels["peersock-warm"].col = "peersock-warm"
    until("socat listening", lambda: b.listening(b.b, SOCAT), 10)
    if "peersock-warm" in tunnels:
        t = tunnels["peersock-warm"]
        # Idle RSS: both sides have just authenticated; one second for the
        # mailbox close and the first timers to finish (a settle time, not
        # a wait for an event: there is no "idle" event).
        time.sleep(1)
        extra["idle"] = {s: (rss_kib(p.pid), rss_kib(p.pid, "RssAnon")) for s, p in
                         (("listen", t.lis), ("connect", t.conn))}
    for t in tunnels.values():
        extra.setdefault("paths", {})[t.name] = f"{t.path.get('local')} -> {t.path.get('remote')}"
    serial = [0]

    def fresh(col):
        serial[0] += 1
        t = Tunnel(b, f"{col}-{serial[0]}", 6100 + 2 * serial[0] + (col == "peersock-cubic"),
                   PEERSOCK_COLUMNS[col], a.bin_b if col == "peersock-b" else None)
        extra.setdefault("setup", {}).setdefault((row.key, col), []).append(t.setup_s)
        extra.setdefault("bufs", {}).setdefault(col, t.socket_buffers())
        t.col = col
        return t

    for row in rows:
        b.shape(row)
        print(f"row {row.label}", file=sys.stderr)
        runs = {}
        for col in [c for _ in range(a.repeat) for c in columns]:  # repetitions interleaved
            if col in FRESH:
                try:
                    tunnels[col] = fresh(col)  # set up over this row's link
                except Exception as e:
                    traceback.print_exc()
                    b.notes.append(f"{row.label} / {TITLES[col]}: {e}")
                    tunnels.pop(col, None)
            b.wait_quiet(f"{row.label} / {col}")
            try:
                r = measure(b, a, row, col, tunnels)
            except Exception as e:  # one failed cell does not end the run
                traceback.print_exc()
                b.notes.append(f"{row.label} / {TITLES[col]}: {type(e).__name__}: {e}")
                r = {"note": "failed"}
            runs.setdefault(col, []).append(r)
            print(f"  {col}: {r.get('mbytes_per_s')} MB/s {r.get('note', '')}", file=sys.stderr)
            if col in FRESH and col in tunnels:
                tunnels.pop(col).close()
        for col, rs in runs.items():
            results[(row.key, col)] = combine(rs)
    b.shape(Row("unshaped", "unshaped"))
    # New BBR and CUBIC tunnels (and the A/B binary's) on the unshaped link
    # for the round trips.
    for col in ("peersock", "peersock-cubic", "peersock-b"):
        if col in columns:
            row = Row("ping", "ping")
            tunnels[col] = fresh(col)

    if not a.no_ping:
        try:
            ping_test(a, b, tunnels, ssh, extra)
        except Exception as e:
            traceback.print_exc()
            b.notes.append(f"round trips: {type(e).__name__}: {e}")

    if "peersock-warm" in tunnels:
        w = tunnels["peersock-warm"]
        extra["after"] = {s: (rss_kib(p.pid), rss_kib(p.pid, "RssAnon")) for s, p in
                          (("listen", w.lis), ("connect", w.conn))}
    if not a.no_rss and ("peersock" in tunnels or "peersock-warm" in tunnels):
        # On the new BBR tunnel if there is one (it carried only the round
        # trips, so its heap has not been grown and freed by bulk transfers,
        # which would hide what the connections add).
        t = tunnels.get("peersock") or tunnels["peersock-warm"]
        try:
            extra["rss"] = rss_test(b, a, t)
        except Exception as e:
            traceback.print_exc()
            b.notes.append(f"connections/RSS test: {type(e).__name__}: {e}")


def combine(rs):
    """One cell from its repetitions: the median run's numbers (MB/s, CPU,
    marks), all runs' MB/s, summed error counters."""
    ok = [r for r in rs if "mbytes_per_s" in r]
    if not ok:
        return rs[0]
    ok.sort(key=lambda r: r["mbytes_per_s"])
    out = dict(ok[(len(ok) - 1) // 2])  # the lower median: a real run, not an average
    out["runs"] = [r["mbytes_per_s"] for r in ok]
    out["failed"] = len(rs) - len(ok)
    out["cc"] = set().union(*(r.get("cc", set()) for r in ok))
    out["nfq_drops"] = sum(r.get("nfq_drops", 0) for r in ok)
    if "udp" in out:
        out["udp"] = {s: tuple(map(sum, zip(*(r["udp"][s] for r in ok)))) for s in ("a", "b")}
    out["bound"] = "".join(sorted({r["bound"][0] for r in ok}))
    return out


def ping_test(a, b, tunnels, ssh, extra):
    b.wait_quiet("round trips")
    pings = {}
    targets = [("direct TCP", A_IP, TARGET), ("socat relay", "127.0.0.1", SOCAT)]
    if ssh:
        targets.append(("ssh -L", "127.0.0.1", SSH_FWD))
    for name, t in tunnels.items():
        targets.append((TITLES[name], "127.0.0.1", t.port))
    for name, host, port in targets:
        pings[name] = b.run(b.b, [PY, str(NETIO), "pingpong", "--host", host, "--port", str(port),
                                  "--count", str(a.pings)])
    extra["pings"] = pings
    if a.trace_ping and "peersock" in tunnels:
        # strace timelines of both sides over a few round trips (after the
        # measured ones: strace slows every system call down).
        t = tunnels["peersock"]
        os.makedirs(a.trace_ping, exist_ok=True)
        tr = [subprocess.Popen(["strace", "-f", "-tt", "-T", "-p", str(pr.pid), "-o",
                                os.path.join(a.trace_ping, f"strace.{name}")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
              for name, pr in (("listen", t.lis), ("connect", t.conn))]
        for x in tr:  # strace prints "Process N attached" once it is attached
            until("strace attached", lambda x=x: "attached" in (x.stderr.readline() or "attached"), 20)
        b.run(b.b, [PY, str(NETIO), "pingpong", "--host", "127.0.0.1", "--port", str(t.port), "--count", "50"])
        for x in tr:
            x.send_signal(2)
            x.wait(timeout=30)


def start_ssh(b):
    """sshd inside ns A on a test port with a throwaway host key, and
    ssh -L from ns B with a throwaway user key (both in the temp dir)."""
    t = b.tmp
    for k in ("host_key", "user_key"):
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "peersock-bench", "-f", os.path.join(t, k))
    shutil.copy(os.path.join(t, "user_key.pub"), os.path.join(t, "authorized_keys"))
    user = pwd.getpwuid(os.getuid()).pw_name
    with open(os.path.join(t, "sshd_config"), "w") as f:
        f.write(f"""Port {SSHD}
ListenAddress {A_IP}
HostKey {t}/host_key
PidFile none
AuthorizedKeysFile {t}/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowTcpForwarding local
X11Forwarding no
PrintMotd no
Ciphers aes128-gcm@openssh.com
""")
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    sshd = b.start(b.a, ["/usr/sbin/sshd", "-D", "-e", "-f", os.path.join(t, "sshd_config")], log="sshd.log")
    until("sshd listening", lambda: b.listening(b.a, SSHD), 20, alive=(sshd,))
    ssh = b.start(b.b, ["ssh", "-N", "-F", "/dev/null", "-i", os.path.join(t, "user_key"), "-p", str(SSHD),
                        "-c", "aes128-gcm@openssh.com", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                        "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={t}/known_hosts",
                        "-o", "ExitOnForwardFailure=yes", "-o", "Compression=no",
                        "-L", f"127.0.0.1:{SSH_FWD}:127.0.0.1:{TARGET}", f"{user}@{A_IP}"], log="ssh.log")
    until("ssh -L listening", lambda: b.listening(b.b, SSH_FWD), 30, alive=(ssh,))
    return ssh


def measure(b, a, row, col, tunnels):
    """One time/byte-bounded transfer for one column on the current link."""
    out = {}
    if col in ("tcp-cubic", "tcp-bbr"):
        b.set_cc(col.split("-")[1])
        host, port, ssport = A_IP, TARGET, TARGET
    elif col == "socat":
        b.set_cc(a.relay_cc)
        host, port, ssport = "127.0.0.1", SOCAT, TARGET
    elif col == "ssh":
        host, port, ssport = "127.0.0.1", SSH_FWD, SSHD
    else:
        if col not in tunnels:
            return {"note": "not run"}
        t = tunnels[col]
        host, port, ssport = "127.0.0.1", t.port, None
    out["cc"] = set()
    udp0 = b.udp_counters() if ssport is None else None
    nfq0 = b.nfq_counters()
    loss0 = b.loss_counters()
    qd0 = b.qdisc_drops()
    perfs = []
    if ssport is None and a.perf and col == "peersock" and row.key == a.perf_row:
        os.makedirs(a.perf, exist_ok=True)
        for name, proc in (("listen", t.lis), ("connect", t.conn)):
            pf = subprocess.Popen(["perf", "record", "-q", "-g", "-p", str(proc.pid), "-o",
                                   os.path.join(a.perf, f"perf.{name}")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            perfs.append(pf)
            # System calls by kind over the same transfer (DIR/syscalls.NAME).
            pf = subprocess.Popen(["perf", "stat", "-x", ",", "-o", os.path.join(a.perf, f"syscalls.{name}"),
                                   "-p", str(proc.pid)] + [x for sc in PERF_SYSCALLS
                                                          for x in ("-e", f"syscalls:sys_enter_{sc}")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            perfs.append(pf)
        time.sleep(1)  # perf attaches asynchronously; it prints nothing to wait for
    if ssport is None:
        c0 = (cpu_seconds(t.lis.pid), cpu_seconds(t.conn.pid))
    d0 = [cpu_seconds(p.pid) for p in b.delayers]
    m0 = cpu_times()
    w0 = time.monotonic()
    client = subprocess.Popen(["ip", "netns", "exec", b.b, PY, str(NETIO), "timed", "--host", host,
                               "--port", str(port), "--seconds", str(row.seconds), "--bytes", str(row.mib << 20)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if ssport is not None:
        # Which congestion control the link's sending socket really uses.
        deadline = time.monotonic() + min(5, row.seconds)
        while time.monotonic() < deadline and client.poll() is None and not out["cc"]:
            out["cc"] = b.tcp_cc_seen(ssport)
            time.sleep(0.1)
    try:
        so, se = client.communicate(timeout=row.seconds + 180)
    except subprocess.TimeoutExpired:
        client.kill()
        so, se = client.communicate()
    if ssport is None:
        c1 = (cpu_seconds(t.lis.pid), cpu_seconds(t.conn.pid))
    wall = time.monotonic() - w0
    m1 = cpu_times()
    out["machine_busy"] = 100 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
    # CPU use over the whole transfer (client start to report), in % of one core
    if ssport is None:
        out["util"] = {"listen": 100 * (c1[0] - c0[0]) / wall, "connect": 100 * (c1[1] - c0[1]) / wall}
    if b.delayers:
        out.setdefault("util", {})["nfq"] = max(100 * (cpu_seconds(p.pid) - x) / wall
                                                 for p, x in zip(b.delayers, d0))
    for pf in perfs:
        pf.send_signal(2)
        pf.wait(timeout=120)
    if client.returncode != 0:
        last = (se.strip().splitlines() or ["(no output)"])[-1][-300:]
        out["note"] = f"failed: {last}"
        b.notes.append(f"{row.label} / {TITLES[col]}: transfer failed after {time.monotonic() - w0:.1f} s: {last}")
        return out
    r = json.loads(so.strip().splitlines()[-1])
    out.update(r)
    if perfs:
        with open(os.path.join(a.perf, "bytes"), "w") as f:
            f.write(f"{r['bytes']}\n")
    if ssport is None:
        out["udp"] = {s: tuple(x - y for x, y in zip(b.udp_counters()[s], udp0[s])) for s in ("a", "b")}
        gib = r["bytes"] / (1 << 30)
        out["cpu"] = ((c1[0] - c0[0]) / gib if gib else None, (c1[1] - c0[1]) / gib if gib else None)
    out["nfq_drops"] = b.nfq_counters() - nfq0
    loss1 = b.loss_counters()
    out["link_loss"] = (loss1[0] - loss0[0], loss1[1] - loss0[1])
    out["qdisc_drops"] = b.qdisc_drops() - qd0
    return out


def rss_test(b, a, t):
    res = {}
    b.wait_quiet("the connections test")
    after = {s: (rss_kib(p.pid), rss_kib(p.pid, "RssAnon")) for s, p in (("listen", t.lis), ("connect", t.conn))}
    holder = b.start(b.b, [PY, str(NETIO), "hold", "--port", str(t.port), "--count", str(a.connections),
                           "--wait", "60"], stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    held = json.loads(holder.stdout.readline())
    many = {s: (rss_kib(p.pid), rss_kib(p.pid, "RssAnon")) for s, p in (("listen", t.lis), ("connect", t.conn))}
    peak = {s: rss_kib(p.pid, "VmHWM") for s, p in (("listen", t.lis), ("connect", t.conn))}
    # One bulk transfer while the carried connections stay open. The tunnel
    # carries a limited number of streams at once (the peer's QUIC stream
    # limit) and a connection beyond it waits until one ends: close the
    # connections that are still waiting, and two carried ones, so that the
    # bulk connection gets a stream.
    held["idle_during_bulk"] = held["echoed"]
    if held["echoed"] < held["opened"]:
        holder.stdin.write("trim 2\n")
        holder.stdin.flush()
        held["idle_during_bulk"] = json.loads(holder.stdout.readline())["open"]
    b.wait_quiet("the bulk run with idle connections")
    bulk = b.run(b.b, [PY, str(NETIO), "timed", "--port", str(t.port), "--seconds", "10",
                       "--bytes", str(1 << 30)])
    holder.stdin.close()
    holder.wait(timeout=60)
    res.update(before=after, many=many, peak=peak, held=held, bulk=bulk, tunnel=TITLES[t.col])
    return res


def report(a, header, rows, columns, results, extra, notes):
    out = []
    p = out.append

    def column_table(table_rows, cell):
        """One row per link, one cell per column: cell(result dict) -> text."""
        p("| link | " + " | ".join(TITLES[c] for c in columns) + " |")
        p("|---" * (len(columns) + 1) + "|")
        for r in table_rows:
            p(f"| {r.label} | " + " | ".join(cell(results.get((r.key, c), {})) for c in columns) + " |")
    for h in header:
        p(h)
    p("")
    cc_used = {"tcp-cubic": "cubic", "tcp-bbr": "bbr", "socat": a.relay_cc, "ssh": a.relay_cc}
    p("Congestion control per column: TCP CUBIC and TCP BBR set with `ip route replace ... congctl` on the route "
      f"both namespaces use; socat and ssh -L legs over the link: {a.relay_cc} (same way); peersock: its own "
      "QUIC congestion control (ngtcp2), BBR by default, `--congestion cubic` on both sides for the CUBIC column. "
      "`ss -ti` on B's sending socket during each TCP transfer showed:")
    for col in columns:
        if col in cc_used:
            seen = [",".join(sorted(results.get((r.key, col), {}).get("cc") or {"(none seen)"})) for r in rows]
            p(f"- {TITLES[col]} (route congctl {cc_used[col]}): {'; '.join(sorted(set(seen)))}")
    p("")
    p(f"TCP buffers in both namespaces: {extra.get('tcp_mem', '?')}" +
      (" (tcp_wmem maximum raised by --tcp-wmem-max)" if a.tcp_wmem_max else " (the kernel's defaults)") + ".")
    p("")
    p("Delay and loss apply to each direction (both namespaces' input); RTT = 2 x one-way delay. Rows with delay "
      "or loss run with TSO/GSO/GRO off on the veth (wire-sized packets); unshaped and 1 Gbit/s rows with the "
      "defaults. Each transfer: until the sink counted the row's MiB or for its seconds, whichever came first, "
      "measured by the sink from its first to its last counted byte. "
      + (f"Each cell: the median of {a.repeat} transfers (interleaved with the other columns), lowest-highest in "
         "parentheses; the other tables show the median transfer (error counters: the sum)." if a.repeat > 1 else ""))
    p("")
    pcols = [c for c in PEERSOCK_COLUMNS if c in columns]
    short = {"peersock": "BBR", "peersock-cubic": "CUBIC", "peersock-warm": "warm", "peersock-b": "B"}
    p("| link | " + " | ".join(TITLES[c] for c in columns) + " | " +
      " | ".join(f"{short[c]} / best TCP" for c in pcols) + " |")
    p("|---" * (len(columns) + len(pcols) + 1) + "|")
    for r in rows:
        cells = []
        for c in columns:
            x = results.get((r.key, c), {})
            if "mbytes_per_s" in x:
                cell = fmt_rate(x["mbytes_per_s"])
                if len(x.get("runs", [])) > 1:
                    cell += f" ({fmt_rate(x['runs'][0])}-{fmt_rate(x['runs'][-1])})"
                if x.get("failed"):
                    cell += f" [{x['failed']} failed]"
                cells.append(cell)
            else:
                cells.append(x.get("note", "-")[:40])
        best = max([results.get((r.key, c), {}).get("mbytes_per_s") or 0 for c in ("tcp-cubic", "tcp-bbr")])
        ratios = []
        for c in pcols:
            v = results.get((r.key, c), {}).get("mbytes_per_s")
            ratios.append(f"{v / best:.2f}" if v is not None and best else "-")
        p(f"| {r.label} ({r.mib} MiB / {r.seconds:g} s) | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    p("")
    p("MB/s = 10^6 bytes/s of payload at the sink. Which bound ended each transfer (b = bytes, t = time):")
    for r in rows:
        p(f"- {r.label}: " + ", ".join(f"{TITLES[c]} {results.get((r.key, c), {}).get('bound', '?')}"
                                       for c in columns))
    p("")
    p("Second half of each time-bounded transfer (MB/s between the sink's whole-second marks nearest to half and "
      "end of the window; shows the rate after start-up, '-' where the transfer ended by bytes):")
    p("")
    def second_half(x):
        m = x.get("marks") or []
        if x.get("bound") != "t" or len(m) < 2:
            return "-"
        h = len(m) // 2
        return fmt_rate((m[-1] - m[h - 1]) / (len(m) - h) / 1e6)
    column_table(rows, second_half)
    p("")
    p("UDP errors during the peersock transfers (Udp InErrors / RcvbufErrors / SndbufErrors, /proc/net/snmp, "
      "after minus before) and packets NFQUEUE dropped itself (all columns of the row):")
    p("")
    p("| link | column | ns A (connect, receiving) | ns B (listen, sending) | NFQUEUE drops |")
    p("|---|---|---|---|---|")
    for r in rows:
        for c in columns:
            x = results.get((r.key, c), {})
            if "udp" in x:
                p(f"| {r.label} | {TITLES[c]} | {' / '.join(map(str, x['udp']['a']))} | "
                  f"{' / '.join(map(str, x['udp']['b']))} | {x.get('nfq_drops', '-')} |")
    p("")
    shaped = [r for r in rows if r.rate]
    if shaped:
        p("Packets the tbf qdiscs dropped (both veth ends, the median transfer): " + "; ".join(
            f"{r.label}: " + ", ".join(f"{TITLES[c]} {results.get((r.key, c), {}).get('qdisc_drops', '-')}"
                                       for c in columns) for r in shaped))
        p("")
    lossy = [r for r in rows if r.loss]
    if lossy:
        p("Loss the link applied (packets the iptables random-drop rules dropped / packets sent on the veth, "
          "both directions, the median transfer):")
        p("")
        def link_loss(x):
            ll = x.get("link_loss")
            return f"{ll[0]} / {ll[1]} ({100 * ll[0] / max(1, ll[1]):.2f} %)" if ll else "-"
        column_table(lossy, link_loss)
        p("")
    p("CPU use during each transfer (% of one core, from /proc/PID/stat over the transfer's wall time): both "
      "peersock processes, and the busier of the two nfq-delay processes (the delay tool; a row whose delay tool "
      "is near 100 % measures the tool), and how busy the whole machine was ('all', % of all cores, other users' "
      "processes included):")
    p("")
    def cpu_use(x):
        u = x.get("util", {})
        parts = []
        if "listen" in u:
            parts.append(f"listen {u['listen']:.0f}, connect {u['connect']:.0f}")
        if "nfq" in u:
            parts.append(f"nfq {u['nfq']:.0f}")
        if x.get("machine_busy") is not None:
            parts.append(f"all {x['machine_busy']:.0f}")
        return "; ".join(parts) or "-"
    column_table(rows, cpu_use)
    tcp_nfq = [(r.label, TITLES[c], results[(r.key, c)].get("nfq_drops")) for r in rows for c in columns
               if (r.key, c) in results and results[(r.key, c)].get("nfq_drops") and "udp" not in results[(r.key, c)]]
    for lbl, c, n in tcp_nfq:
        p(f"\nNFQUEUE dropped {n} packets during {lbl} / {c}.")
    p("")
    p("| measurement | value |")
    p("|---|---|")
    for c in pcols:
        x = results.get(("unshaped", c), {})
        if x.get("cpu") and x["cpu"][0] is not None:
            p(f"| CPU per GiB, unshaped, {TITLES[c]}: sending side (listen) / receiving side (connect) | "
              f"{x['cpu'][0]:.2f} / {x['cpu'][1]:.2f} core-s/GiB |")
    for name, pth in extra.get("paths", {}).items():
        p(f"| ICE path, {name} (listen side) | {pth} |")
    for c, bufs in extra.get("bufs", {}).items():
        def kib(x):
            return f"{x[0] // 1024} / {x[1] // 1024} KiB" if x else "not found"
        p(f"| UDP socket buffers of the selected pair (ss -uam rb / tb), {TITLES[c]}: listen; connect | "
          f"{kib(bufs['listen'])}; {kib(bufs['connect'])} |")
    for c in ("peersock", "peersock-cubic"):
        st = [f"{r.label} {'/'.join(f'{x:.1f}' for x in extra['setup'][(r.key, c)])}" for r in rows
              if (r.key, c) in extra.get("setup", {})]
        if st:
            p(f"| tunnel set-up (start to authenticated and listening), {TITLES[c]}, s | {'; '.join(st)} |")
    if "pings" in extra:
        for name, v in extra["pings"].items():
            p(f"| 64-byte request/response round trip, median (mean): {name} | {v['median_us']:.0f} "
              f"({v['mean_us']:.0f}) us |")
    if "idle" in extra:
        i = extra["idle"]
        p(f"| RSS idle (after auth): listen / connect | {i['listen'][0] / 1024:.1f} / {i['connect'][0] / 1024:.1f}"
          f" MiB (RssAnon {i['listen'][1] / 1024:.1f} / {i['connect'][1] / 1024:.1f}) |")
    if "after" in extra:
        af = extra["after"]
        p(f"| RSS of the warm tunnel after all transfers: listen / connect | {af['listen'][0] / 1024:.1f} / "
          f"{af['connect'][0] / 1024:.1f} MiB (RssAnon {af['listen'][1] / 1024:.1f} / "
          f"{af['connect'][1] / 1024:.1f}) |")
    if "rss" in extra:
        rs = extra["rss"]
        n = max(1, rs["held"]["echoed"])
        af, mn = rs["before"], rs["many"]
        p(f"| connections test on: {rs['tunnel']}; its RSS before: listen / connect | {af['listen'][0] / 1024:.1f} / "
          f"{af['connect'][0] / 1024:.1f} MiB |")
        p(f"| RSS with {rs['held']['opened']} connections opened ({rs['held']['echoed']} carried at once): "
          f"listen / connect | {mn['listen'][0] / 1024:.1f} / {mn['connect'][0] / 1024:.1f} MiB |")
        p(f"| RSS per extra carried connection: listen / connect | {(mn['listen'][0] - af['listen'][0]) / n:.1f} / "
          f"{(mn['connect'][0] - af['connect'][0]) / n:.1f} KiB (RssAnon "
          f"{(mn['listen'][1] - af['listen'][1]) / n:.1f} / {(mn['connect'][1] - af['connect'][1]) / n:.1f}) |")
        p(f"| peak RSS (VmHWM): listen / connect | {rs['peak']['listen'] / 1024:.1f} / "
          f"{rs['peak']['connect'] / 1024:.1f} MiB |")
        p(f"| throughput, unshaped, with {rs['held']['idle_during_bulk']} idle connections open: {rs['tunnel']} | "
          f"{fmt_rate(rs['bulk']['mbytes_per_s'])} MB/s |")
        if rs["held"]["echoed"] < rs["held"]["opened"]:
            notes.append(f"only {rs['held']['echoed']} of {rs['held']['opened']} connections were carried at once; "
                         "the others waited (for a QUIC stream) until the test closed them")
    p("")
    p("Goals (printed, not asserted):")
    def best_tcp(key):
        return max([results.get((key, c), {}).get("mbytes_per_s") or 0 for c in ("tcp-cubic", "tcp-bbr")])
    for r in rows:
        ps = results.get((r.key, "peersock"), {}).get("mbytes_per_s")
        if r.key == "unshaped" or r in DIAG_ROWS or ps is None or not best_tcp(r.key):
            continue
        goal = 0.95 if r.key == "1gbit" else 0.9
        ratio = ps / best_tcp(r.key)
        p(f"- {r.label}: peersock (BBR) / best TCP >= {goal}: {ratio:.2f}, {'met' if ratio >= goal else 'not met'}")
    x = results.get(("unshaped", "peersock"), {})
    if "mbytes_per_s" in x:
        p(f"- unshaped >= 300 MB/s: {x['mbytes_per_s']:.0f}, {'met' if x['mbytes_per_s'] >= 300 else 'not met'}")
    if x.get("cpu") and x["cpu"][0] is not None:
        ok = max(x["cpu"]) <= 1.5
        p(f"- <= 1.5 CPU-s/GiB per side: {x['cpu'][0]:.2f} / {x['cpu'][1]:.2f}, {'met' if ok else 'not met'}")
    if "pings" in extra and "ssh -L" in extra["pings"] and TITLES["peersock"] in extra["pings"]:
        ps, ss = extra["pings"][TITLES["peersock"]]["median_us"], extra["pings"]["ssh -L"]["median_us"]
        p(f"- 64-byte round trip <= ssh -L's: {ps:.0f} vs {ss:.0f} us, {'met' if ps <= ss else 'not met'}")
    for n_ in notes:
        p(f"\nnote: {n_}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
