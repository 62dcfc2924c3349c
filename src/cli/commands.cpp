// The subcommand table (each subcommand's parser is in its own file) and the
// small helpers the subcommands share.
#include <fmt/core.h>

#include <charconv>

#include "cli/commands.hpp"
#include "peersock/error.hpp"
#include "peersock/text.hpp"

namespace peersock::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"connect", "HOST:PORT [CODE]", "let the other side's connections reach HOST:PORT from here",
       "peersock connect localhost:5900", &parse_connect,
       R"(Every connection that arrives at the other side's `listen` port is connected
to HOST:PORT from this machine. HOST may be a name or an address; it is
resolved here, when each connection arrives.

Examples:
  peersock connect localhost:5900          share this machine's VNC server
  peersock connect localhost:22            let the other side ssh in (it runs
                                           `peersock listen 2222 CODE`)
  peersock connect 192.168.1.10:80 -       type the code the other side got
)"},
      {"listen", "PORT [CODE]", "accept connections on 127.0.0.1:PORT and carry them to the other side",
       "peersock listen 5900 7-abandon-zoo-lab-name", &parse_listen,
       R"(Accepts TCP connections on 127.0.0.1:PORT (--bind ADDR to accept on another
address) and carries each one to the other side, which connects it to its
`connect` target or to its stdin/stdout (`stdio-a`). The port is bound before
anything else happens, so a port in use fails at once.

Examples:
  peersock listen 5900 7-abandon-zoo-lab-name  then: vncviewer localhost:5900
  peersock listen 8080 -                       ask for the code (Tab completes)
  peersock listen 2222 --join                  the same
)"},
      {"stdio-a", "[CODE]", "connect stdin/stdout to the other side (pairs with stdio-b or listen)",
       "tar c photos | peersock stdio-a", &parse_stdio_a,
       R"(Carries stdin to the other side and what the other side sends to stdout.
End of input ends this direction; peersock exits 0 once both directions have
delivered everything. Pairs with `stdio-b` or with `listen` (one connection).
The code prompt for `-` uses the terminal (/dev/tty), never stdin.

Examples:
  tar c photos | peersock stdio-a                    prints a code
  peersock stdio-a 7-abandon-zoo-lab-name > file
)"},
      {"stdio-b", "[CODE]", "connect stdin/stdout to the other side (pairs with stdio-a or connect)",
       "ssh -o ProxyCommand='peersock stdio-b CODE' host", &parse_stdio_b,
       R"(Like stdio-a, but this side opens the stream, so it pairs with `stdio-a` or
with `connect` (then it is a ProxyCommand for ssh).

Examples:
  peersock stdio-b 7-abandon-zoo-lab-name | tar x
  PEERSOCK_CODE=7-abandon-zoo-lab-name \
    ssh -o ProxyCommand='peersock -q stdio-b' alice@peer
)"},
      {"listen-unix", "PATH [CODE]", "like listen, but accept connections on a unix socket at PATH",
       "peersock listen-unix /tmp/db.sock 7-abandon-zoo-lab-name", &parse_listen_unix,
       R"(Accepts connections on a unix stream socket at PATH and carries each one to
the other side, like `listen`. PATH is created before anything else happens
and removed at exit; a stale socket left by a dead process is replaced, but
an existing file that is not a socket, or a socket another program listens
on, is refused (exit 7).

Examples:
  peersock listen-unix /tmp/.s.PGSQL.5432 7-abandon-zoo-lab-name
                                   then: psql -h /tmp (the other side runs
                                   peersock connect-unix with its socket)
)"},
      {"connect-unix", "PATH [CODE]", "like connect, but connect to the unix socket at PATH",
       "peersock connect-unix /run/postgresql/.s.PGSQL.5432", &parse_connect_unix,
       R"(Every connection that arrives at the other side's `listen` or `listen-unix`
is connected to the unix stream socket at PATH on this machine. A connection
that PATH refuses is reset; the tunnel stays up.

Examples:
  peersock connect-unix /run/postgresql/.s.PGSQL.5432
  peersock connect-unix /var/run/docker.sock
)"},
      {"listen-udp", "PORT [CODE]", "receive UDP datagrams on 127.0.0.1:PORT and carry them to the other side",
       "peersock listen-udp 51820 7-abandon-zoo-lab-name", &parse_listen_udp,
       R"(Receives UDP datagrams on 127.0.0.1:PORT (--bind ADDR for another address) and
carries them to the other side, which runs `connect-udp` (and only that: a
TCP or stdio mode there is refused on both sides, exit 2). Each client's
source address is a flow of its own, so replies come back to the client that
asked. The datagrams travel unreliably, like UDP itself, in QUIC DATAGRAM
frames; one larger than the path can carry is dropped and counted, never
split. Both sides need protocol version 5 (exit 8 otherwise).

A flow ends after --udp-idle SECONDS without a datagram (default 60); at most
--udp-max-flows N flows live at once (default 4096; a new one ends the least
recently used).

Examples:
  peersock listen-udp 51820 7-abandon-zoo-lab-name   WireGuard: Endpoint =
                                                     127.0.0.1:51820
  peersock listen-udp 5353 -                         then: dig -p 5353 @127.0.0.1
)"},
      {"connect-udp", "HOST:PORT [CODE]", "send the other side's UDP datagrams to HOST:PORT from here",
       "peersock connect-udp localhost:51820", &parse_connect_udp,
       R"(Every datagram that arrives at the other side's `listen-udp` port is sent to
HOST:PORT from this machine, from one local socket per client of the other
side, and what HOST:PORT answers goes back to that client. HOST is resolved
once, when the session starts.

Examples:
  peersock connect-udp localhost:51820     a WireGuard server on this machine
  peersock connect-udp 192.168.1.1:53      the LAN's DNS server
)"},
  };
  return table;
}

uint16_t parse_port(std::string_view text, std::string_view what) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535) {
    throw UsageError(fmt::format("{}: {} is not a port number (1-65535)", what, text::quote(text)));
  }
  return static_cast<uint16_t>(value);
}

std::string_view code_source_name(CodeSource source) {
  switch (source) {
    case CodeSource::generate: return "generate";
    case CodeSource::argv: return "command line";
    case CodeSource::file: return "--code-file";
    case CodeSource::environment: return "PEERSOCK_CODE";
    case CodeSource::prompt: return "prompt";
  }
  return "?";
}

}  // namespace peersock::cli
