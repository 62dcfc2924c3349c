#include "cli/commands.hpp"
#include "peersock/error.hpp"
#include "peersock/forward/local_socket.hpp"

namespace peersock::cli {

size_t parse_listen_unix(const std::vector<std::string>& args, session::Mode& mode) {
  if (args.empty()) throw UsageError("listen-unix: missing PATH (usage: peersock listen-unix PATH [CODE])");
  forward::check_unix_path(args[0], "listen-unix");
  mode = forward::ListenUnix{args[0]};
  return 1;
}

}  // namespace peersock::cli
