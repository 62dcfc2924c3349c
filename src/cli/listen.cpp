#include "cli/commands.hpp"
#include "peersock/error.hpp"

namespace peersock::cli {

size_t parse_listen(const std::vector<std::string>& args, session::Mode& mode) {
  if (args.empty()) throw UsageError("listen: missing PORT (usage: peersock listen PORT [CODE])");
  mode = forward::ListenTcp{.port = parse_port(args[0], "listen")};
  return 1;
}

}  // namespace peersock::cli
