#include "peersock/error.hpp"

namespace peersock {

std::string_view exit_code_name(ExitCode code) {
  switch (code) {
    case ExitCode::ok: return "ok";
    case ExitCode::failure: return "internal";
    case ExitCode::usage: return "usage";
    case ExitCode::code_mismatch: return "code-mismatch";
    case ExitCode::no_path: return "no-path";
    case ExitCode::peer_gone: return "peer-gone";
    case ExitCode::relay: return "relay";
    case ExitCode::local: return "local";
    case ExitCode::protocol: return "protocol";
    case ExitCode::interrupted: return "interrupted";
  }
  return "unknown";
}

}  // namespace peersock
