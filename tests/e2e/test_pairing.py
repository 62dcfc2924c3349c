"""Pairing: a code session with --remember leaves a pairing on each side
(separate data directories, as on two machines); `peersock peers` lists
and forgets them.

The real binary and the real mailbox server in the lab namespace; stdio
sessions with seeded random data checked both ways.
"""
import json
import os
import re
import stat
import subprocess

import pytest

from lab import AUTH_RE, Pump, check_same, peersock_bin, scaled

A_SEED, B_SEED = 301, 302
REMEMBERED_RE = re.compile(r"remembered the other side as (\S+)")


def data_home(lab, who):
    d = os.path.join(lab.tmpdir, f"data-{who}")
    os.makedirs(d, exist_ok=True)
    return d


def side_env(lab, who):
    return {"XDG_DATA_HOME": data_home(lab, who)}


def pairing_file(lab, who, name):
    return os.path.join(data_home(lab, who), "peersock", "peers", name)


def read_pairing(lab, who, name):
    with open(pairing_file(lab, who, name)) as f:
        fields = {}
        for line in f.read().splitlines()[1:]:
            k, _, v = line.partition(" ")
            fields[k] = v
        return fields


def peers_cmd(lab, who, *args):
    """`peersock peers ARGS` with this side's data directory."""
    env = {**lab.peer_env(), **side_env(lab, who)}
    return subprocess.run([peersock_bin(), "peers", *args], env=env, capture_output=True, text=True, timeout=30)


def stdio_pair(lab, gen_args, cons_args, nbytes, gen_env=None, cons_env=None):
    """stdio-a (generates the code) <-> stdio-b; both exit 0 with every byte
    checked both ways. Returns (a, b)."""
    a, b, _ = lab.start_pair("peersock stdio-a (alice)", ["stdio-a", *gen_args],
                             "peersock stdio-b (bob)", ["stdio-b", *cons_args],
                             gen_stdio=True, cons_stdio=True, gen_env=gen_env, cons_env=cons_env)
    return finish_stdio(lab, a, b, nbytes)


def finish_stdio(lab, a, b, nbytes):
    pa, pb = Pump(a, nbytes, A_SEED), Pump(b, nbytes, B_SEED)

    def done():
        if any(t.is_alive() for t in (pa.t_send, pa.t_recv, pb.t_send, pb.t_recv)):
            return None
        return pa.summary(), pb.summary()

    def problem():
        for p in (a, b):
            if p.returncode not in (None, 0):
                return f"{p.name} exited with status {p.returncode}"
        return None

    ra, rb = lab.wait_for(done, scaled(120), "the stdio transfer both ways", fail_if=problem)
    check_same(lab, a.name, ra, b.name, rb, nbytes)
    for p in (a, b):
        rc = p.wait_exit(scaled(30), what="the stdio side to exit after the transfer")
        lab.check(rc == 0, f"{p.name} exited with status {rc}")
    return a, b


@pytest.mark.deadline(180)
def test_remember_stores_one_private_pairing_on_each_side(lab):
    a, b = stdio_pair(lab, ["--remember", "bob", "--label", "alice-laptop"],
                      ["--remember", "alice", "--label", "bob-desktop"], 1 << 20,
                      gen_env=side_env(lab, "a"), cons_env=side_env(lab, "b"))
    for p, name in ((a, "bob"), (b, "alice")):
        m = p.find(REMEMBERED_RE)
        lab.check(m is not None and m.group(1) == name, f"{p.name} did not say it remembered the other side as {name}")
        lab.check(p.find(AUTH_RE) is not None, f"{p.name}: no authenticated line")
    fa, fb = read_pairing(lab, "a", "bob"), read_pairing(lab, "b", "alice")
    lab.check(len(fa["secret"]) == 64 and fa["secret"] == fb["secret"],
              "the two sides did not derive the same pairing secret")
    lab.check(fa["label"] == "bob-desktop" and fb["label"] == "alice-laptop",
              f"labels: alice stored {fa['label']!r}, bob stored {fb['label']!r}")
    for who, name in (("a", "bob"), ("b", "alice")):
        path = pairing_file(lab, who, name)
        lab.check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, f"{path} is not mode 0600")
        lab.check(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700, f"{path}'s directory is not 0700")
        lab.check(os.listdir(os.path.dirname(path)) == [name], f"other files next to {path}")

    listed = peers_cmd(lab, "a")
    lab.check(listed.returncode == 0 and re.search(r"^bob\s+bob-desktop\s", listed.stdout, re.M),
              f"peersock peers: {listed.stdout!r} {listed.stderr!r}")
    as_json = json.loads(peers_cmd(lab, "b", "--json").stdout)
    lab.check([p["name"] for p in as_json] == ["alice"] and as_json[0]["forgotten"] is None, f"json: {as_json}")


