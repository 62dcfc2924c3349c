"""Local exposure of a running peersock (docs/security.md §6): its unix
socket is private whatever the umask, in a directory nobody else can swap it
in; the process cannot be dumped or traced by other processes of its user
while it holds the code; files holding secrets that other users can read get
a warning naming them."""
import os
import re
import stat

import pytest

from lab import EXIT_LOCAL_SOCKET, LISTEN_PORT, scaled

UMASK_000 = ["sh", "-c", 'umask 000 && exec "$@"', "sh"]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
NO_CONFIG = ["--config", "/nonexistent/peersock.conf"]


@pytest.mark.deadline(60)
def test_unix_socket_is_0600_whatever_the_umask(lab):
    path = os.path.join(lab.tmpdir, "tunnel.sock")
    p = lab.peersock("peersock listen-unix (umask 000)", ["listen-unix", path], prefix=UMASK_000)
    lab.wait_for(lambda: os.path.exists(path), scaled(20), "the socket file",
                    fail_if=lambda: p.returncode is not None and f"peersock exited with {p.returncode}")
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    lab.check(mode == 0o600, f"the socket has mode {mode:04o}, expected 0600")
    p.stop()


@pytest.mark.deadline(60)
def test_unix_socket_refused_in_a_directory_others_can_write(lab):
    d = os.path.join(lab.tmpdir, "open")
    os.mkdir(d)
    os.chmod(d, 0o777)  # world-writable, no sticky bit: anyone could replace the socket
    path = os.path.join(d, "tunnel.sock")
    p = lab.peersock("peersock listen-unix (open dir)", ["listen-unix", path])
    rc = p.wait_exit(scaled(20))
    lab.check(rc == EXIT_LOCAL_SOCKET, f"exit status {rc}, expected {EXIT_LOCAL_SOCKET}")
    lines = [l for l in p.lines() if l.startswith("peersock: ")]
    lab.check(len(lines) == 1 and "writable by other users" in lines[0] and d in lines[0], f"stderr: {p.lines()}")
    lab.check(not os.path.exists(path), "a socket was created anyway")
    os.chmod(d, 0o1777)  # sticky, like /tmp: fine
    p2 = lab.peersock("peersock listen-unix (sticky dir)", ["listen-unix", path])
    lab.wait_for(lambda: os.path.exists(path), scaled(20), "the socket in the sticky directory",
                    fail_if=lambda: p2.returncode is not None and f"peersock exited with {p2.returncode}")
    p2.stop()


def proc_status_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))


@pytest.mark.deadline(60)
def test_process_is_not_dumpable_and_has_no_core_limit(lab):
    """Run as nobody: a dumpable process's /proc/PID/mem and environ belong
    to its user, a non-dumpable one's to root -- so no other process of the
    user can ptrace it or read its memory (and the code in it)."""
    p = lab.peersock("peersock listen (as nobody)", [*NO_CONFIG, "listen", str(LISTEN_PORT)], prefix=NOBODY)
    p.wait_line(r"Waiting for the other side", scaled(20), what="peersock waiting in the mailbox")
    lab.check(p.returncode is None, f"peersock exited with {p.returncode}: {p.lines()}")
    lab.check(proc_status_uid(p.pid) == 65534, "peersock does not run as nobody")
    for name in ("mem", "environ"):
        owner = os.stat(f"/proc/{p.pid}/{name}").st_uid
        lab.check(owner == 0, f"/proc/{p.pid}/{name} belongs to uid {owner}: the process is dumpable")
    with open(f"/proc/{p.pid}/limits") as f:
        core = [l for l in f if l.startswith("Max core file size")]
    lab.check(core and core[0].split()[4:6] == ["0", "0"], f"core limit: {core}")
    p.stop()


@pytest.mark.deadline(60)
@pytest.mark.parametrize("mode,warned", [(0o644, True), (0o640, True), (0o600, False)])
def test_config_file_readable_by_others_is_warned_about(ns_lab, mode, warned):
    path = os.path.join(ns_lab.tmpdir, "peersock.conf")
    with open(path, "w") as f:
        f.write("[ice]\nturn-password = secret\n")
    os.chmod(path, mode)
    p = ns_lab.peersock("peersock --print-config", ["--config", path, "--print-config"])
    ns_lab.check(p.wait_exit(scaled(10)) == 0, "--print-config failed")
    lines = [l for l in p.lines() if "readable by other users" in l]
    if warned:
        ns_lab.check(len(lines) == 1 and path in lines[0] and f"{mode:04o}" in lines[0],
                     f"expected one warning naming {path}: {p.lines()}")
    else:
        ns_lab.check(not lines, f"a 0600 file was warned about: {lines}")


@pytest.mark.deadline(60)
def test_code_file_readable_by_others_is_warned_about(ns_lab):
    path = os.path.join(ns_lab.tmpdir, "code")
    with open(path, "w") as f:
        f.write("7-abandon-zoo-lab-name\n")
    os.chmod(path, 0o644)
    p = ns_lab.peersock("peersock --code-file", [*NO_CONFIG, "--code-file", path, "stdio-b"], stdio=True)
    p.wait_exit(scaled(20))  # no relay here: the run fails after the warning
    lines = [l for l in p.lines() if "readable by other users" in l]
    ns_lab.check(len(lines) == 1 and "code file" in lines[0] and path in lines[0],
                 f"expected one warning naming {path}: {p.lines()}")
