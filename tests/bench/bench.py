#!/usr/bin/python3
"""peersock benchmark: one tunnel between two network namespaces joined by a
veth pair, compared in the same run with direct TCP and with socat as a
plain relay. Prints a Markdown table; never asserts anything.

Run it with tests/bench/run.sh (builds release binaries first), as root.

  ns A (10.77.0.1): mailbox server, target server (netio.py serve :5001),
                    `peersock connect 127.0.0.1:5001` (generates the code)
  ns B (10.77.0.2): `peersock listen 6000 CODE`, socat 6001 -> 10.77.0.1:5001,
                    the clients

direct  = client in B -> 10.77.0.1:5001
tunnel  = client in B -> 127.0.0.1:6000 -> QUIC over UDP -> A -> 127.0.0.1:5001
socat   = client in B -> 127.0.0.1:6001 -> TCP -> A:5001
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETIO = HERE / "netio.py"
PY = "/usr/bin/python3"
A_IP, B_IP = "10.77.0.1", "10.77.0.2"
TARGET, LISTEN, SOCAT = 5001, 6000, 6001
CLK = os.sysconf("SC_CLK_TCK")


def sh(*argv, check=True):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r


class Bench:
    def __init__(self, binary, log):
        tag = f"{os.getpid() % 100000}"
        self.a, self.b = f"psk-bench-{tag}-a", f"psk-bench-{tag}-b"
        self.va, self.vb = f"pb{tag}a", f"pb{tag}b"
        self.bin = binary
        self.procs = []
        self.log = log
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
        deadline = time.monotonic() + 20
        for ns, dev in ((self.a, self.va), (self.b, self.vb)):
            while "state UP" not in sh("ip", "-n", ns, "-o", "link", "show", "dev", dev).stdout:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{dev} in {ns} did not come up")
                time.sleep(0.05)

    def start(self, ns, argv, **kw):
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE,
                             stderr=kw.pop("stderr", subprocess.PIPE), stdin=kw.pop("stdin", subprocess.DEVNULL),
                             text=True, **kw)
        self.procs.append(p)
        return p

    def run(self, ns, argv, timeout=600):
        r = subprocess.run(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr.strip()[-500:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        for ns in (self.a, self.b):
            sh("ip", "netns", "del", ns, check=False)

    # -- link conditions
    def shape(self, rate=None, loss=None, delay_ms=None, nfq_delay=None):
        """rate: tbf on both veth ends; loss: iptables random drop on both
        ends' input; delay_ms (one way): nfq-delay on both ends' input (this
        kernel has no sch_netem)."""
        for p in getattr(self, "delayers", []):
            p.terminate()
            p.wait(timeout=10)
        self.delayers = []
        for ns, dev in ((self.a, self.va), (self.b, self.vb)):
            sh("tc", "-n", ns, "qdisc", "del", "dev", dev, "root", check=False)
            if rate:
                sh("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "1mb",
                   "latency", "20ms")
            sh("ip", "netns", "exec", ns, "iptables", "-F", "INPUT", check=False)
            if delay_ms:
                # nfq-delay takes whole loss percentages: the loss comes from
                # the statistic match before the queue instead.
                if loss:
                    sh("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-i", dev, "-m", "statistic", "--mode",
                       "random", "--probability", str(loss), "-j", "DROP")
                p = self.start(ns, [nfq_delay, "--queue", "0", "--delay-ms", str(delay_ms)])
                if p.stdout.readline().strip() != "ready":
                    raise RuntimeError("nfq-delay did not start")
                self.delayers.append(p)
                sh("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-i", dev, "-j", "NFQUEUE",
                   "--queue-num", "0")
            elif loss:
                sh("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-i", dev, "-m", "statistic", "--mode",
                   "random", "--probability", str(loss), "-j", "DROP")


def wait_line(p, pattern, timeout, stream="stderr"):
    f = getattr(p, stream)
    fd = f.fileno()
    os.set_blocking(fd, False)
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    lines = []
    buf = p.__dict__.setdefault("_psk_buf", {}).get(stream, "")
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            chunk = None
        if chunk:
            buf += chunk.decode("utf-8", "replace")
            *done, buf = buf.split("\n")
            for i, line in enumerate(done):
                lines.append(line)
                m = rx.search(line)
                if m:
                    p._psk_buf[stream] = "\n".join(done[i + 1:] + [buf])
                    return m
        elif chunk == b"" or p.poll() is not None:
            break
        else:
            time.sleep(0.05)
    raise RuntimeError(f"waited for {pattern!r}; got: {lines[-20:]}")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_kib(pid, key="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def peersock_pid(wrapper):
    """The peersock process under `ip netns exec` (exec'd in place)."""
    return wrapper.pid


def machine():
    model = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, load average {os.getloadavg()[0]:.2f} at start"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mib", type=int, default=512, help="bulk size per unshaped run (MiB)")
    ap.add_argument("--shaped-mib", type=int, default=256)
    ap.add_argument("--lossy-mib", type=int, default=128)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--pings", type=int, default=2000)
    ap.add_argument("--delay-mib", type=int, default=8, help="bulk size with 50 ms RTT and loss (MiB)")
    ap.add_argument("--nfq-delay", metavar="PATH", default=None,
                    help="the NFQUEUE delay tool of tests/netlab (default: build/tests/netlab/nfq-delay if built)")
    ap.add_argument("--perf", metavar="DIR", help="record `perf record` of both peersock processes during the "
                                                  "unshaped tunnel run into DIR (perf.listen, perf.connect)")
    ap.add_argument("--perf-phase", choices=["bulk", "idle-connections"], default="bulk",
                    help="which tunnel run --perf records: the unshaped bulk run, or the bulk run with the idle "
                         "connections open")
    ap.add_argument("--only-unshaped", action="store_true", help="skip the shaped/lossy runs and the RSS runs")
    a = ap.parse_args()
    rows = []
    notes = []
    b = Bench(a.bin, sys.stderr)
    try:
        mailbox = b.start(b.a, ["twistd3", "-n", "--pidfile=", "wormhole-mailbox",
                                f"--port=tcp:4000:interface={A_IP}", f"--channel-db={os.path.join('/tmp', b.a + '.sqlite')}"])
        b.start(b.a, [PY, str(NETIO), "serve", "--port", str(TARGET)])
        b.start(b.b, ["socat", f"TCP-LISTEN:{SOCAT},reuseaddr,fork,backlog=1024", f"TCP:{A_IP}:{TARGET}"])
        # the mailbox needs a moment: retry its port from B
        deadline = time.monotonic() + 30
        while subprocess.run(["ip", "netns", "exec", b.b, PY, "-c",
                              f"import socket; socket.create_connection(('{A_IP}', 4000), 1)"],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("mailbox did not start")
            time.sleep(0.2)
        common = ["--relay", f"ws://{A_IP}:4000/v1", "--stun", "", "--turn", ""]
        for attempt in range(3):
            conn = b.start(b.a, [a.bin, *common, "connect", f"127.0.0.1:{TARGET}"])
            code = wait_line(conn, r"Connection code: (\S+)", 30).group(1)
            lis = b.start(b.b, [a.bin, *common, "listen", str(LISTEN), code])
            try:
                wait_line(lis, r"authenticated", 60)
                wait_line(conn, r"authenticated", 60)
                break
            except RuntimeError as e:
                # Not what this benchmark measures: try again (and say so).
                notes.append(f"tunnel set-up attempt {attempt + 1} failed: {e}")
                for p in (conn, lis):
                    p.terminate()
                    p.wait(timeout=10)
        else:
            raise RuntimeError("could not set up the tunnel")
        time.sleep(1)  # let both settle (mailbox closed, timers quiet) before reading idle RSS
        idle = {"connect": rss_kib(conn.pid), "listen": rss_kib(lis.pid)}
        idle_anon = {"connect": rss_kib(conn.pid, "RssAnon"), "listen": rss_kib(lis.pid, "RssAnon")}

        def start_perf():
            perfs = []
            if a.perf:
                os.makedirs(a.perf, exist_ok=True)
                for name, proc in (("listen", lis), ("connect", conn)):
                    perfs.append(subprocess.Popen(["perf", "record", "-q", "-p", str(proc.pid), "-o",
                                                   os.path.join(a.perf, f"perf.{name}")],
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                time.sleep(1)
            return perfs

        def stop_perf(perfs):
            for pr in perfs:
                pr.send_signal(2)
                pr.wait(timeout=60)

        def bulk(host, port, nbytes):
            return b.run(b.b, [PY, str(NETIO), "bulk", "--host", host, "--port", str(port), "--bytes", str(nbytes)])

        def trio(label, nbytes, measure_cpu=False):
            d = bulk(A_IP, TARGET, nbytes)
            perfs = start_perf() if measure_cpu and a.perf_phase == "bulk" else []
            c0 = (cpu_seconds(conn.pid), cpu_seconds(lis.pid))
            t = bulk("127.0.0.1", LISTEN, nbytes)
            c1 = (cpu_seconds(conn.pid), cpu_seconds(lis.pid))
            stop_perf(perfs)
            s = bulk("127.0.0.1", SOCAT, nbytes)
            def rate(x):
                return f"{x:.0f}" if x >= 10 else f"{x:.2g}"
            rows.append((f"throughput, {label}: tunnel / direct TCP",
                         f"{rate(t['mbytes_per_s'])} / {rate(d['mbytes_per_s'])} MB/s",
                         f"{t['mbytes_per_s'] / d['mbytes_per_s']:.2g}"))
            rows.append((f"throughput, {label}: socat relay / direct TCP",
                         f"{rate(s['mbytes_per_s'])} / {rate(d['mbytes_per_s'])} MB/s",
                         f"{s['mbytes_per_s'] / d['mbytes_per_s']:.2g}"))
            if measure_cpu:
                gib = nbytes / (1 << 30)
                rows.append(("CPU per GiB through the tunnel, sending side (listen)",
                             f"{(c1[1] - c0[1]) / gib:.2f} core-s/GiB", ""))
                rows.append(("CPU per GiB through the tunnel, receiving side (connect)",
                             f"{(c1[0] - c0[0]) / gib:.2f} core-s/GiB", ""))

        b.shape()
        trio("unshaped veth", a.mib << 20, measure_cpu=True)
        p_direct = b.run(b.b, [PY, str(NETIO), "pingpong", "--host", A_IP, "--port", str(TARGET), "--count", str(a.pings)])
        p_tunnel = b.run(b.b, [PY, str(NETIO), "pingpong", "--host", "127.0.0.1", "--port", str(LISTEN),
                               "--count", str(a.pings)])
        rows.append(("request/response round trip (64 B, median): tunnel / direct",
                     f"{p_tunnel['median_us']:.0f} / {p_direct['median_us']:.0f} us",
                     f"{p_tunnel['median_us'] / p_direct['median_us']:.2f}"))
        if a.only_unshaped:
            return print_table(rows, notes, a)
        b.shape(rate="1gbit")
        trio("1 Gbit/s tbf", a.shaped_mib << 20)
        b.shape(loss=0.005)
        trio("0.5 % random loss, no added delay", a.lossy_mib << 20)
        nfq = a.nfq_delay or str(Path(__file__).resolve().parents[2] / os.environ.get("BUILD_DIR", "build") /
                                 "tests" / "netlab" / "nfq-delay")
        if os.access(nfq, os.X_OK):
            b.shape(delay_ms=25, loss=0.005, nfq_delay=nfq)
            trio("50 ms RTT (25 ms each way) + 0.5 % loss each way (nfq-delay)", a.delay_mib << 20)
        else:
            notes.append(f"50 ms RTT with 0.5 % loss: not measured: no delay tool ({nfq} not built; sch_netem is "
                         "absent on this kernel)")
            rows.append(("throughput, 50 ms RTT + 0.5 % loss", "not measured: no delay tool", ""))
        b.shape()

        after_bulk = {"connect": rss_kib(conn.pid), "listen": rss_kib(lis.pid)}
        after_bulk_anon = {"connect": rss_kib(conn.pid, "RssAnon"), "listen": rss_kib(lis.pid, "RssAnon")}
        holder = b.start(b.b, [PY, str(NETIO), "hold", "--port", str(LISTEN), "--count", str(a.connections),
                               "--wait", "30"], stdin=subprocess.PIPE)
        line = holder.stdout.readline()
        held = json.loads(line)
        many = {"connect": rss_kib(conn.pid), "listen": rss_kib(lis.pid)}
        many_anon = {"connect": rss_kib(conn.pid, "RssAnon"), "listen": rss_kib(lis.pid, "RssAnon")}
        peak = {"connect": rss_kib(conn.pid, "VmHWM"), "listen": rss_kib(lis.pid, "VmHWM")}
        # One bulk run while all those connections stay open: every QUIC run
        # polls every connection, so this shows what many idle ones cost.
        perfs = start_perf() if a.perf_phase == "idle-connections" else []
        t_idle = bulk("127.0.0.1", LISTEN, (a.mib << 20) // 2)
        stop_perf(perfs)
        rows.append((f"throughput, unshaped, with the {held['echoed']} idle connections open: tunnel",
                     f"{t_idle['mbytes_per_s']:.0f} MB/s", ""))
        holder.stdin.close()
        holder.wait(timeout=30)
        def mib2(d):
            return f"{d['listen'] / 1024:.1f} / {d['connect'] / 1024:.1f} MiB"
        rows.append(("RSS idle (after auth): listen / connect", mib2(idle), ""))
        rows.append(("  of which private (RssAnon; the rest is shared library pages)", mib2(idle_anon), ""))
        rows.append(("RSS after the bulk runs: listen / connect",
                     f"{after_bulk['listen'] / 1024:.1f} / {after_bulk['connect'] / 1024:.1f} MiB", ""))
        n = max(1, held["echoed"])
        rows.append((f"RSS with {a.connections} connections opened ({held['echoed']} carried at once): listen / connect",
                     f"{many['listen'] / 1024:.1f} / {many['connect'] / 1024:.1f} MiB", ""))
        rows.append(("  of which private (RssAnon)", mib2(many_anon), ""))
        rows.append(("RSS per extra open (carried) connection, vs after bulk: listen / connect",
                     f"{(many['listen'] - after_bulk['listen']) / n:.1f} / {(many['connect'] - after_bulk['connect']) / n:.1f} KiB", ""))
        rows.append(("RssAnon per extra open (carried) connection: listen / connect",
                     f"{(many_anon['listen'] - after_bulk_anon['listen']) / n:.1f} / "
                     f"{(many_anon['connect'] - after_bulk_anon['connect']) / n:.1f} KiB", ""))
        rows.append(("peak RSS (VmHWM) over the whole run: listen / connect",
                     f"{peak['listen'] / 1024:.1f} / {peak['connect'] / 1024:.1f} MiB", ""))
        if held["echoed"] < held["opened"]:
            notes.append(f"only {held['echoed']} of {held['opened']} connections were carried at once: OpenSSL 3.5 "
                         "lets a peer open 100 streams at a time (2 are control and auth); the rest wait in the "
                         "kernel's accept queue until streams end")
    finally:
        b.close()
    print_table(rows, notes, a)


def print_table(rows, notes, a):
    print(f"machine: {machine()}")
    print(f"binary: {a.bin}")
    print()
    print("| measurement | value | ratio |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    for n_ in notes:
        print(f"\nnote: {n_}")


if __name__ == "__main__":
    main()
