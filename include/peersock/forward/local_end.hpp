// The local end of the tunnel: what this side's subcommand asked for. One
// alternative per mode, so the variant is the mode (session::Mode is this
// type); each part of the program asks it what it needs through the
// functions below instead of testing flags.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "peersock/forward/udp_flows.hpp"

namespace peersock::forward {

struct ListenTcp {  // listen PORT [--bind ADDR]
  std::string bind_address = "127.0.0.1";
  uint16_t port = 0;
};
struct ListenUnix {  // listen-unix PATH
  std::string path;
};
struct ConnectTcp {  // connect HOST:PORT
  std::string target;
};
struct ConnectUnix {  // connect-unix PATH
  std::string path;
};
// stdio: which directions this side carries. A side that does not send
// ends its direction at once (EOF) without reading stdin; one that does not
// receive discards what arrives. By default a side whose stdin is a
// terminal does not send (cli: --send-only / --recv-only override it), so
// `tar c dir | peersock stdio-a` and `peersock stdio-b CODE | tar x` at a
// terminal both end by themselves once the data is written.
struct StdioDirections {
  bool send = true;
  bool receive = true;
};
struct StdioA {  // stdio-a
  StdioDirections directions;
};
struct StdioB {  // stdio-b
  StdioDirections directions;
};

// UDP (docs/protocol.md §7.7): datagrams, not streams, and only between
// these two. listen-udp is the opener: its clients' source addresses make
// the flows.
struct ListenUdp {  // listen-udp PORT [--bind ADDR]
  std::string bind_address = "127.0.0.1";
  uint16_t port = 0;
  udp::FlowLimits limits;  // --udp-idle, --udp-max-flows
};
struct ConnectUdp {  // connect-udp HOST:PORT
  std::string target;
  udp::FlowLimits limits;
};

using LocalEnd = std::variant<ListenTcp, ListenUnix, ConnectTcp, ConnectUnix, StdioA, StdioB, ListenUdp, ConnectUdp>;

// The opener opens the data streams (or, for UDP, the flows): the listen
// modes and stdio-b. The other side must be an acceptor: a connect mode or
// stdio-a (docs/protocol.md §7.1).
bool is_opener(const LocalEnd& end);
// listen-udp and connect-udp: they pair only with each other.
bool is_udp(const LocalEnd& end);
// Whether the subcommand called `name` is a UDP mode; nullopt for a name
// that is not one of ours.
std::optional<bool> name_is_udp(std::string_view name);
// The UDP modes' flow limits; null for other modes.
udp::FlowLimits* mutable_udp_limits(LocalEnd& end);
bool is_stdio(const LocalEnd& end);
bool is_listen(const LocalEnd& end);
bool is_connect(const LocalEnd& end);

// stdio-a / stdio-b: the directions; other modes carry both.
StdioDirections stdio_directions(const LocalEnd& end);
// stdio-a / stdio-b: their directions, to change; null for other modes.
StdioDirections* mutable_stdio_directions(LocalEnd& end);

// The subcommand's name: "listen", "listen-unix", "connect", ...
const char* mode_name(const LocalEnd& end);
// Whether the subcommand called `name` opens the data streams; nullopt for
// a name that is not one of ours (a later release's mode).
std::optional<bool> name_is_opener(std::string_view name);

// connect, connect-udp: "HOST:PORT"; connect-unix: the socket path;
// otherwise empty.
std::string connect_target(const LocalEnd& end);

}  // namespace peersock::forward
