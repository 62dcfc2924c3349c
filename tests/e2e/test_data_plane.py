"""The data plane under load: many connections through one tunnel, a stalled
reader next to a busy one, half-close in both directions, resets, and stdin
EOF with lots of data still in flight.

Sizes scale with PEERSOCK_E2E_MANY_MIB (total per direction of the
many-connections test, default PEERSOCK_E2E_BIG_MIB) and PEERSOCK_E2E_BIG_MIB.
"""
import os

import pytest

from lab import (AUTH_RE, LISTEN_PORT, TARGET_PORT, PYTHON, HELPER, Pump, big_bytes, check_same, mib, scaled)


def many_bytes():
    v = os.environ.get("PEERSOCK_E2E_MANY_MIB")
    return int(float(v) * (1 << 20)) if v else big_bytes()


def start_tunnel(lab, acceptor_args=None, opener_args=None):
    """connect (generates the code) <-> listen; returns (connect, listen) once
    both have authenticated."""
    acc, opn, _ = lab.start_pair("peersock connect", acceptor_args or ["connect", f"127.0.0.1:{TARGET_PORT}"],
                                 "peersock listen", opener_args or ["listen", str(LISTEN_PORT)])
    for p in (acc, opn):
        p.wait_line(AUTH_RE, scaled(60), what="the 'authenticated' line")
    return acc, opn


def peers_alive(*peers):
    def problem():
        for p in peers:
            if p.returncode is not None:
                return f"{p.name} exited with status {p.returncode}"
        return None
    return problem


def match_many(lab, client, server, count):
    """Every connection's bytes, both ways: the client's and the server's view
    of the same connection (by index) agree, and nothing failed."""
    summary = client.event("summary")
    lab.check(summary is not None, "the many-connections client printed no summary")
    lab.check(summary["failed_count"] == 0, f"connections failed: {summary['failed']}")
    cl = {e["index"]: e for e in client.events() if e.get("event") == "conn"}
    sv = {e["index"]: e for e in server.events() if e.get("event") == "conn"}
    lab.check(len(cl) == count, f"client finished {len(cl)} of {count} connections")
    lab.check(len(sv) == count, f"server finished {len(sv)} of {count} connections")
    for i in range(count):
        c, s = cl[i], sv[i]
        lab.check(c["sent"] == c["up_bytes"] and s["recv"] == c["up_bytes"] and s["recv_sha256"] == c["sent_sha256"],
                  f"connection {i} upstream: client sent {c['sent']}/{c['up_bytes']} bytes, server received "
                  f"{s['recv']} (sha256 {'equal' if s['recv_sha256'] == c['sent_sha256'] else 'DIFFERENT'})")
        lab.check(s["sent"] == c["down_bytes"] and c["recv"] == c["down_bytes"] and c["recv_sha256"] == s["sent_sha256"],
                  f"connection {i} downstream: server sent {s['sent']}/{c['down_bytes']} bytes, client received "
                  f"{c['recv']} (sha256 {'equal' if c['recv_sha256'] == s['sent_sha256'] else 'DIFFERENT'})")
    return summary


def run_many(lab, count, total, *, server_args, client_args, acceptor_args=None, opener_args=None):
    server = lab.helper("many server", ["mserver", *server_args, "--timeout", str(int(scaled(600)))])
    server.wait_event("listening", scaled(15), what="the target server to listen")
    acc, opn = start_tunnel(lab, acceptor_args, opener_args)
    deadline = scaled(90 + 4 * 2 * total / (1 << 20))
    lab.note(f"{count} connections, {mib(total)} in all each way, deadline {deadline:.0f}s")
    client = lab.helper("many client", ["mclient", *client_args, "--count", str(count), "--total-bytes", str(total),
                                        "--timeout", str(int(deadline))])
    lab.wait_for(lambda: client.event("summary") or client.event("timeout"), deadline,
                 f"{count} connections to finish", fail_if=peers_alive(acc, opn))
    summary = match_many(lab, client, server, count)
    lab.check(acc.returncode is None and opn.returncode is None, "a peer exited; both must keep serving")
    return summary


@pytest.mark.deadline(900)
def test_200_concurrent_connections_random_sizes(lab):
    run_many(lab, 200, many_bytes(), server_args=["--port", str(TARGET_PORT)],
             client_args=["--port", str(LISTEN_PORT), "--max-bytes", str(8 << 20)])
