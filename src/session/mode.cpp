#include "peersock/session/mode.hpp"

#include <fmt/core.h>

namespace peersock::session {

forward::LocalEnd local_end(const Mode& mode) {
  forward::LocalEnd end;
  end.opener = mode.opener();
  end.bind_address = mode.bind_address;
  end.port = mode.port;
  end.target = mode.target;
  end.unix_path = mode.unix_path;
  switch (mode.kind) {
    case ModeKind::listen:
      end.kind = mode.unix_path.empty() ? forward::LocalEnd::Kind::listen_tcp : forward::LocalEnd::Kind::listen_unix;
      break;
    case ModeKind::connect:
      end.kind = mode.unix_path.empty() ? forward::LocalEnd::Kind::connect_tcp : forward::LocalEnd::Kind::connect_unix;
      break;
    case ModeKind::stdio_a:
    case ModeKind::stdio_b: end.kind = forward::LocalEnd::Kind::stdio; break;
  }
  return end;
}

std::string hint_for_other_side(const Mode& mode, const std::string& code) {
  switch (mode.kind) {
    case ModeKind::listen: return fmt::format("peersock connect HOST:PORT {}", code);
    case ModeKind::connect: {
      auto colon = mode.target.rfind(':');
      std::string port = colon == std::string::npos ? "PORT" : mode.target.substr(colon + 1);
      return fmt::format("peersock listen {} {}", port, code);
    }
    case ModeKind::stdio_a: return fmt::format("peersock stdio-b {}", code);
    case ModeKind::stdio_b: return fmt::format("peersock stdio-a {}", code);
  }
  return {};
}

}  // namespace peersock::session
