#include <fmt/core.h>

#include "cli/commands.hpp"
#include "peersock/error.hpp"
#include "peersock/text.hpp"

namespace peersock::cli {

size_t parse_connect_udp(const std::vector<std::string>& args, session::Mode& mode) {
  if (args.empty()) throw UsageError("connect-udp: missing HOST:PORT (usage: peersock connect-udp HOST:PORT [CODE])");
  const std::string& target = args[0];
  auto colon = target.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw UsageError(fmt::format("connect-udp: {} is not HOST:PORT", text::quote(target)));
  }
  parse_port(std::string_view(target).substr(colon + 1), "connect-udp");
  mode = forward::ConnectUdp{target};
  return 1;
}

}  // namespace peersock::cli
