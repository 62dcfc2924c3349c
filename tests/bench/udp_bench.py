#!/usr/bin/python3
"""UDP through listen-udp / connect-udp against UDP over the bare link:
iperf3 -u at 100, 500 and 1000 Mbit/s offered, between two network
namespaces this script creates and joins with one veth pair (no shaping).
Prints one Markdown table; asserts nothing (a benchmark, not a test).

  ns A (10.78.0.1): mailbox server, iperf3 -s, `peersock connect-udp
                    127.0.0.1:5201` and `peersock connect 127.0.0.1:5201`
                    (iperf3's control connection is TCP)
  ns B (10.78.0.2): `peersock listen-udp 5201` and `peersock listen 5201`,
                    and the iperf3 client

direct   = iperf3 in B -> 10.78.0.1:5201 (UDP over the veth)
peersock = iperf3 in B -> 127.0.0.1:5201 -> QUIC DATAGRAM frames over the
           veth -> A -> 127.0.0.1:5201

Run as root: tests/bench/udp_bench.py [--peersock build/peersock] [--seconds 5]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
A_IP, B_IP = "10.78.0.1", "10.78.0.2"
PORT, MAILBOX, ECHO = 5201, 4000, 7007
UDP_TOOL = REPO / "tests" / "e2e" / "udp_tool.py"
# One datagram at a time to an echo server, COUNT round trips: the latency
# the tunnel adds is half the difference of the round trips (one way).
PINGER = r"""
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
s.settimeout(1.0)
rtts = []
for i in range(count):
    t = time.perf_counter()
    s.send(i.to_bytes(4, "big") + b"x" * 60)
    try:
        while int.from_bytes(s.recv(2048)[:4], "big") != i:
            pass
    except socket.timeout:
        continue
    rtts.append((time.perf_counter() - t) * 1e6)
