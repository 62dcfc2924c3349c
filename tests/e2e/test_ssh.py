"""ssh through the tunnel: Debian's OpenSSH server on a loopback port inside
the test's namespace (throwaway host and user keys), reached with the real ssh
and scp clients whose ProxyCommand is `peersock stdio-b CODE`. The code comes
from the `peersock connect 127.0.0.1:PORT` side, as a user would read it out.

The client configuration is the ~/.ssh/config snippet from the README
(`Host *.peersock`), with this test's relay added.
"""
import hashlib
import os
import shlex
import shutil

import pytest

from lab import AUTH_RE, CODE_RE, big_bytes, mib, peersock_bin, scaled

SSHD = "/usr/sbin/sshd"
SSHD_PORT = 2222


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_random(path, nbytes):
    with open(path, "wb") as f:
        left = nbytes
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


class SshSetup:
    def __init__(self, lab):
        self.lab = lab
        d = self.dir = os.path.join(lab.tmpdir, "ssh")
        os.makedirs(d)
        os.chmod(d, 0o700)
        for tool in (SSHD, "ssh", "scp", "ssh-keygen"):
            if not shutil.which(tool):
                pytest.fail(f"{tool} not found (scripts/setup.sh installs openssh-server and openssh-client)",
                            pytrace=False)
        # sshd insists on its privilege separation directory.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.host_key = os.path.join(d, "host_ed25519")
        self.user_key = os.path.join(d, "id_ed25519")
        for key in (self.host_key, self.user_key):
            r = lab.start(f"ssh-keygen {os.path.basename(key)}",
                          ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "peersock-e2e", "-f", key])
            lab.check(r.wait_exit(scaled(30)) == 0, "ssh-keygen failed")
        shutil.copy(self.user_key + ".pub", os.path.join(d, "authorized_keys"))
        self.sshd_config = os.path.join(d, "sshd_config")
        with open(self.sshd_config, "w") as f:
            f.write(f"""Port {SSHD_PORT}
ListenAddress 127.0.0.1
HostKey {self.host_key}
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
Subsystem sftp internal-sftp
""")
        self.ssh_config = os.path.join(d, "ssh_config")
        relay = shlex.quote(lab.relay_url)
        with open(self.ssh_config, "w") as f:
            # The README's snippet, plus this test's relay and no STUN/TURN.
            f.write(f"""Host *.peersock
    ProxyCommand sh -c 'exec "$0" --relay {relay} --stun "" --turn "" -q stdio-b "${{1%%.peersock}}"' {shlex.quote(peersock_bin())} %h
    HostKeyAlias peersock-e2e-host
    User root
    IdentityFile {self.user_key}
    IdentitiesOnly yes
    UserKnownHostsFile {d}/known_hosts
    StrictHostKeyChecking accept-new
    BatchMode yes
    GlobalKnownHostsFile /dev/null
""")

    def start_sshd(self):
        sshd = self.lab.start("sshd", [SSHD, "-D", "-e", "-f", self.sshd_config])
        sshd.wait_line(r"Server listening on 127\.0\.0\.1 port", scaled(20), what="sshd to listen")
        return sshd

    def tunnel(self, name):
        """A fresh `peersock connect` to sshd; returns (process, host name for ssh)."""
        acc = self.lab.peersock(f"peersock connect ({name})", ["connect", f"127.0.0.1:{SSHD_PORT}"])
        code = acc.wait_line(CODE_RE, scaled(20), what="the connection code").group(1)
        return acc, f"{code}.peersock"

    def run(self, name, argv, timeout):
        p = self.lab.start(name, argv, env=self.lab.peer_env())
        rc = p.wait_exit(timeout, what=name)
        self.lab.check(rc == 0, f"{name} exited with status {rc}")
        return p

    def tunnel_done(self, acc):
        rc = acc.wait_exit(scaled(30), what="peersock connect must exit once its ssh client has left")
        self.lab.check(rc == 0, f"{acc.name} exited with status {rc}, expected 0")
        self.lab.check(acc.find(AUTH_RE) is not None, f"{acc.name} never authenticated")


@pytest.mark.deadline(600)
def test_ssh_command_and_scp_both_ways(lab):
    s = SshSetup(lab)
    s.start_sshd()
    n = big_bytes()
    xfer = scaled(60 + 3 * n / (1 << 20))

    # 1. run a command
    acc, host = s.tunnel("command")
    p = s.run("ssh command", ["ssh", "-F", s.ssh_config, host, "echo hello-through-peersock; uname -s"], scaled(90))
    out = p.lines("stdout")
    lab.check(out[:1] == ["hello-through-peersock"] and "Linux" in out, f"ssh command output: {out}")
    s.tunnel_done(acc)

    # 2. scp up
    up_src, up_dst = os.path.join(s.dir, "up-src.bin"), os.path.join(s.dir, "up-dst.bin")
    write_random(up_src, n)
    acc, host = s.tunnel("scp up")
    s.run("scp up", ["scp", "-q", "-F", s.ssh_config, up_src, f"{host}:{up_dst}"], xfer)
    lab.check(os.path.getsize(up_dst) == n and sha256_file(up_dst) == sha256_file(up_src),
              f"scp up: {mib(os.path.getsize(up_dst))} arrived of {mib(n)}, or the sha256 differs")
    s.tunnel_done(acc)

    # 3. scp down
    down_src, down_dst = os.path.join(s.dir, "down-src.bin"), os.path.join(s.dir, "down-dst.bin")
    write_random(down_src, n)
    acc, host = s.tunnel("scp down")
    s.run("scp down", ["scp", "-q", "-F", s.ssh_config, f"{host}:{down_src}", down_dst], xfer)
    lab.check(os.path.getsize(down_dst) == n and sha256_file(down_dst) == sha256_file(down_src),
              f"scp down: {mib(os.path.getsize(down_dst))} arrived of {mib(n)}, or the sha256 differs")
    s.tunnel_done(acc)
