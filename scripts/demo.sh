#!/usr/bin/env bash
# peersock on one machine, for real: `scripts/run.sh demo` (as root).
#
# Two private network namespaces joined by a veth pair stand for two
# machines: "alice" (192.0.2.1) runs Debian's magic-wormhole mailbox server,
# a small web server on her 127.0.0.1:8000 and `peersock connect
# 127.0.0.1:8000`; "bob" (192.0.2.2) runs `peersock listen 8080` (the code in PEERSOCK_CODE) and
# fetches a file with curl from his own 127.0.0.1:8080, through the tunnel.
# No STUN/TURN server, no public relay: every packet stays inside the two
# namespaces (192.0.2.0/24 is a documentation range, never routed). Prints
# each step, the path line, the rate, and "demo ok"; exit 0. Everything it
# started and created is removed on every way out (trap).
#
# Environment: PEERSOCK_BIN (default build/peersock), DEMO_MIB (size of the
# file, default 64), DEMO_TIMEOUT (seconds for each wait, default 30).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${PEERSOCK_BIN:-$here/build/peersock}
mib=${DEMO_MIB:-64}
timeout=${DEMO_TIMEOUT:-30}
python=/usr/bin/python3
twistd=/usr/bin/twistd3

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (it creates network namespaces): run 'sudo scripts/run.sh demo'"
[ -x "$bin" ] || die "no peersock binary at $bin (scripts/run.sh demo builds it)"
for t in ip curl sha256sum "$twistd" "$python"; do
  command -v "$t" >/dev/null || die "$t is missing (scripts/setup.sh installs it)"
done
[[ $mib =~ ^[1-9][0-9]*$ ]] || die "DEMO_MIB must be a whole number of MiB, not '$mib'"

# No PEERSOCK_* setting or user config file of the caller's may change the
# demo (a config file with force-relay, another relay, ...).
for v in $(compgen -v PEERSOCK_ || true); do unset "$v"; done

id=$$
ns_a="psk-demo-$id-alice" ns_b="psk-demo-$id-bob"
veth_a="pskda$id" veth_b="pskdb$id"
ip_a=192.0.2.1 ip_b=192.0.2.2
relay="ws://$ip_a:4000/v1"
tmp=$(mktemp -d /tmp/peersock-demo.XXXXXX)
pids=()

