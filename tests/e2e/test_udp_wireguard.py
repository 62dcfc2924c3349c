"""WireGuard through listen-udp / connect-udp, across the NAT lab
(tests/netlab): Debian's wireguard-go (userspace; this kernel has no
WireGuard module) on alice and on bob, each behind its own NAT router.
Alice's WireGuard sends to 127.0.0.1:51820, where `peersock listen-udp`
takes its UDP; bob's `peersock connect-udp 127.0.0.1:51821` hands it to
bob's WireGuard. Then TCP runs through the WireGuard tunnel (10.99.0.1 ->
10.99.0.2), and both ends compare checksums: every byte crossed
WireGuard -> UDP -> QUIC DATAGRAM frames -> NAT -> and back.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "netlab"))
import netlab as nl  # noqa: E402
from lab import (AUTH_RE, HELPER, PYTHON, check_same, mib, scaled)  # noqa: E402

WG_LISTEN = 51820   # alice: listen-udp, WireGuard's endpoint for its peer
WG_BOB = 51821      # bob: WireGuard's own port, connect-udp's target
TCP_PORT = 5000
NBYTES = 32 << 20
# WireGuard adds 32 bytes to each packet: at MTU 1100 its datagrams are at
# most 1132 bytes, below the 1155 a path carries before PMTU discovery has
# raised the limit (WireGuard sends no datagram larger than its MTU allows,
# and a dropped full-size one would stall TCP until it is).
WG_MTU = 1100


@pytest.fixture(scope="module")
def netlab(peersock_binary):
    for tool in ("wireguard-go", "wg"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} not found (scripts/setup.sh installs wireguard-go and wireguard-tools)",
                        pytrace=False)
    if not os.path.exists("/dev/net/tun"):
        pytest.fail("/dev/net/tun is missing: wireguard-go needs a tun device", pytrace=False)
    with nl.started(scaled(30)) as lab:
        yield lab


def wg_keys():
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout.strip()
    public = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True, check=True).stdout.strip()
    return private, public


def in_ns(host, argv):
    return subprocess.run(["ip", "netns", "exec", host.ns.name, *argv], capture_output=True, text=True, timeout=30)


def start_wireguard(lab, host, ifname, private, address, peer_public, peer_ip, listen_port=None, endpoint=None):
    """wireguard-go in the host's namespace, configured with `wg set`. The
    interface name is unique per run: wireguard-go's control socket lives in
    /var/run/wireguard, which all namespaces share."""
    wg = host.start(f"wireguard-go {host.name}", ["wireguard-go", "-f", ifname],
                    env={**os.environ, "LOG_LEVEL": "error"})
    deadline = time.monotonic() + scaled(15)
    while in_ns(host, ["wg", "show", ifname]).returncode != 0:
        if wg.returncode is not None:
            lab.fail(f"wireguard-go on {host.name} exited with status {wg.returncode}")
        if time.monotonic() > deadline:
            lab.fail(f"wireguard-go on {host.name}: {ifname} not configurable within {scaled(15):.0f}s")
        time.sleep(0.05)
    keyfile = os.path.join(lab.tmpdir, f"{ifname}.key")
    with open(keyfile, "w") as f:
        f.write(private + "\n")
    os.chmod(keyfile, 0o600)
    args = ["wg", "set", ifname, "private-key", keyfile]
    if listen_port:
        args += ["listen-port", str(listen_port)]
    args += ["peer", peer_public, "allowed-ips", f"{peer_ip}/32"]
    if endpoint:
        args += ["endpoint", endpoint, "persistent-keepalive", "5"]
    run_in(lab, host, args)
    return wg


def run_in(lab, host, argv):
    r = in_ns(host, argv)
    if r.returncode != 0:
        lab.fail(f"{host.name}: {' '.join(argv)} failed: {r.stderr.strip()}")


def interface_up(lab, host, ifname, address):
    """Only once peersock has its path: an interface that is up while ICE
    gathers is offered as a host candidate, and a path over WireGuard's own
    addresses would carry the tunnel inside itself (seen: both peersocks
    ended with 'no answer from the peer' after 20 s, the tunnel stalled after
    the first 88 KB)."""
    run_in(lab, host, ["ip", "addr", "add", f"{address}/24", "dev", ifname])
    run_in(lab, host, ["ip", "link", "set", ifname, "mtu", str(WG_MTU), "up"])


@pytest.mark.deadline(300)
def test_wireguard_through_the_tunnel_carries_tcp_with_a_checksum(netlab):
    netlab.mark()
    a = netlab.add_site("a", "restricted", ["alice"])
    b = netlab.add_site("b", "restricted", ["bob"])
    try:
        alice, bob = a.hosts[0], b.hosts[0]
        tag = f"{os.getpid() % 100000}"
        a_priv, a_pub = wg_keys()
        b_priv, b_pub = wg_keys()
        start_wireguard(netlab, bob, f"wgu{tag}b", b_priv, "10.99.0.2", a_pub, "10.99.0.1", listen_port=WG_BOB)
        start_wireguard(netlab, alice, f"wgu{tag}a", a_priv, "10.99.0.1", b_pub, "10.99.0.2",
                        endpoint=f"127.0.0.1:{WG_LISTEN}")

        gen = netlab.peersock(bob, "peersock connect-udp (bob)", ["--json", "connect-udp", f"127.0.0.1:{WG_BOB}"])
        code = json.loads(gen.wait_line(r'"event":"code"', scaled(20), what="the code event").string)["code"]
        cons = netlab.peersock(alice, "peersock listen-udp (alice)", ["--json", "listen-udp", str(WG_LISTEN), code])
        for p in (gen, cons):
            p.wait_line(AUTH_RE, scaled(60), what="the 'authenticated' line")
        interface_up(netlab, bob, f"wgu{tag}b", "10.99.0.2")
        interface_up(netlab, alice, f"wgu{tag}a", "10.99.0.1")

        server = bob.start("tcp server in WireGuard (bob)",
                           [PYTHON, "-u", str(HELPER), "server", "--bind", "10.99.0.2", "--port", str(TCP_PORT),
                            "--bytes", str(NBYTES), "--seed", "41", "--once", "--timeout", str(int(scaled(200)))])
        server.wait_event("listening", scaled(15), what="the TCP server on bob's WireGuard address")
        t0 = time.monotonic()
        client = alice.start("tcp client through WireGuard (alice)",
                             [PYTHON, "-u", str(HELPER), "client", "--host", "10.99.0.2", "--port", str(TCP_PORT),
                              "--bytes", str(NBYTES), "--seed", "42", "--connect-timeout", str(int(scaled(30))),
                              "--timeout", str(int(scaled(90)))])
        c = client.wait_event("done", scaled(100), what="TCP through WireGuard through the tunnel")
        s = server.wait_event("done", scaled(20), what="the TCP server's result")
        seconds = time.monotonic() - t0
        check_same(netlab, "alice", c, "bob", s, NBYTES)
        rate = 2 * NBYTES / seconds / 1e6
        netlab.note(f"WireGuard over peersock UDP: {mib(NBYTES)} each way in {seconds:.1f} s ({rate:.1f} MB/s total)")
        print(f"\nwireguard through listen-udp/connect-udp: {mib(NBYTES)} each way in {seconds:.1f} s, "
              f"{rate:.1f} MB/s both directions together")
        for p in (gen, cons):
            netlab.check(p.returncode is None, f"{p.name} exited ({p.returncode}) during the transfer")
            stats = [json.loads(l) for l in p.lines() if '"event":"stats"' in l]
            udp = stats[-1].get("udp") if stats else None
            netlab.note(f"{p.name}: {udp}")
            print(f"{p.name}: {udp}")
    finally:
        netlab.remove_site("a")
        netlab.remove_site("b")
