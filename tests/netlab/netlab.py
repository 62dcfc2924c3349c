#!/usr/bin/python3
"""The peersock NAT lab: a small internet in network namespaces.

    wan ─┬─ router A (NAT type) ── bridge ── alice [, alice2]
         └─ router B (NAT type) ── bridge ── bob

- `wan` holds the public side, documentation-range addresses only:
  203.0.113.10 runs Debian's magic-wormhole mailbox server (tcp 4000) and
  Debian's coturn (STUN + TURN on 3478, UDP and TCP, long-term credentials),
  plus a UDP mapping reflector (7000); 203.0.113.11 a second reflector (7000)
  and the "other" socket (7001) of the NAT probe (reflector.py).
- Site A's router has 203.0.113.2 towards wan, site B's 198.51.100.2.
  A LAN behind NAT is 10.1.0.0/24 (A) or 10.2.0.0/24 (B); with NAT type
  `none` the LAN is public instead (203.0.113.64/26, 198.51.100.64/26).
- NAT types (nftables in the router namespace, see nat_rules(); or the same
  with iptables, nat_iptables(), backend="iptables"):
  none        routing only, the host has a public address
  cone        port-preserving masquerade + every inbound UDP port forwarded
              to the first host: endpoint-independent mapping and filtering
  restricted  port-preserving masquerade, conntrack filters: port-restricted
              cone, the common home router
  symmetric   masquerade with a random port per new mapping, i.e. per
              destination: endpoint-dependent mapping
  udp-blocked masquerade, and UDP from the LAN to wan is dropped: only TCP leaves
  Every type is checked with reflector.py's probe (Site.probe), not assumed.
- Nothing is connected to the host's own network namespace: no packet can
  leave the lab. Namespace names are unique per run (psk-e2e-<pid>-...), the
  same prefix as tests/e2e, so stale ones of killed runs are removed by the
  e2e fixtures. NetLab.close() kills every process and deletes every
  namespace; use it in a `finally` (or as a context manager).

Impairments: NetLab.impair(rtt_ms, loss_percent) delays/drops everything
crossing wan's edge through NFQUEUE and nfq-delay (this kernel has no
sch_netem); Host.impair() does the same on one host's link; Host.rate(mbit)
limits a host's rate with tbf.

By hand: `/usr/bin/python3 tests/netlab/netlab.py up --alice cone --bob symmetric`
(see tests/netlab/README.md).
"""
import contextlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import lab as e2e  # noqa: E402  (Netns, Proc, deadlines, peersock_bin)

PYTHON = e2e.PYTHON
REFLECTOR = HERE / "reflector.py"
NAT_TYPES = ("none", "cone", "restricted", "symmetric", "udp-blocked")
NAT_BACKENDS = ("nft", "iptables")  # how the routers are built: nat_rules() or nat_iptables()

SERVICE_IP = "203.0.113.10"
REFLECTOR2_IP = "203.0.113.11"
MAILBOX_PORT = 4000
TURN_PORT = 3478
REFLECT_PORT = 7000
OTHER_PORT = 7001
LAB_SERVER_NAME = "turn.lab.example"  # SERVICE_IP in the hosts' /etc/hosts
TURN_USER, TURN_PASSWORD, TURN_REALM = "peersock", "lab-secret", "peersock.lab"

# Per site: router address towards wan (/30 with wan's .1), public LAN
# (type none), private LAN (NAT types).
SITES = {
    "a": dict(wan_net="203.0.113.0/30", wan_gw="203.0.113.1", router_wan="203.0.113.2",
              public_lan="203.0.113.64/26", public_prefix="203.0.113.", private_prefix="10.1.0."),
    "b": dict(wan_net="198.51.100.0/30", wan_gw="198.51.100.1", router_wan="198.51.100.2",
              public_lan="198.51.100.64/26", public_prefix="198.51.100.", private_prefix="10.2.0."),
    # A third network for a host to move to (Host.move_to), hosts-less at first.
    # (192.0.2.0/30 is wan's `void`.)
    "c": dict(wan_net="192.0.2.128/30", wan_gw="192.0.2.129", router_wan="192.0.2.130",
              public_lan="192.0.2.192/26", public_prefix="192.0.2.", private_prefix="10.3.0."),
}


