#include <fmt/core.h>

#include "cli/commands.hpp"
#include "peersock/error.hpp"

namespace peersock::cli {

size_t parse_connect(const std::vector<std::string>& args, session::Mode& mode) {
  if (args.empty()) throw UsageError("connect: missing HOST:PORT (usage: peersock connect HOST:PORT [CODE])");
  const std::string& target = args[0];
  auto colon = target.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw UsageError(fmt::format("connect: '{}' is not HOST:PORT", target));
  }
  parse_port(std::string_view(target).substr(colon + 1), "connect");
  mode = forward::ConnectTcp{target};
  return 1;
}

}  // namespace peersock::cli