@pytest.mark.deadline(120)
def test_remember_refuses_an_existing_name_before_contacting_anyone(lab):
    stdio_pair(lab, ["--remember", "bob"], ["--remember", "alice"], 1024,
               gen_env=side_env(lab, "a"), cons_env=side_env(lab, "b"))
    before = open(pairing_file(lab, "a", "bob")).read()
    p = lab.peersock("peersock stdio-a again", ["stdio-a", "--remember", "bob"], env=side_env(lab, "a"))
    rc = p.wait_exit(scaled(15), what="a clash of pairing names is found at once")
    lab.check(rc == 2, f"exit status {rc}, expected 2")
    lab.check(p.find(r"a pairing of that name exists already") is not None, "no clear line about the name")
    lab.check(p.find(r"Connection code") is None, "it made a code although it could not pair")
    lab.check(open(pairing_file(lab, "a", "bob")).read() == before, "the existing pairing changed")


@pytest.mark.deadline(120)
def test_forgotten_pairing_is_listed_as_forgotten_and_keeps_no_secret(lab):
    stdio_pair(lab, ["--remember", "bob"], [], 1024, gen_env=side_env(lab, "a"))
    lab.check(not os.path.exists(os.path.join(data_home(lab, "b"), "peersock")),
              "the side without --remember stored something")
    r = peers_cmd(lab, "a", "forget", "bob")
    lab.check(r.returncode == 0 and "forgot bob" in r.stdout, f"forget: {r.stdout!r} {r.stderr!r}")
    fields = read_pairing(lab, "a", "bob")
    lab.check("secret" not in fields and int(fields["forgotten"]) > 0, f"after forget: {fields}")
    listed = peers_cmd(lab, "a").stdout
    lab.check(re.search(r"^bob\s.*forgotten", listed, re.M) is not None, f"list: {listed!r}")
    again = peers_cmd(lab, "a", "forget", "bob")
    lab.check(again.returncode == 2 and "no pairing called 'bob'" in again.stderr, f"forget twice: {again.stderr!r}")


@pytest.mark.deadline(120)
def test_the_original_peer_cannot_pair(lab):
    """A peer that speaks protocol 1 (as the original does) is refused by the
    side that wants to remember it, before authentication; nothing is stored."""
    a, b, _ = lab.start_pair("peersock stdio-a (alice)", ["stdio-a", "--remember", "bob"],
                             "peersock stdio-b (old)", ["stdio-b"], gen_stdio=True, cons_stdio=True,
                             gen_env=side_env(lab, "a"), cons_env={"PEERSOCK_PROTOCOL": "1"})
    rc = a.wait_exit(scaled(60), what="the remembering side to refuse an original peer")
    lab.check(rc == 8, f"exit status {rc}, expected 8")
    lab.check(a.find(r"the other side runs the original peersock, which cannot pair") is not None,
              "no clear line about the original")
    lab.check(a.find(AUTH_RE) is None, "it authenticated first")
    lab.check(not os.path.exists(pairing_file(lab, "a", "bob")), "a pairing was stored")
    b.wait_exit(scaled(60), what="the other side to end too")