def nat_rules(nat, first_host, late_drop=False):
    """nftables ruleset of a router for a NAT type. 'wan' is the router's
    interface towards wan, 'br0' its LAN bridge. late_drop=True drops
    unsolicited inbound packets in the forward/input filter instead, as a
    typical Linux firewall does (see below for what that changes)."""
    post = {
        "none": "",
        "cone": 'oifname "wan" masquerade',
        "restricted": 'oifname "wan" masquerade',
        "symmetric": 'oifname "wan" masquerade random',
        "udp-blocked": 'oifname "wan" masquerade',
    }[nat]
    pre = f'iifname "wan" udp dport 1024-65535 dnat to {first_host}' if nat == "cone" else ""
    fwd = 'iifname "br0" oifname "wan" meta l4proto udp drop' if nat == "udp-blocked" else ""
    # Unsolicited inbound packets are dropped silently, and before their
    # conntrack entry is confirmed (priority between conntrack, -200, and NAT).
    # Dropped later (filter input/forward), the entry of an early hole-punching
    # packet from the peer would stay and take the reply tuple that the host's
    # own outgoing packet needs, so masquerade would pick another port and
    # punching would fail; and an ICMP error would go back.
    guard = {
        "none": "",
        "cone": 'iifname "wan" meta l4proto != udp ct state new drop',
    }.get(nat, 'iifname "wan" ct state new drop')
    late = ""
    if late_drop and guard:
        late, guard = guard, ""
    return f"""
table ip natlab {{
  chain lab_guard {{
    type filter hook prerouting priority -150; policy accept;
    {guard}
  }}
  chain lab_pre {{
    type nat hook prerouting priority dstnat; policy accept;
    {pre}
  }}
  chain lab_post {{
    type nat hook postrouting priority srcnat; policy accept;
    {post}
  }}
  chain lab_fwd {{
    type filter hook forward priority filter; policy accept;
    {fwd}
    {late}
  }}
  chain lab_in {{
    type filter hook input priority filter; policy accept;
    {late}
  }}
}}
"""


def nat_iptables(nat, first_host, late_drop=False):
    """The same NAT types as nat_rules(), built with iptables (x_tables
    rules; Debian's default iptables program), one argument list per rule.
    Symmetric is MASQUERADE --random-fully, as home routers on Linux and
    the lab the outage and path tests were first tried in do it. The guard
    against unsolicited inbound packets sits in the mangle table's
    PREROUTING (priority -150, after conntrack and before NAT), where
    nat_rules() has its own chain."""
    rules = []
    if nat != "none":
        masq = ["-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"]
        rules.append(masq + (["--random-fully"] if nat == "symmetric" else []))
    if nat == "cone":
        rules.append(["-t", "nat", "-A", "PREROUTING", "-i", "wan", "-p", "udp", "--dport", "1024:65535",
                      "-j", "DNAT", "--to-destination", first_host])
    if nat == "udp-blocked":
        rules.append(["-A", "FORWARD", "-i", "br0", "-o", "wan", "-p", "udp", "-j", "DROP"])
    if nat != "none":
        match = ["-i", "wan"] + (["!", "-p", "udp"] if nat == "cone" else []) + ["-m", "conntrack", "--ctstate", "NEW"]
        if late_drop:
            rules += [["-A", "FORWARD", *match, "-j", "DROP"], ["-A", "INPUT", *match, "-j", "DROP"]]
        else:
            rules.append(["-t", "mangle", "-A", "PREROUTING", *match, "-j", "DROP"])
    return rules


def run(argv, check=True, timeout=30, input=None):
    r = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def nfq_delay_bin():
    return str(REPO / os.environ.get("BUILD_DIR", "build") / "tests" / "netlab" / "nfq-delay")


def sysctl(ns, key, value, check=True):
    return run(["ip", "netns", "exec", ns.name, "sysctl", "-q", "-w", f"{key}={value}"], check=check)