cleanup() {
  local rc=$? pid ns
  trap - EXIT INT TERM HUP
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # Anything still running in our own namespaces was started by us.
  for ns in "$ns_a" "$ns_b"; do
    if ip netns list | grep -qw "$ns"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true   # takes the veth pair with it
    fi
  done
  rm -rf "$tmp"
  if [ $rc = 130 ]; then
    echo "demo: interrupted; cleaned up" >&2
  elif [ $rc != 0 ]; then
    echo "demo: FAILED (status $rc); cleaned up" >&2
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Prints a log file's lines indented, once the step is done.
show() { sed 's/^/    | /' "$1"; }

# Waits (at most $timeout s) until $2 matches a line of file $1; prints the
# match. Fails early if process $3 (a pid) has exited.
wait_line() {
  local file=$1 pattern=$2 pid=$3 what=$4 end=$((SECONDS + timeout)) line
  while :; do
    if line=$(grep -m1 -E "$pattern" "$file" 2>/dev/null); then
      printf '%s\n' "$line"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      show "$file" >&2
      die "$what: the process exited first"
    fi
    [ $SECONDS -lt $end ] || { show "$file" >&2; die "$what: nothing after ${timeout}s"; }
    sleep 0.1
  done
}

# Waits until TCP $2:$3 accepts connections inside namespace $1.
wait_port() {
  local ns=$1 host=$2 port=$3 what=$4 end=$((SECONDS + timeout))
  until ip netns exec "$ns" "$python" -c "import socket,sys; socket.create_connection(('$host', $port), 1).close()" \
      2>/dev/null; do
    [ $SECONDS -lt $end ] || die "$what did not accept connections on $host:$port within ${timeout}s"
    sleep 0.1
  done
}

# (Background processes are started with `ip netns exec` itself, which execs
# the program: $! is then the program's pid, not a subshell's.)
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

say "1/6 two machines: network namespaces $ns_a ($ip_a) and $ns_b ($ip_b), joined by a veth pair"
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "$veth_a" type veth peer name "$veth_b"
ip link set "$veth_a" netns "$ns_a"
ip link set "$veth_b" netns "$ns_b"
in_ns "$ns_a" ip addr add "$ip_a/24" dev "$veth_a"
in_ns "$ns_b" ip addr add "$ip_b/24" dev "$veth_b"
for ns in "$ns_a" "$ns_b"; do in_ns "$ns" ip link set lo up; done
# IPv4 only on the link, so that the path line shows the addresses above
# (not IPv6 link-local ones).
in_ns "$ns_a" sysctl -qw "net.ipv6.conf.$veth_a.disable_ipv6=1"
in_ns "$ns_b" sysctl -qw "net.ipv6.conf.$veth_b.disable_ipv6=1"
in_ns "$ns_a" ip link set "$veth_a" up
in_ns "$ns_b" ip link set "$veth_b" up

say "2/6 alice: the mailbox server (Debian's twistd3 wormhole-mailbox) on $relay"
ip netns exec "$ns_a" "$twistd" -n --pidfile= wormhole-mailbox "--port=tcp:4000:interface=$ip_a" \
  "--channel-db=$tmp/relay.sqlite" >"$tmp/mailbox.log" 2>&1 &
pids+=($!)
wait_port "$ns_b" "$ip_a" 4000 "the mailbox server (seen from bob)"

say "3/6 alice: a web server (python3 -m http.server) on her 127.0.0.1:8000, serving a $mib MiB file"
mkdir "$tmp/www"
head -c "$((mib << 20))" /dev/urandom >"$tmp/www/demo.bin"
want=$(sha256sum "$tmp/www/demo.bin" | cut -d' ' -f1)
ip netns exec "$ns_a" "$python" -m http.server 8000 --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/web.log" 2>&1 &
pids+=($!)
wait_port "$ns_a" 127.0.0.1 8000 "the web server"

: >"$tmp/empty.conf"
common=(--config "$tmp/empty.conf" --relay "$relay" --stun "" --turn "" --no-status)

say "4/6 alice\$ peersock connect 127.0.0.1:8000"
ip netns exec "$ns_a" "$bin" "${common[@]}" connect 127.0.0.1:8000 >"$tmp/connect.out" 2>"$tmp/connect.log" &
connect_pid=$!
pids+=($connect_pid)
code_line=$(wait_line "$tmp/connect.log" '^Connection code: ' $connect_pid "alice's connection code")
code=${code_line#Connection code: }
show "$tmp/connect.log"

say "5/6 bob\$ PEERSOCK_CODE=$code peersock listen 8080"
PEERSOCK_CODE="$code" ip netns exec "$ns_b" "$bin" "${common[@]}" listen 8080 >"$tmp/listen.out" 2>"$tmp/listen.log" &
listen_pid=$!
pids+=($listen_pid)
path=$(wait_line "$tmp/listen.log" '^connected (directly|via)' $listen_pid "bob's path line")
wait_line "$tmp/listen.log" '^authenticated' $listen_pid "bob's authentication" >/dev/null
show "$tmp/listen.log"

say "6/6 bob\$ curl http://127.0.0.1:8080/demo.bin   (bob's own port 8080, through the tunnel to alice's web server)"
stats=$(in_ns "$ns_b" curl -sS --fail --max-time "$((timeout * 4))" -o "$tmp/got.bin" \
  -w '%{size_download} %{time_total} %{speed_download}' http://127.0.0.1:8080/demo.bin) \
  || die "curl through the tunnel failed"
read -r size seconds speed <<<"$stats"
got=$(sha256sum "$tmp/got.bin" | cut -d' ' -f1)
[ "$got" = "$want" ] || die "the downloaded file differs from alice's (sha256 $got, expected $want)"
[ "$size" = "$((mib << 20))" ] || die "downloaded $size bytes, expected $((mib << 20))"
rate=$(awk -v n="$size" -v t="$seconds" -v b="$speed" \
  'BEGIN { printf "%g MiB in %.2f s: %.1f MiB/s", n / 1048576, t, b / 1048576 }')

# Bob stops (SIGTERM, which peersock treats like Ctrl-C); alice hears it
# and ends by herself.
kill -TERM $listen_pid
listen_rc=0; wait $listen_pid || listen_rc=$?
end=$((SECONDS + timeout))
while kill -0 $connect_pid 2>/dev/null; do
  [ $SECONDS -lt $end ] || { show "$tmp/listen.log" >&2; echo "(bob: status $listen_rc)" >&2; show "$tmp/connect.log" >&2; die "alice's peersock did not end within ${timeout}s after bob's"; }
  sleep 0.1
done
connect_rc=0; wait $connect_pid || connect_rc=$?
pids=("${pids[@]:0:2}")   # the two peersocks are gone; the servers remain for cleanup
alice_last=$(tail -n 1 "$tmp/connect.log")

echo
say "path: $path"
say "rate: $rate (curl, through the tunnel; the file's sha256 matches alice's)"
say "bob stopped his peersock (status $listen_rc); alice's said '$alice_last' and exited with status $connect_rc"
echo "demo ok"
