#include "cli/commands.hpp"

namespace peersock::cli {

size_t parse_stdio_a(const std::vector<std::string>&, session::Mode& mode) {
  mode.kind = session::ModeKind::stdio_a;
  return 0;
}

size_t parse_stdio_b(const std::vector<std::string>&, session::Mode& mode) {
  mode.kind = session::ModeKind::stdio_b;
  return 0;
}

}  // namespace peersock::cli