rtts.sort()
print(json.dumps({"n": len(rtts), "median_us": rtts[len(rtts) // 2], "p99_us": rtts[int(len(rtts) * 0.99)]}))
"""
# iperf3's datagram size: below the 1155 bytes a path carries before PMTU
# discovery has run (1399 after), so no datagram is dropped for its size.
LENGTH = 1100


def sh(*argv, check=True):
    return subprocess.run(argv, check=check, capture_output=True, text=True)


class Bench:
    def __init__(self, binary):
        self.binary = binary
        tag = f"{os.getpid()}"
        self.a, self.b = f"psk-udpb-a-{tag}", f"psk-udpb-b-{tag}"
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="peersock-udp-bench-")
        for ns in (self.a, self.b):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        # Not "veth...": libnice leaves out interfaces named like virtual ones.
        sh("ip", "-n", self.a, "link", "add", "ub0", "type", "veth", "peer", "name", "ub0", "netns", self.b)
        for ns, ip in ((self.a, A_IP), (self.b, B_IP)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "ub0")
            sh("ip", "-n", ns, "link", "set", "ub0", "up")
        # libnice skips an interface the kernel has not marked RUNNING yet
        # (its link watch, up to a second or more later): wait for it.
        deadline = time.monotonic() + 20
        while any("state UP" not in sh("ip", "-n", ns, "-o", "link", "show", "ub0").stdout for ns in (self.a, self.b)):
            if time.monotonic() > deadline:
                sys.exit("udp_bench: the veth pair did not come up within 20 s")
            time.sleep(0.05)

    def start(self, ns, argv, name):
        log = open(os.path.join(self.tmp, f"{name}.log"), "w+")
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        p.log = log
        self.procs.append(p)
        return p

    @staticmethod
    def wait_log(p, pattern, timeout, what):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            p.log.seek(0)
            m = rx.search(p.log.read())
            if m:
                return m
            if p.poll() is not None:
                break
            time.sleep(0.05)
        p.log.seek(0)
        sys.exit(f"udp_bench: no {what} within {timeout} s:\n{p.log.read()[-2000:]}")

    def peersock(self, ns, args, name, env=None):
        argv = [self.binary, "--json", "--no-status", "--relay", f"ws://{A_IP}:{MAILBOX}/v1", "--stun", "",
                "--turn", "", *args]
        if env:
            argv = ["env", *[f"{k}={v}" for k, v in env.items()], *argv]
        return self.start(ns, argv, name)

    def tunnel(self, connect_mode, listen_mode, name):
        gen = self.peersock(self.a, [connect_mode, f"127.0.0.1:{PORT}"], f"{name}-a")
        code = json.loads(self.wait_log(gen, r'\{[^\n]*"event":"code"[^\n]*\}', 20, "code").group(0))["code"]
        cons = self.peersock(self.b, [listen_mode, str(PORT)], f"{name}-b", env={"PEERSOCK_CODE": code})
        for p in (gen, cons):
            self.wait_log(p, r'"event":"authenticated"', 30, f"{name} authenticated")
        return gen, cons

    def tunnel_to(self, port, name):
        gen = self.peersock(self.a, ["connect-udp", f"127.0.0.1:{port}"], f"{name}-a")
        code = json.loads(self.wait_log(gen, r'\{[^\n]*"event":"code"[^\n]*\}', 20, "code").group(0))["code"]
        cons = self.peersock(self.b, ["listen-udp", str(port)], f"{name}-b", env={"PEERSOCK_CODE": code})
        for p in (gen, cons):
            self.wait_log(p, r'"event":"authenticated"', 30, f"{name} authenticated")

    def pings(self, host, port, count):
        r = sh("ip", "netns", "exec", self.b, "/usr/bin/python3", "-c", PINGER, host, str(port), str(count),
               check=False)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def iperf(self, host, mbit, seconds):
        r = sh("ip", "netns", "exec", self.b, "iperf3", "-c", host, "-p", str(PORT), "-u", "-b", f"{mbit}M",
               "-l", str(LENGTH), "-t", str(seconds), "-J", check=False)
        try:
            end = json.loads(r.stdout)["end"]["sum"]
        except (ValueError, KeyError):
            return None
        # The receiver's view: what arrived, and the share of what was sent
        # that did not.
        return {"mbit": end["bits_per_second"] * (1 - end["lost_percent"] / 100) / 1e6,
                "loss": end["lost_percent"], "jitter_ms": end.get("jitter_ms", 0)}

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
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peersock", default=str(REPO / "build" / "peersock"))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rates", default="100,500,1000")
    args = ap.parse_args()
    for tool in ("iperf3", "twistd3"):
        if not shutil.which(tool):
            sys.exit(f"udp_bench: {tool} not found (scripts/setup.sh installs it)")
    b = Bench(os.path.abspath(args.peersock))
    try:
        mailbox = b.start(b.a, ["twistd3", "-n", "--pidfile=", "wormhole-mailbox",
                                f"--port=tcp:{MAILBOX}:interface={A_IP}",
                                f"--channel-db={os.path.join(b.tmp, 'relay.sqlite')}"], "mailbox")
        b.wait_log(mailbox, r"Starting factory", 30, "mailbox server")
        server = b.start(b.a, ["iperf3", "-s", "--forceflush", "-p", str(PORT)], "iperf3-server")
        b.wait_log(server, r"Server listening", 10, "iperf3 server")
        b.tunnel("connect", "listen", "tcp")  # iperf3's control connection
        b.tunnel("connect-udp", "listen-udp", "udp")
        echo = b.start(b.a, ["/usr/bin/python3", "-u", str(UDP_TOOL), "echo", "--port", str(ECHO), "--timeout", "600"],
                       "echo")
        b.wait_log(echo, r'"listening"', 10, "UDP echo server")
        # The same echo server on the veth address, for the direct path.
        echo_direct = b.start(b.a, ["/usr/bin/python3", "-u", str(UDP_TOOL), "echo", "--bind", A_IP, "--port", str(ECHO),
                                    "--timeout", "600"], "echo-direct")
        b.wait_log(echo_direct, r'"listening"', 10, "UDP echo server on the veth")
        b.tunnel_to(ECHO, "udp-echo")
        lat_direct, lat_tunnel = b.pings(A_IP, ECHO, 2000), b.pings("127.0.0.1", ECHO, 2000)
        rows = []
        for mbit in [int(x) for x in args.rates.split(",")]:
            direct = b.iperf(A_IP, mbit, args.seconds)
            tunnel = b.iperf("127.0.0.1", mbit, args.seconds)
            rows.append((mbit, direct, tunnel))
        print(f"UDP, {LENGTH}-byte datagrams, {args.seconds} s each, veth between two namespaces (no shaping)\n")
        print("| offered | direct: received | direct: loss | peersock: received | peersock: loss | ratio |")
        print("|---|---|---|---|---|---|")
        for mbit, d, t in rows:
            def cell(r, key, f):
                return f.format(r[key]) if r else "failed"
            ratio = f"{t['mbit'] / d['mbit']:.2f}" if d and t and d["mbit"] > 0 else "-"
            print(f"| {mbit} Mbit/s | {cell(d, 'mbit', '{:.0f} Mbit/s')} | {cell(d, 'loss', '{:.2f} %')} | "
                  f"{cell(t, 'mbit', '{:.0f} Mbit/s')} | {cell(t, 'loss', '{:.2f} %')} | {ratio} |")
        if lat_direct and lat_tunnel:
            print(f"\nAdded one-way latency per datagram (64 bytes, one at a time, {lat_tunnel['n']} round trips): "
                  f"median {(lat_tunnel['median_us'] - lat_direct['median_us']) / 2:.0f} us, "
                  f"p99 {(lat_tunnel['p99_us'] - lat_direct['p99_us']) / 2:.0f} us "
                  f"(round trips direct: median {lat_direct['median_us']:.0f} us, p99 {lat_direct['p99_us']:.0f} us; "
                  f"tunnel: median {lat_tunnel['median_us']:.0f} us, p99 {lat_tunnel['p99_us']:.0f} us)")
    finally:
        b.close()


if __name__ == "__main__":
    main()
