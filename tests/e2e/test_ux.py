"""What users and programs see: --json events, the ways to give the code
(and the warning when it is in argv), logs without secrets, --print-config,
help, exit codes. The terminal itself (prompt, status line) is in test_tmux.py."""
import json
import re
import signal
import subprocess

import pytest

from lab import (AUTH_RE, CODE_RE, EXIT_MISMATCH, EXIT_OK, EXIT_USAGE, LISTEN_PORT, MAILBOX_PORT, REPO,
                 TARGET_PORT, check_same, peersock_bin, scaled, wrong_words_code)

ARGV_NOTE_RE = re.compile(r"^Note: the code was given on the command line")
INTERRUPTED = 130


def peer(lab, name, args, *, env=None, stdin=subprocess.DEVNULL, stdout="lines"):
    """peersock in the lab with the test's relay, no STUN/TURN, and extra
    environment variables (lab.peersock() clears every PEERSOCK_*)."""
    e = lab.peer_env()
    e.update(env or {})
    argv = [peersock_bin(), "--relay", lab.relay_url or "ws://127.0.0.1:4001/v1", "--stun", "", "--turn", "", *args]
    return lab.start(name, argv, stdin=stdin, stdout=stdout, env=e)


def documented_event_order():
    """The events of docs/json-events.md's "in the order they normally happen"
    table that happen once per run in that order (through connection-closed;
    stats, warnings, errors and the like come at any time)."""
    text = (REPO / "docs" / "json-events.md").read_text()
    section = text.split("## Events, in the order they normally happen", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `([a-z-]+)` \|", section, re.M)
    return names[:names.index("connection-closed") + 1]


def json_events(lab, p):
    """Every stderr line of p parsed as one JSON object with "event" and "t"."""
    events = []
    for line in p.lines("stderr"):
        try:
            e = json.loads(line)
        except ValueError:
            lab.fail(f"{p.name}: stderr line is not JSON: {line!r}")
        lab.check(isinstance(e, dict) and isinstance(e.get("event"), str) and isinstance(e.get("t"), (int, float)),
                  f"{p.name}: JSON line without a string 'event' and a numeric 't': {line!r}")
        events.append(e)
    return events


def cmdline(p):
    try:
        with open(f"/proc/{p.pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def start_target(lab, nbytes):
    t = lab.helper("target server", ["server", "--port", str(TARGET_PORT), "--bytes", str(nbytes),
                                     "--timeout", str(int(scaled(80)))])
    t.wait_event("listening", scaled(15), what="the target server to listen")
    return t


def tcp_transfer(lab, nbytes):
    c = lab.helper("tcp client", ["client", "--port", str(LISTEN_PORT), "--bytes", str(nbytes),
                                  "--connect-timeout", str(int(scaled(10))), "--timeout", str(int(scaled(60)))])
    done = c.wait_event("done", scaled(60), what="a transfer through the tunnel")
    lab.check(done.get("sent") == nbytes and done.get("recv") == nbytes, f"transfer incomplete: {done}")
    return done


@pytest.mark.deadline(90)
def test_json_events_from_both_sides(lab):
    nbytes = 300_000
    start_target(lab, nbytes)
    gen = peer(lab, "peersock connect --json", ["--json", "connect", f"127.0.0.1:{TARGET_PORT}"])
    m = gen.wait_line(r'"event":"code"', scaled(20), what="the code event")
    code_event = json.loads(m.string)
    code = code_event["code"]
    lab.check(code_event["command"] == f"peersock --relay {lab.relay_url} listen {TARGET_PORT} --join",
              f"code event's command: {code_event['command']!r}")
    cons = peer(lab, "peersock listen --json", ["--json", "listen", str(LISTEN_PORT)], env={"PEERSOCK_CODE": code})
    for p in (gen, cons):
        p.wait_line(r'"event":"authenticated"', scaled(30), what="the authenticated event")
    # stats arrive every second once connected, also with no traffic
    for p in (gen, cons):
        p.wait_line(r'"event":"stats"', scaled(5), what="a stats event")
    tcp_transfer(lab, nbytes)
    for p in (gen, cons):
        m = p.wait_line(r'"event":"connection-closed"', scaled(10), what="the connection-closed event")
        closed = json.loads(m.string)
        lab.check(closed["sent"] == nbytes and closed["received"] == nbytes and closed["clean"] is True,
                  f"{p.name}: connection-closed counts {closed}, expected {nbytes} each way")
    # SIGTERM to one side: it exits 130, the other side learns that its peer
    # closed and exits 0.
    cons.signal(signal.SIGTERM)
    for p, want_rc in ((cons, INTERRUPTED), (gen, EXIT_OK)):
        rc = p.wait_exit(scaled(10), what="SIGTERM ends the tunnel")
        lab.check(rc == want_rc, f"{p.name}: exit status {rc}, expected {want_rc}")

    for p, first in ((gen, ["contacting", "code", "waiting"]), (cons, ["contacting", "waiting"])):
        events = json_events(lab, p)
        names = [e["event"] for e in events]
        want = first + ["finding-path", "authenticating", "authenticated", "connected", "path",
                        "connection-opened", "connection-closed"]
        it = iter(names)
        lab.check(all(n in it for n in want), f"{p.name}: events {names} lack the order {want}")
        # docs/json-events.md's table lists them in this order, too.
        documented = [n for n in documented_event_order() if n in names]
        seen = list(dict.fromkeys(n for n in names if n in documented))
        lab.check(seen == documented, f"{p.name}: events came in the order {seen}, "
                                      f"docs/json-events.md's table says {documented}")
        ts = [e["t"] for e in events]
        lab.check(ts == sorted(ts), f"{p.name}: timestamps go backwards: {ts}")
        lab.check(names.count("path") == 1 and names.index("path") == names.index("connected") + 1,
                  f"{p.name}: expected one path event, right after connected: {names}")
        path = next(e for e in events if e["event"] == "path")
        lab.check(path["relayed"] is False and path["transport"] == "udp", f"{p.name}: path event {path}")
        final = [e for e in events if e["event"] == "stats" and e.get("final")]
        lab.check(len(final) == 1 and final[0]["sent"] == nbytes and final[0]["received"] == nbytes,
                  f"{p.name}: final stats {final}")
        want_exit = {"event": "exit", "exit_code": INTERRUPTED, "kind": "interrupted"} if p is cons \
            else {"event": "exit", "exit_code": 0, "kind": "ok"}
        lab.check(events[-1] == {**events[-1], **want_exit}, f"{p.name}: last event {events[-1]}")
        if p is gen:
            lab.check("peer-closed" in names, f"{p.name}: no peer-closed event: {names}")
        lab.check(code not in json.dumps([e for e in events if e["event"] != "code"]),
                  f"{p.name}: the code appears in an event other than 'code'")


@pytest.mark.deadline(60)
def test_json_error_has_a_stable_kind(lab):
    gen = peer(lab, "peersock stdio-a --json", ["--json", "stdio-a"], stdin=subprocess.PIPE, stdout="pipe")
    code = json.loads(gen.wait_line(r'"event":"code"', scaled(20), what="the code event").string)["code"]
    cons = peer(lab, "peersock stdio-b --json", ["--json", "stdio-b", "-"], stdin=subprocess.PIPE, stdout="pipe",
                env={"PEERSOCK_CODE": wrong_words_code(code)})
    # `-` without a terminal in stdio mode: refused at once (stdin is data).
    rc = cons.wait_exit(scaled(10), what="stdio-b with '-' and no terminal")
    lab.check(rc == EXIT_USAGE, f"{cons.name}: exit {rc}, expected {EXIT_USAGE}")
    err = [e for e in json_events(lab, cons) if e["event"] == "error"]
    lab.check(len(err) == 1 and err[0]["kind"] == "usage" and "no terminal" in err[0]["message"],
              f"{cons.name}: error events {err}")
    cons = peer(lab, "peersock stdio-b --json (wrong code)", ["--json", "stdio-b"], stdin=subprocess.PIPE,
                stdout="pipe", env={"PEERSOCK_CODE": wrong_words_code(code)})
    for p in (gen, cons):
        rc = p.wait_exit(scaled(30), what="a code mismatch ends both sides")
        lab.check(rc == EXIT_MISMATCH, f"{p.name}: exit {rc}, expected {EXIT_MISMATCH}")
        events = json_events(lab, p)
        errors = [e for e in events if e["event"] == "error"]
        lab.check(len(errors) == 1 and errors[0]["kind"] == "code-mismatch" and errors[0]["exit_code"] == 3,
                  f"{p.name}: error events {errors}")
        lab.check(events[-1]["event"] == "exit" and events[-1]["exit_code"] == EXIT_MISMATCH,
                  f"{p.name}: last event {events[-1]}")


def spoken(code, separator):
    """The code as people read it out and type it back: `separator` between
    the parts instead of '-', and words capitalised ("3 Eight Dinosaur")."""
    nameplate, *words = code.split("-")
    return separator.join([nameplate, *(w.capitalize() for w in words)])


# How the code is typed back (-spoken): every way of giving it normalises
# separators people use to the canonical hyphens.
SPOKEN = {"argv-spoken": " ", "env-spoken": ", ", "file-spoken": " - ", "stdin-line-spoken": "  "}


def give_code(lab, how, code, tmp_path):
    """(args, env, stdin text) for the consumer to get `code` in the way `how`."""
    if how in SPOKEN:
        code = spoken(code, SPOKEN[how])
        how = how.removesuffix("-spoken")
    if how == "argv":
        return [code, "--turn-password", "pw-in-argv-123"], {}, None
    if how == "env":
        return [], {"PEERSOCK_CODE": code}, None
    if how == "file":
        path = tmp_path / "code.txt"
        path.write_text(code + "\n")
        return ["--code-file", str(path)], {}, None
    if how == "stdin-line":
        return ["-"], {}, code + "\n"
    raise AssertionError(how)


@pytest.mark.deadline(60)
@pytest.mark.parametrize("how", ["argv", "env", "file", "stdin-line", *SPOKEN])
def test_code_entry_and_argv_warning(lab, how, tmp_path):
    nbytes = 100_000
    start_target(lab, nbytes)
    gen = peer(lab, "peersock connect", ["--code-words", "2", "connect", f"127.0.0.1:{TARGET_PORT}"])
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    lab.check(len(code.split("-")) == 3, f"--code-words 2 gave {code!r}")
    gen.wait_line(rf"^On the other side run: peersock --relay {re.escape(lab.relay_url)} listen {TARGET_PORT} --join$",
                  scaled(5), what="the ready-to-paste command for the other side (our relay, never the code)")
    args, env, stdin_text = give_code(lab, how, code, tmp_path)
    cons = peer(lab, f"peersock listen ({how})", ["listen", str(LISTEN_PORT), *args], env=env,
                stdin=subprocess.PIPE if stdin_text else subprocess.DEVNULL)
    if stdin_text:
        cons.proc.stdin.write(stdin_text.encode())
        cons.proc.stdin.close()
    cons.wait_line(AUTH_RE, scaled(30), what="authentication")
    tcp_transfer(lab, nbytes)
    notes = [l for l in cons.lines("stderr") if ARGV_NOTE_RE.search(l)]
    if how.startswith("argv"):
        lab.check(len(notes) == 1, f"expected one note about the code in argv, got {notes}")
        lab.check(code not in notes[0], "the note repeats the code")
        # ... and the code no longer shows in the process list.
        lab.check(code not in cmdline(cons) and spoken(code, SPOKEN["argv-spoken"]) not in cmdline(cons)
                  and "pw-in-argv-123" not in cmdline(cons),
                  f"the code or the TURN password is still in /proc/PID/cmdline: {cmdline(cons)!r}")
    else:
        lab.check(not notes, f"a note about argv although the code came from {how}: {notes}")
    lab.check(gen.find(ARGV_NOTE_RE) is None, "the generating side warns about a code it printed itself")
    # Ctrl-C on one side: it exits 130, the other side is told and exits 0.
    cons.signal(signal.SIGTERM)
    lab.check(cons.wait_exit(scaled(10)) == INTERRUPTED, f"{cons.name}: not exit {INTERRUPTED} after SIGTERM")
    lab.check(gen.wait_exit(scaled(10)) == EXIT_OK, f"{gen.name}: not exit 0 after the other side left")
    gen.wait_line(r"^The other side closed the connection\.$", scaled(1), what="the peer-closed line")


@pytest.mark.deadline(60)
def test_debug_logs_have_timestamps_and_never_the_code(lab):
    nbytes = 50_000
    gen = peer(lab, "peersock stdio-a -v", ["-v", "stdio-a"], stdin=subprocess.PIPE, stdout="pipe")
    code = gen.wait_line(CODE_RE, scaled(20), what="the 'Connection code:' line").group(1)
    cons = peer(lab, "peersock stdio-b --debug", ["--debug=rendezvous,ice,quic,auth,forward,session", "stdio-b"],
                stdin=subprocess.PIPE, stdout="pipe", env={"PEERSOCK_CODE": code})
    from lab import Pump
    a, b = Pump(gen, nbytes, 1), Pump(cons, nbytes, 2)
    ra, rb = a.wait(scaled(30)), b.wait(scaled(30))
    check_same(lab, "stdio-a", ra, "stdio-b", rb, nbytes)
    for p in (gen, cons):
        lab.check(p.wait_exit(scaled(15)) == EXIT_OK, f"{p.name}: did not exit 0")
    words = code.split("-")[1:]
    secrets = [code, "-".join(words)] + [f"{x}-{y}" for x, y in zip(words, words[1:])]
    for p in (gen, cons):
        lines = p.lines("stderr")
        debug = [l for l in lines if re.match(r"^\[\d\d:\d\d:\d\d\.\d{3}\] (rendezvous|ice|quic|auth|forward|session): ", l)]
        layers = {re.match(r"^\[[^]]+\] (\w+):", l).group(1) for l in debug}
        lab.check({"rendezvous", "ice", "quic", "auth", "forward", "session"} <= layers, f"{p.name}: debug lines only from {layers}")
        for l in lines:
            if l.startswith("Connection code: ") or l.startswith("On the other side run: "):
                continue
            for s in secrets:
                lab.check(s not in l, f"{p.name}: the code (or part of it: {s!r}) appears in a log line: {l!r}")


@pytest.mark.deadline(60)
def test_debug_selects_layers(lab):
    gen = peer(lab, "peersock stdio-a --debug=ice", ["--debug=ice", "stdio-a"], stdin=subprocess.PIPE, stdout="pipe")
    gen.wait_line(CODE_RE, scaled(20), what="the code line")
    gen.wait_line(r"^\[[\d:.]+\] ice: ", scaled(20), what="an ice debug line")
    gen.signal(signal.SIGTERM)
    gen.wait_exit(scaled(10))
    others = [l for l in gen.lines("stderr") if re.match(r"^\[[\d:.]+\] (?!ice:)", l)]
    lab.check(not others, f"--debug=ice printed other layers: {others[:3]}")


@pytest.mark.deadline(30)
def test_print_config_names_each_source(ns_lab, tmp_path):
    conf = tmp_path / "p.conf"
    conf.write_text("[ice]\nturn-user = fileuser\nturn-password = s3cret-pw\n")
    env = ns_lab.peer_env()
    env.update({"PEERSOCK_CONFIG": str(conf), "PEERSOCK_STUN": "192.0.2.7:7", "PEERSOCK_CODE": "7-abandon-zoo",
                "PEERSOCK_PROTOCOL": "2"})
    p = ns_lab.start("peersock --print-config", [peersock_bin(), "--print-config", "--json", "--relay",
                                                 "ws://127.0.0.1:4001/v1", "--turn", "192.0.2.9", "--no-relay"], env=env)
    ns_lab.check(p.wait_exit(scaled(10)) == EXIT_OK, "--print-config did not exit 0")
    out = p.text("stdout")
    cfg = json.loads(out)
    want = {"relay": ("flag", "--relay"), "stun": ("environment", "PEERSOCK_STUN"), "turn": ("flag", "--turn"),
            "turn-user": ("config file", f"{conf}:2"), "turn-password": ("config file", f"{conf}:3"),
            "config": ("environment", "PEERSOCK_CONFIG"), "code": ("environment", "PEERSOCK_CODE"),
            "relay-policy": ("flag", "--no-relay"), "protocol": ("environment", "PEERSOCK_PROTOCOL")}
    for key, (source, detail) in want.items():
        ns_lab.check((cfg[key]["source"], cfg[key]["detail"]) == (source, detail), f"{key}: {cfg[key]}")
    ns_lab.check(cfg["stun"]["value"] == "192.0.2.7:7", f"stun: {cfg['stun']}")
    ns_lab.check(cfg["relay-policy"]["value"] == "no-relay" and cfg["protocol"]["value"] == "2", f"{cfg}")
    ns_lab.check("s3cret-pw" not in out and "abandon" not in out, f"--print-config shows a secret: {out}")


@pytest.mark.deadline(30)
@pytest.mark.parametrize("sub", ["connect", "listen", "stdio-a", "stdio-b"])
def test_subcommand_help(ns_lab, sub):
    p = peer(ns_lab, f"peersock {sub} --help", [sub, "--help"])
    ns_lab.check(p.wait_exit(scaled(10)) == EXIT_OK, "--help did not exit 0")
    out = p.text("stdout")
    ns_lab.check(out.startswith(f"Usage: peersock [OPTIONS] {sub} "), f"help does not start with the usage: {out[:200]}")
    ns_lab.check("Examples:" in out and "--code-file" in out, "help lacks examples or the code options")


@pytest.mark.deadline(30)
def test_interrupted_while_waiting_exits_130(lab):
    p = peer(lab, "peersock listen", ["listen", str(LISTEN_PORT)])
    p.wait_line(r"^Waiting for the other side", scaled(20), what="waiting")
    p.signal(signal.SIGINT)
    rc = p.wait_exit(scaled(10), what="Ctrl-C while waiting")
    lab.check(rc == INTERRUPTED, f"exit status {rc} after SIGINT, expected {INTERRUPTED}")
