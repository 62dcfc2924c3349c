#!/usr/bin/python3
"""UDP mapping reflectors and the NAT-type probe of the peersock NAT lab (stdlib only).

  serve --bind IP:PORT [--bind IP:PORT ...] --other IP:PORT [--timeout T]
        answers every datagram with {"seen": "IP:PORT"} (the source address the
        reflector saw, i.e. the NAT mapping) from the socket it arrived on. If
        the request says {"other": true}, the reply is sent from the --other
        socket instead (a different address and port, to which the client never
        sent anything): it reaches the client only through a NAT with
        endpoint-independent filtering. Prints {"event": "listening"} when ready.
  probe --reflector IP:PORT --reflector IP:PORT [--timeout T]
        from one UDP socket, asks both reflectors for the mapping and asks the
        first one for a reply from the other socket; prints one JSON line:
        {"event": "probe", "type": none|cone|restricted|symmetric|udp-blocked,
         "local": ..., "mapped": [...], "unsolicited": bool}

The type is what the packets showed, not what the router was told to do:
  udp-blocked  no answer at all
  none         the mapping equals the local address (no NAT)
  symmetric    the two reflectors saw different mappings (per-destination)
  cone         one mapping, and the unsolicited reply came through
  restricted   one mapping, the unsolicited reply was filtered
"""
import argparse
import json
import select
import socket
import sys
import time


def addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def emit(**fields):
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def serve(args):
    socks = []
    for b in args.bind:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(addr(b))
        socks.append(s)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(addr(args.other))
    emit(event="listening")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select(socks, [], [], 1.0)
        for s in ready:
            data, peer = s.recvfrom(2048)
            try:
                req = json.loads(data)
            except ValueError:
                continue
            reply = json.dumps({"id": req.get("id"), "seen": f"{peer[0]}:{peer[1]}",
                                "from_other": bool(req.get("other"))}).encode()
            (other if req.get("other") else s).sendto(reply, peer)


def probe(args):
    reflectors = [addr(r) for r in args.reflector]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # The local address the kernel picks for the first reflector.
    s.connect(reflectors[0])
    local_ip = s.getsockname()[0]
    s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((local_ip, 0))
    local = f"{local_ip}:{s.getsockname()[1]}"

    def ask(target, other, rid):
        """Sends the request a few times; returns the reply or None."""
        for _ in range(4):
            s.sendto(json.dumps({"id": rid, "other": other}).encode(), target)
            end = time.monotonic() + args.timeout / 4
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    break
                ready, _, _ = select.select([s], [], [], left)
                if not ready:
                    break
                data, _ = s.recvfrom(2048)
                try:
                    rep = json.loads(data)
                except ValueError:
                    continue
                if rep.get("id") == rid:
                    return rep
        return None

    first = ask(reflectors[0], False, 1)
    if first is None:
        emit(event="probe", type="udp-blocked", local=local, mapped=[], unsolicited=False)
        return
    second = ask(reflectors[1], False, 2)
    mapped = [first["seen"], second["seen"] if second else None]
    third = ask(reflectors[0], True, 3)
    unsolicited = third is not None
    if mapped[0] == local:
        kind = "none"
    elif mapped[0] != mapped[1]:
        kind = "symmetric"
    elif unsolicited:
        kind = "cone"
    else:
        kind = "restricted"
    emit(event="probe", type=kind, local=local, mapped=mapped, unsolicited=unsolicited)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("serve")
    a.add_argument("--bind", action="append", required=True)
    a.add_argument("--other", required=True)
    a.add_argument("--timeout", type=float, default=3600)
    a = sub.add_parser("probe")
    a.add_argument("--reflector", action="append", required=True)
    a.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args()
    serve(args) if args.cmd == "serve" else probe(args)


if __name__ == "__main__":
    main()