def quiet_rp_filter(ns):
    # A new namespace may inherit strict reverse-path filtering from the host;
    # the lab's asymmetric paths (NAT, lo service addresses) need it off.
    for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"):
        sysctl(ns, key, 0, check=False)


def wait_running(ns, dev, timeout=20):
    """Waits until the kernel reports dev in ns as RUNNING ("state UP"). A new
    veth gets there only when the kernel's link watch runs, up to a second
    later (more on a busy machine); libnice skips interfaces that are not
    RUNNING, and a host that offers only 127.0.0.1 cannot be reached."""
    deadline = time.monotonic() + timeout
    while "state UP" not in subprocess.run(["ip", "-n", ns, "-o", "link", "show", "dev", dev],
                                           capture_output=True, text=True).stdout:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{dev} in {ns} did not come up within {timeout}s")
        time.sleep(0.05)


class _Place:
    """What e2e.Proc needs from a lab: a namespace, a directory and fail()."""

    def __init__(self, netlab, ns):
        self.ns, self.tmpdir, self.netlab = ns, netlab.tmpdir, netlab

    def fail(self, message):
        self.netlab.fail(message)


class Host:
    def __init__(self, site, name, ns, ip, port):
        self.site, self.name, self.ns, self.ip = site, name, ns, ip
        self.port = port  # the router's end of the host's LAN link

    def change_address(self, last_octet):
        """The host gets another address on the same LAN (as a laptop that
        rejoins Wi-Fi): the new one is added, the default route moves to
        it, the old one is removed. Sockets bound to the old one stop
        working; the NAT sees a new source, so a new mapping."""
        prefix, plen = self.site.lan_prefix, self.site.lan_plen
        new_ip = f"{prefix}{last_octet}"
        ns = self.ns.name
        # Without promotion, removing the primary address takes the
        # secondary (the new one) with it.
        sysctl(self.ns, "net.ipv4.conf.eth0.promote_secondaries", 1)
        run(["ip", "-n", ns, "addr", "add", f"{new_ip}/{plen}", "dev", "eth0"])
        run(["ip", "-n", ns, "addr", "del", f"{self.ip}/{plen}", "dev", "eth0"])
        run(["ip", "-n", ns, "route", "replace", "default", "via", self.site.lan_gw, "src", new_ip])
        self.site.netlab.note(f"{self.name}: address {self.ip} -> {new_ip}")
        self.ip = new_ip

    def move_to(self, site):
        """The host leaves its LAN and joins `site`'s (another network behind
        another NAT): its link is unplugged and a new one plugged into the
        other router's bridge, with an address from that LAN."""
        old = self.site
        ns = self.ns.name
        run(["ip", "-n", old.router.name, "link", "del", self.port])  # both ends go
        old.hosts.remove(self)
        port = f"lan{len(site.hosts)}"
        ip = f"{site.lan_prefix}{site.lan_first + len(site.hosts)}"
        r = site.router.name
        run(["ip", "-n", r, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "-n", r, "link", "set", port, "master", "br0"])
        run(["ip", "-n", r, "link", "set", port, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{ip}/{site.lan_plen}", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "route", "add", "default", "via", site.lan_gw])
        wait_running(ns, "eth0")
        site.hosts.append(self)
        site.netlab.note(f"{self.name}: moved from site {old.letter} ({self.ip}) to site {site.letter} ({ip})")
        self.site, self.ip, self.port = site, ip, port

    def start(self, name, argv, **kw):
        return self.site.netlab.start(name, argv, self.ns, **kw)

    def impair(self, rtt_ms=0, loss_percent=0, timeout=10):
        """Delay/loss for everything this host sends or receives on its LAN
        interface (rtt_ms/2 each way), through nfq-delay in its namespace."""
        tool = nfq_delay_bin()
        if not os.path.exists(tool):
            self.site.netlab.fail(f"{tool} is missing (built by meson when libnetfilter-queue-dev is installed)")
        p = self.start(f"nfq-delay {self.name}", [tool, "--queue", "1", "--delay-ms", str(int(rtt_ms // 2)),
                                                  "--loss-percent", str(int(loss_percent))])
        p.wait_line(r"^ready$", timeout, stream="stdout", what="nfq-delay to bind its queue")
        for chain, iface in (("PREROUTING", "-i"), ("OUTPUT", "-o")):
            run(["ip", "netns", "exec", self.ns.name, "iptables", "-t", "mangle", "-A", chain, iface, "eth0",
                 "-j", "NFQUEUE", "--queue-num", "1"])
        self.site.netlab.note(f"impairment on {self.name}: +{rtt_ms} ms RTT, {loss_percent}% loss each way")
        return p

    def rate(self, mbit):
        """Limits this host's outgoing rate (tbf on its LAN interface)."""
        run(["ip", "netns", "exec", self.ns.name, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf",
             "rate", f"{mbit}mbit", "burst", "32kbit", "latency", "50ms"])


class Site:
    """A NAT router namespace and its LAN (a bridge) with one or more hosts."""

    def __init__(self, netlab, letter, nat, host_names, late_drop=False, backend="nft"):
        assert nat in NAT_TYPES, nat
        assert backend in NAT_BACKENDS, backend
        self.netlab, self.letter, self.nat, self.backend = netlab, letter, nat, backend
        cfg = SITES[letter]
        self.cfg = cfg
        self.router = e2e.Netns()
        netlab.namespaces.append(self.router)
        r, w = self.router.name, netlab.wan.name
        # wan <-> router
        run(["ip", "-n", w, "link", "add", f"to-{letter}", "type", "veth", "peer", "name", "wan", "netns", r])
        run(["ip", "-n", w, "addr", "add", f"{cfg['wan_gw']}/30", "dev", f"to-{letter}"])
        run(["ip", "-n", w, "link", "set", f"to-{letter}", "up"])
        run(["ip", "-n", r, "addr", "add", f"{cfg['router_wan']}/30", "dev", "wan"])
        run(["ip", "-n", r, "link", "set", "wan", "up"])
        run(["ip", "-n", r, "route", "add", "default", "via", cfg["wan_gw"]])
        # The LAN: a bridge in the router.
        prefix = cfg["public_prefix"] if nat == "none" else cfg["private_prefix"]
        if nat == "none":
            gw, plen, first = prefix + "65", 26, 66
            run(["ip", "-n", w, "route", "add", cfg["public_lan"], "via", cfg["router_wan"]])
        else:
            gw, plen, first = prefix + "1", 24, 2
        self.lan_prefix, self.lan_gw, self.lan_plen, self.lan_first = prefix, gw, plen, first
        run(["ip", "-n", r, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", r, "addr", "add", f"{gw}/{plen}", "dev", "br0"])
        run(["ip", "-n", r, "link", "set", "br0", "up"])
        sysctl(self.router, "net.ipv4.ip_forward", 1)
        quiet_rp_filter(self.router)
        # Bridged LAN traffic must not pass the router's IP filter rules.
        sysctl(self.router, "net.bridge.bridge-nf-call-iptables", 0, check=False)
        self.hosts = []
        for i, hname in enumerate(host_names):
            ns = e2e.Netns()
            netlab.namespaces.append(ns)
            ip = f"{prefix}{first + i}"
            port = f"lan{i}"
            run(["ip", "-n", r, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns.name])
            run(["ip", "-n", r, "link", "set", port, "master", "br0"])
            run(["ip", "-n", r, "link", "set", port, "up"])
            run(["ip", "-n", ns.name, "addr", "add", f"{ip}/{plen}", "dev", "eth0"])
            run(["ip", "-n", ns.name, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns.name, "route", "add", "default", "via", gw])
            # `ip netns exec` bind-mounts /etc/netns/NAME/hosts over
            # /etc/hosts: the lab's servers get names (no DNS in the lab).
            etc = Path("/etc/netns") / ns.name
            etc.mkdir(parents=True, exist_ok=True)
            netlab.etc_dirs.append(etc)
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{SERVICE_IP} {LAB_SERVER_NAME}\n")
            self.hosts.append(Host(self, hname, ns, ip, port))
        first = self.hosts[0].ip if self.hosts else None
        if backend == "nft":
            run(["ip", "netns", "exec", r, "nft", "-f", "-"], input=nat_rules(nat, first, late_drop))
        else:
            for rule in nat_iptables(nat, first, late_drop):
                run(["ip", "netns", "exec", r, "iptables", *rule])
        for host in self.hosts:
            wait_running(host.ns.name, "eth0")

    def rebind(self):
        """Forgets every NAT mapping (conntrack flush), as a home router's
        reboot or a carrier NAT's timeout does: the next packet out gets a
        new public port where the NAT type picks one (symmetric), the same
        one where it preserves ports."""
        run(["ip", "netns", "exec", self.router.name, "conntrack", "-F"])
        self.netlab.note(f"rebinding: router {self.letter} forgot its NAT mappings")

    def outage(self, on):
        """Drops (on=True) or forwards again (False) everything the router
        would forward, both ways: an outage of the site's uplink. The NAT
        mappings (conntrack) stay, so the same path comes back."""
        r = self.router.name
        if on:
            rules = ("table inet psk_outage {\n"
                     "  chain forward { type filter hook forward priority -300; policy drop; }\n"
                     "}\n")
            run(["ip", "netns", "exec", r, "nft", "-f", "-"], input=rules)
            self.netlab.note(f"outage: router {self.letter} drops everything it forwards")
        else:
            run(["ip", "netns", "exec", r, "nft", "delete", "table", "inet", "psk_outage"])
            self.netlab.note(f"outage over: router {self.letter} forwards again")

    def probe(self, host=None):
        """Runs the NAT-type probe on a host; returns its JSON result."""
        host = host or self.hosts[0]
        p = host.start(f"probe {host.name}", [PYTHON, "-u", str(REFLECTOR), "probe",
                                               "--reflector", f"{SERVICE_IP}:{REFLECT_PORT}",
                                               "--reflector", f"{REFLECTOR2_IP}:{REFLECT_PORT}"])
        rc = p.wait_exit(30, what="NAT probe")
        if rc != 0:
            self.netlab.fail(f"NAT probe on {host.name} exited with {rc}")
        for ev in p.events():
            if ev.get("event") == "probe":
                return ev
        self.netlab.fail(f"NAT probe on {host.name} printed no result")

    def verify(self):
        """Fails unless the probe sees the NAT type the router was set up as."""
        result = self.probe()
        if result["type"] != self.nat:
            self.netlab.fail(f"site {self.letter}: router set up as {self.nat!r}, but the probe saw "
                             f"{result['type']!r}: {json.dumps(result)}")
        return result


def remove_stale_etc_dirs():
    """/etc/netns/psk-e2e-PID-* of runs whose process is gone (killed runs;
    their namespaces are removed by the e2e fixtures)."""
    import re
    import shutil
    base = Path("/etc/netns")
    if not base.is_dir():
        return
    for d in base.iterdir():
        m = re.match(re.escape(e2e.NS_PREFIX) + r"(\d+)-", d.name)
        if m and int(m.group(1)) != os.getpid() and not os.path.exists(f"/proc/{m.group(1)}"):
            shutil.rmtree(d, ignore_errors=True)


class NetLab:
    """The wan namespace with its servers; sites are added with add_site()."""

    def __init__(self):
        remove_stale_etc_dirs()
        self.tmpdir = tempfile.mkdtemp(prefix="peersock-netlab-")
        self.procs = []
        self.namespaces = []
        self.notes = []
        self.sites = {}
        self.report_from = (0, 0)
        self.etc_dirs = []
        self.impairment = None
        self.debug_env = {}
        self.coturn_extra = ["--verbose"] if os.environ.get("PEERSOCK_NETLAB_COTURN_VERBOSE") else []  # extra environment for peers, e.g. libnice debug
        self.closed = False
        self.home = os.path.join(self.tmpdir, "home")
        os.makedirs(self.home)
        try:
            self.wan = e2e.Netns()
            self.namespaces.append(self.wan)
            w = self.wan.name
            # Service addresses live on wan's lo (this kernel has no dummy
            # interfaces); they are local addresses all the same.
            for ip in (SERVICE_IP, REFLECTOR2_IP):
                run(["ip", "-n", w, "addr", "add", f"{ip}/32", "dev", "lo"])
            # Like the internet: packets to addresses nobody routes (private
            # LANs behind NAT) leave without error and vanish. wan's default
            # route points into a `void` namespace that does not forward and
            # so drops them silently. (No route, or a blackhole route, makes
            # coturn's send to a peer's private host candidate fail, and
            # coturn then closes that whole allocation.)
            self.void = e2e.Netns()
            self.namespaces.append(self.void)
            run(["ip", "-n", w, "link", "add", "void", "type", "veth", "peer", "name", "void", "netns",
                 self.void.name])
            run(["ip", "-n", w, "addr", "add", "192.0.2.1/30", "dev", "void"])
            run(["ip", "-n", self.void.name, "addr", "add", "192.0.2.2/30", "dev", "void"])
            run(["ip", "-n", w, "link", "set", "void", "up"])
            run(["ip", "-n", self.void.name, "link", "set", "void", "up"])
            run(["ip", "-n", w, "route", "add", "default", "via", "192.0.2.2"])
            sysctl(self.wan, "net.ipv4.ip_forward", 1)
            quiet_rp_filter(self.wan)
        except BaseException:
            self.close()
            raise

    # -- reporting
    def note(self, text):
        self.notes.append(text)

    def report(self):
        parts = [f"=== netlab: tmpdir {self.tmpdir}, namespaces {' '.join(n.name for n in self.namespaces)}"]
        for letter, site in self.sites.items():
            parts.append(f"site {letter}: nat {site.nat}, router {site.router.name}, hosts "
                         + ", ".join(f"{h.name}={h.ip} ({h.ns.name})" for h in site.hosts))
        parts.extend(f"note: {n}" for n in self.notes[self.report_from[1]:])
        services = [p for p in self.procs[:self.report_from[0]] if p.name in ("mailbox", "coturn")]
        parts.extend(p.describe(tail=40) for p in self.procs[self.report_from[0]:] + services)
        return "\n".join(parts)

    def mark(self):
        """Reports show only processes and notes from here on (plus the servers)."""
        self.report_from = (len(self.procs), len(self.notes))

    def fail(self, message):
        raise e2e.LabError(message + "\n" + self.report())

    def check(self, cond, message):
        if not cond:
            self.fail(message)

    # -- processes
    def start(self, name, argv, ns, **kw):
        p = e2e.Proc(_Place(self, ns), name, argv, **kw)
        self.procs.append(p)
        return p

    def wait_tcp(self, host, port, timeout, what):
        p = self.start(f"wait-port {port}", [PYTHON, "-u", str(e2e.HELPER), "wait-port", "--host", host,
                                             "--port", str(port), "--timeout", str(timeout)], self.wan)
        if p.wait_exit(timeout + 10, what=what) != 0:
            self.fail(f"{what}: {host}:{port} did not accept connections within {timeout:.0f}s")

    def _start_mailbox(self):
        db = os.path.join(self.tmpdir, "mailbox.sqlite")
        self.mailbox = self.start("mailbox", [e2e.TWISTD, "-n", "--pidfile=", "wormhole-mailbox",
                                              f"--port=tcp:{MAILBOX_PORT}:interface={SERVICE_IP}",
                                              f"--channel-db={db}"], self.wan)

    def restart_mailbox(self, timeout=30):
        """Stops the mailbox server (every websocket to it breaks) and starts
        it again on the same database, as a relay's restart would."""
        import signal as _signal
        self.mailbox.signal(_signal.SIGTERM)
        self.mailbox.wait_exit(timeout, what="the mailbox server to stop")
        self.note("mailbox server stopped")
        self._start_mailbox()
        self.wait_tcp(SERVICE_IP, MAILBOX_PORT, timeout, "mailbox server")
        self.note("mailbox server started again")

    def start_services(self, timeout=30):
        """Mailbox server, coturn and the two reflectors, all in wan; waits until
        each is ready."""
        w = self.wan
        self._start_mailbox()
        self.coturn = self.start("coturn", [
            "turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls", "--listening-ip", SERVICE_IP,
            "--relay-ip", SERVICE_IP, "--listening-port", str(TURN_PORT), "--lt-cred-mech",
            "--user", f"{TURN_USER}:{TURN_PASSWORD}", "--realm", TURN_REALM, "--fingerprint",
            "--no-software-attribute", "--log-file", "stdout", "--simple-log", *self.coturn_extra,
            "--pidfile", os.path.join(self.tmpdir, "turnserver.pid"),
            "--userdb", os.path.join(self.tmpdir, "turndb.sqlite"),
            "--min-port", "49152", "--max-port", "65535"], w)
        self.reflector = self.start("reflectors", [
            PYTHON, "-u", str(REFLECTOR), "serve", "--bind", f"{SERVICE_IP}:{REFLECT_PORT}",
            "--bind", f"{REFLECTOR2_IP}:{REFLECT_PORT}", "--other", f"{REFLECTOR2_IP}:{OTHER_PORT}"], w)
        self.reflector.wait_line(r'"listening"', timeout, stream="stdout", what="the reflectors")
        self.wait_tcp(SERVICE_IP, MAILBOX_PORT, timeout, "mailbox server")
        self.wait_tcp(SERVICE_IP, TURN_PORT, timeout, "coturn")
        # coturn opens its UDP listener before the TCP one; both are up now.
        for p in (self.mailbox, self.coturn):
            self.check(p.returncode is None, f"{p.name} exited right after starting")

    def impair(self, rtt_ms=0, loss_percent=0, timeout=10):
        """Adds delay and/or random loss to everything crossing wan's edge:
        each packet entering wan from a site, or leaving wan's own servers
        towards one, is held rtt_ms/2 (so every path through wan, peer to
        peer or peer to server, gets rtt_ms more round-trip time) and dropped
        with loss_percent. Uses nfq-delay (NFQUEUE; this kernel has no netem)."""
        tool = nfq_delay_bin()
        if not os.path.exists(tool):
            self.fail(f"{tool} is missing (built by meson when libnetfilter-queue-dev is installed)")
        p = self.start("nfq-delay", [tool, "--queue", "0", "--delay-ms", str(int(rtt_ms // 2)),
                                     "--loss-percent", str(int(loss_percent))], self.wan)
        p.wait_line(r"^ready$", timeout, stream="stdout", what="nfq-delay to bind its queue")
        for chain, iface in (("PREROUTING", "-i"), ("OUTPUT", "-o")):
            run(["ip", "netns", "exec", self.wan.name, "iptables", "-t", "mangle", "-A", chain, iface, "to-+",
                 "-j", "NFQUEUE", "--queue-num", "0"])
        self.note(f"impairment: +{rtt_ms} ms RTT, {loss_percent}% loss per crossing of wan's edge")
        self.impairment = p
        return p

    def clear_impairment(self):
        run(["ip", "netns", "exec", self.wan.name, "iptables", "-t", "mangle", "-F"], check=False)
        if self.impairment is not None:
            self.impairment.stop(grace=1)
            self.impairment = None

    @property
    def relay_url(self):
        return f"ws://{SERVICE_IP}:{MAILBOX_PORT}/v1"

    def add_site(self, letter, nat, host_names, late_drop=False, backend="nft"):
        assert letter not in self.sites
        before = len(self.namespaces)
        try:
            site = Site(self, letter, nat, host_names, late_drop, backend)
        except BaseException:
            # Undo the half-built site so that the next test can build one.
            run(["ip", "-n", self.wan.name, "link", "del", f"to-{letter}"], check=False)
            run(["ip", "-n", self.wan.name, "route", "del", SITES[letter]["public_lan"]], check=False)
            for ns in self.namespaces[before:]:
                ns.delete()
            del self.namespaces[before:]
            raise
        self.sites[letter] = site
        return site

    def remove_site(self, letter):
        site = self.sites.pop(letter)
        for h in site.hosts:
            self._kill_in(h.ns)
            h.ns.delete()
            import shutil
            shutil.rmtree(Path("/etc/netns") / h.ns.name, ignore_errors=True)
        self._kill_in(site.router)
        # Deleted explicitly: a namespace is destroyed asynchronously, and the
        # next site reuses the interface name.
        run(["ip", "-n", self.wan.name, "link", "del", f"to-{site.letter}"], check=False)
        site.router.delete()
        if site.nat == "none":
            run(["ip", "-n", self.wan.name, "route", "del", site.cfg["public_lan"]], check=False)

    def _kill_in(self, ns):
        for p in self.procs:
            if p.lab.ns is ns and p.returncode is None:
                p.stop(grace=1)

    # -- peersock
    def peer_env(self):
        return e2e.peer_env(self.home)

    def server_args(self, stun=True, turn=True, by_name=False):
        """--relay/--stun/--turn options pointing at the lab's servers (by
        name: STUN/TURN as LAB_SERVER_NAME, resolved through /etc/hosts)."""
        server = LAB_SERVER_NAME if by_name else SERVICE_IP
        args = ["--relay", self.relay_url,
                "--stun", f"{server}:{TURN_PORT}" if stun else "",
                "--turn", f"{server}:{TURN_PORT}" if turn else ""]
        if turn:
            args += ["--turn-user", TURN_USER, "--turn-password", TURN_PASSWORD]
        return args

    def peersock(self, host, name, args, *, stdio=False, stun=True, turn=True, by_name=False, extra=()):
        argv = [e2e.peersock_bin(), *self.server_args(stun, turn, by_name), *extra, *args]
        more = os.environ.get("PEERSOCK_E2E_EXTRA_ARGS")
        if more:
            argv[1:1] = shlex.split(more)
        kw = dict(env={**self.peer_env(), **self.debug_env})
        if stdio:
            kw.update(stdin=subprocess.PIPE, stdout="pipe")
        return host.start(name, argv, **kw)

    # -- teardown
    def close(self):
        if self.closed:
            return
        self.closed = True
        e2e.stop_all(self.procs)
        for ns in reversed(self.namespaces):
            ns.delete()
        import shutil
        for d in self.etc_dirs:
            shutil.rmtree(d, ignore_errors=True)
        if not os.environ.get("PEERSOCK_E2E_KEEP_TMP"):
            import shutil
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()



@contextlib.contextmanager
def started(timeout=30):
    """A NetLab with its servers running, closed when the block ends (the
    module fixtures of the tests that use the lab)."""
    lab = NetLab()
    try:
        lab.start_services(timeout=timeout)
        yield lab
    finally:
        lab.close()

def main():
    import argparse
    import signal
    ap = argparse.ArgumentParser(description="Bring the peersock NAT lab up by hand (Ctrl-C tears it down).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--alice", choices=NAT_TYPES, default="restricted")
    up.add_argument("--bob", choices=NAT_TYPES, default="restricted")
    up.add_argument("--alice2", action="store_true", help="a second host on alice's LAN")
    up.add_argument("--no-verify", action="store_true", help="skip the NAT-type probes")
    up.add_argument("--backend", choices=NAT_BACKENDS, default="nft", help="build the NAT with nftables or iptables")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("netlab: needs root (network namespaces)")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with NetLab() as lab:
        lab.start_services()
        a = lab.add_site("a", args.alice, ["alice", "alice2"] if args.alice2 else ["alice"], backend=args.backend)
        b = lab.add_site("b", args.bob, ["bob"], backend=args.backend)
        if not args.no_verify:
            for s in (a, b):
                print(f"site {s.letter} ({s.nat}): probe {json.dumps(s.verify())}")
        print(f"wan: {lab.wan.name}  (mailbox {lab.relay_url}, STUN/TURN {SERVICE_IP}:{TURN_PORT} "
              f"user {TURN_USER} password {TURN_PASSWORD})")
        for s in (a, b):
            print(f"router {s.letter} ({s.nat}): {s.router.name}")
            for h in s.hosts:
                print(f"  {h.name} {h.ip}: ip netns exec {h.ns.name} bash")
        opts = " ".join(shlex.quote(x) for x in lab.server_args())
        print(f"\nexample: ip netns exec {a.hosts[0].ns.name} {e2e.peersock_bin()} {opts} stdio-a")
        print("Ctrl-C tears the lab down.", flush=True)
        try:
            while not stop:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
