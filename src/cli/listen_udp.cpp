#include "cli/commands.hpp"
#include "peersock/error.hpp"

namespace peersock::cli {

size_t parse_listen_udp(const std::vector<std::string>& args, session::Mode& mode) {
  if (args.empty()) throw UsageError("listen-udp: missing PORT (usage: peersock listen-udp PORT [CODE])");
  mode = forward::ListenUdp{.port = parse_port(args[0], "listen-udp")};
  return 1;
}

}  // namespace peersock::cli
