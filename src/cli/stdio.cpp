#include "cli/commands.hpp"

namespace peersock::cli {

size_t parse_stdio_a(const std::vector<std::string>&, session::Mode& mode) {
  mode = forward::StdioA{};
  return 0;
}

size_t parse_stdio_b(const std::vector<std::string>&, session::Mode& mode) {
  mode = forward::StdioB{};
  return 0;
}

}  // namespace peersock::cli
