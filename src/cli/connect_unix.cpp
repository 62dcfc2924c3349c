#include "cli/commands.hpp"
#include "peersock/error.hpp"
#include "peersock/forward/local_socket.hpp"

namespace peersock::cli {

size_t parse_connect_unix(const std::vector<std::string>& args, session::Mode& mode) {
  if (args.empty()) throw UsageError("connect-unix: missing PATH (usage: peersock connect-unix PATH [CODE])");
  forward::check_unix_path(args[0], "connect-unix");
  mode = forward::ConnectUnix{args[0]};
  return 1;
}

}  // namespace peersock::cli
